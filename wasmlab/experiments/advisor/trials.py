"""One candidate measured under the concurrency, in a child process of its own making.

The child (:class:`wasmlab.measure.child.Child`: a new interpreter, no state of the parent's wasmtime) is started
once and serves every candidate in turn, so a wasmtime abort (a pool that cannot be mapped, a crash) costs that
candidate only: the runner records it as ``crash`` and the next candidate gets a new child.  Each candidate runs through
:func:`~wasmlab.experiments.concurrency.from_scenario`, the very path ``wasmlab concurrency`` and its flags take.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.space import Candidate
from wasmlab.measure.child import Child

# The columns of a measured candidate, beside the candidate's own fields.
MEASURED = ("latency_us_p50", "latency_us_p99", "throughput_rps", "rss_bytes", "rss_held_bytes", "address_space_bytes",
            "minor_faults_per_request", "tlb_shootdowns_per_request", "outcome_ok", "failed_requests", "outcome_pool_exhausted",
            "reused_requests", "carried_over_requests")


@dataclass(frozen=True)
class Load:
    """How each candidate is served: worker threads, call path, the workloads and the trace over them."""

    threads: int
    call_path: str
    workloads: tuple[str, ...]
    trace: str = "repeat"
    zipf_s: float = 1.1
    requests: int = 2000  # per worker
    warmup: int = 200  # per worker, untimed


def run_candidate(task: dict[str, Any]) -> dict[str, Any]:
    """In the child: serve one candidate as ``wasmlab concurrency`` would with its flags; the result row."""
    from wasmlab.experiments.concurrency import from_scenario
    from wasmlab.measure.scenario import Scenario

    variant = task["variant"]
    scenario = Scenario(workload=task["workloads"][0], variants=(variant,), preset=None, slots=task["slots"] or None,
                        pool=task["pool"], engine=task["engine"], cache_policy="lru", cache_size=task["cache_size"],
                        limits={"exhaustion": task["exhaustion"]})
    return from_scenario(task["threads"], scenario, variant, task["workloads"], "shared", task["call_path"],
                         requests_per_thread=task["requests"], warmup=task["warmup"], seed=task["seed"],
                         trace=task["trace"], zipf_s=task["zipf_s"])


class TrialRunner:
    """Measures candidates one at a time in a child process, replacing the child when wasmtime takes it down."""

    def __init__(self, needs: ServingNeeds, load: Load) -> None:
        self.needs, self.load = needs, load
        self._child = Child("wasmlab.experiments.advisor.trials:run_candidate")
        self.measured = 0

    @property
    def crashes(self) -> int:
        """Candidates whose child wasmtime took down."""
        return self._child.crashes

    def task(self, candidate: Candidate, threads: int | None = None, requests: int | None = None, seed: int = 0,
             exhaustion: str = "fail") -> dict[str, Any]:
        load = self.load
        return {"variant": candidate.variant, "slots": candidate.slots, "pool": candidate.pool_knobs(self.needs),
                "engine": candidate.engine_knobs(self.needs), "cache_size": candidate.cache_size, "exhaustion": exhaustion,
                "threads": threads or load.threads, "workloads": list(load.workloads), "call_path": load.call_path,
                "requests": requests or load.requests, "warmup": load.warmup, "seed": seed, "trace": load.trace,
                "zipf_s": load.zipf_s}

    def measure(self, candidate: Candidate, threads: int | None = None, requests: int | None = None, seed: int = 0,
                exhaustion: str = "fail") -> dict[str, Any]:
        """One run of ``candidate``: its fields, the measured columns and ``outcome`` (ok, failed, refused or crash)."""
        task = self.task(candidate, threads, requests, seed, exhaustion)
        started = time.perf_counter()
        row: dict[str, Any] = {**asdict(candidate), "variant": candidate.variant, "label": candidate.label(self.needs),
                               "threads": task["threads"]}
        answer = self._child.call(task)
        if answer.status == "crash":
            # wasmtime aborted the child: this candidate's outcome, not the advisor's end (the next one gets a new child).
            return {**row, "outcome": "crash", "error": f"the child process died (a wasmtime abort): {answer.message}",
                    "elapsed_s": time.perf_counter() - started}
        if answer.status == "error":
            if not answer.lab_error:  # a bug, not a refusal: stop, as it would have in this process
                raise RuntimeError(f"a trial of {candidate.variant} failed: {answer.error_type}: {answer.message}")
            return {**row, "outcome": "refused", "error": answer.message, "elapsed_s": time.perf_counter() - started}
        result = answer.result
        self.measured += 1
        outcome = "ok" if result.get("failed_requests", 0) == 0 else "failed"
        return {**row, **{k: result.get(k) for k in MEASURED}, "outcome": outcome,
                "address_space_method": result.get("address_space_method"), "elapsed_s": time.perf_counter() - started}

    def warm(self, candidate: Candidate) -> None:
        """One small untimed run first: the child's one-time costs (imports, wasmtime's first engine) stay out of every figure."""
        self.measure(candidate, requests=200)

    def close(self) -> None:
        self._child.close()
