"""Runs a request trace through runtimes and measures it honestly.

What it does, and why:

* warm-up requests per variant before anything is timed (caches filled, pool slots warm,
  code paths hot); the cache counters are reset after it, so hit rates describe timed requests;
* ``repeats`` repetitions; in each, every variant serves the whole trace once, in a Williams design
  (:mod:`~wasmlab.measure.order`): each variant takes each position and follows each other equally often;
* one ``perf_counter_ns`` sample per request, with the cyclic GC off inside timed loops;
* calibration of the timer, of the harness loop itself and of one C call made the way the
  lean path makes its calls, reported beside the figures;
* page faults (``getrusage``), RSS and virtual size before and after each block;
* machine hygiene as pyperf does it: optional CPU pinning, the load average and other
  processes' CPU time during the run, and a warning when the machine was busy.

A variant that fails (for example a module that does not fit the pool) is recorded with its
error and dropped from later repetitions; the other variants' figures are kept.
"""

from __future__ import annotations

import gc
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from wasmlab.config import MiB
from wasmlab.errors import ConfigError, Interrupted, WasmlabError, signal_name
from wasmlab.host.outcomes import KINDS, OK, REQUEST_FAILURES, classify, first_line, kind_of
from wasmlab.host.runtime import Runtime
from wasmlab.measure import linux_counters, order
from wasmlab.measure import metadata as md
from wasmlab.measure.budget import BudgetFit, fit, parse_budget
from wasmlab.measure.calibrate import Crossings, cache_lookup_ns, calibrate, count_crossings, timed_loop
from wasmlab.measure.hygiene import Hygiene, pin
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.phased import empty_phases, phased_block
from wasmlab.measure.reuse_figures import block_columns
from wasmlab.measure.stats import LATENCY_STATISTICS, describe_ns
from wasmlab.measure.traces import Trace
from wasmlab.measure.warmup import AUTO, AutoWarmup, Warmup, WarmupDone, parse_warmup, warm_up
from wasmlab.workloads.model import Workload

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built, not by every command that imports this
    import pandas as pd


@dataclass(frozen=True)
class MeasureConfig:
    """How a measurement is taken."""

    warmup: Warmup | str = 200  # a count, or auto (wasmlab.measure.warmup)
    repeats: int = 5
    phases: bool = False
    cpu: int | None = None
    keep_samples: bool = True
    # Each repetition serves its trace in this many rounds; in each round every variant serves the next
    # slice of the trace, in the repetition's order.  A machine that drifts between states (frequency,
    # a neighbour's load) then shifts the variants of one repetition alike, so the paired ratios over
    # repetitions are not at the mercy of which state a short block happened to fall in.  Capped so that
    # a slice holds at least ``MIN_SLICE`` requests; a trace of several modules is served in one round
    # (see :func:`rounds_for`).
    rounds: int = 10
    # Seconds for every variant's timed requests over all repetitions: fewer requests per repetition where the
    # warm-up predicts more would not fit (wasmlab.measure.budget); None: every request of the trace.
    time_budget_s: float | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "warmup", parse_warmup(self.warmup))
        object.__setattr__(self, "time_budget_s", parse_budget(self.time_budget_s))
        if self.time_budget_s is not None and self.warmup == 0:
            raise ConfigError(f"time budget {self.time_budget_s:g} s is fitted from the warm-up's requests; allowed: a budget "
                              f"with a warm-up of 1 or more requests (or auto), or warm-up 0 without a budget")
        for name, minimum in (("repeats", 1), ("rounds", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} = {value!r} is out of range; allowed: an integer >= {minimum}")
        if self.cpu is not None:
            available = sorted(os.sched_getaffinity(0))
            if self.cpu not in available:
                raise ConfigError(f"cpu = {self.cpu!r} is not available; allowed: one of {available}")


# The fewest requests a round's slice holds: below it, the switch between variants (their code and data
# leaving the CPU's caches) would be a visible part of each slice.
MIN_SLICE = 25


# Untimed requests before each slice when a repetition has several: after another variant's slice, the first
# request or two of a slice find the CPU's caches and TLB full of the other variant's code and data (measured
# here: ~35 µs for the first pooled+cached request after a baseline slice, ~10 for the second, ~9 after),
# a cost of the lab's interleaving, not of the variant; one block per variant pays it once, slices would
# pay it each time.
REWARM_PER_SLICE = 2


def rounds_for(indices: Sequence[int], rounds: int) -> int:
    """The rounds a trace is served in: ``rounds`` for a trace of one module; one for a trace of several,
    where the untimed requests before each slice (:data:`REWARM_PER_SLICE`) would change what the cache
    holds when the timed ones run."""
    return rounds if len(set(indices)) <= 1 else 1


def slices(requests: int, rounds: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` of each round's slice of a trace of ``requests``: ``rounds`` slices of nearly
    equal size, fewer when a slice would hold less than :data:`MIN_SLICE` requests (one at least)."""
    count = max(1, min(rounds, requests // MIN_SLICE))
    bounds = [round(k * requests / count) for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(count)]


def _memory() -> tuple[float, float]:
    info = psutil.Process().memory_info()
    return info.rss / MiB, info.vms / MiB


def _runtime_columns(runtime: Runtime) -> dict[str, Any]:
    cache = runtime.cache
    return {
        "variant": runtime.variant.name,
        "allocator": runtime.variant.allocator,
        "instantiation": runtime.variant.instantiation,
        "cache_policy": cache.config.policy,
        "cache_size": cache.config.size if cache.config.policy != "none" else 0,
        "call_path": runtime.call_path,
        # The runtime axis: which runtime served the row, its version, node's for v8, and the wasmtime it embeds ("" if none).
        "runtime": runtime.runtime_name,
        "runtime_version": runtime.runtime_version,
        "node_version": runtime.node_version,
        "wasmtime_version": runtime.wasmtime_version,
        **runtime.snapshot_columns,
    }


def measure(
    runtimes: Mapping[str, Runtime],
    trace: Trace,
    config: MeasureConfig = MeasureConfig(),
    parameters: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Measurement:
    """Serve ``trace`` with every runtime, interleaved, and return tidy results.

    ``parameters`` (the knobs that built the runtimes) are stored with the results.
    ``progress(variant, repetition, repeats)`` is called before each timed block.
    """
    import pandas as pd

    if not runtimes:
        raise ConfigError("no runtimes to measure")
    indices = list(trace.indices)
    run = md.new_run()
    previous_affinity = pin(config.cpu)
    got = _Collected(runtimes, indices, config)
    done, stopped_by = 0, ""
    try:
        calibration = calibrate(next(iter(runtimes.values())).engine)
        hygiene = Hygiene()
        got.warm_up()
        got.fit_budget()
        schedule = order.orders(list(runtimes), config.repeats)
        for rep in range(config.repeats):
            sequence = [name for name in schedule[rep] if name not in got.errors]
            got.record(rep, sequence, got.serve(rep, sequence, progress))
            done = rep + 1
        hygiene_info = hygiene.finish()
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM: the finished repetitions are a result of their own (pyperf keeps what it measured too);
        # the one under way is dropped whole, so every kept repetition has every variant's full trace.
        if done == 0:
            raise Interrupted(signal_name(exc), None, 0, config.repeats) from None
        stopped_by, hygiene_info = signal_name(exc), hygiene.finish()
    finally:
        for runtime in runtimes.values():
            runtime.close()
        if previous_affinity is not None:
            os.sched_setaffinity(0, previous_affinity)
    meta = {**run, **calibration, **hygiene_info, **trace.describe(), **_run_columns(config, len(runtimes), got),
            "parameters": dict(parameters or {})}
    phases = pd.concat(got.phases, ignore_index=True) if got.phases else empty_phases()
    if stopped_by:
        meta.update({"partial": True, "repeats": done, "repeats_planned": config.repeats, "interrupted_by": stopped_by})
        phases = phases[phases["repetition"] < done] if "repetition" in phases else phases
    _warn_if_busy(meta)
    measurement = Measurement(
        summary=_with_metadata(pd.DataFrame(got.rows), meta),
        samples=_with_run(pd.concat(got.samples, ignore_index=True) if got.samples else _empty_samples(), run),
        phases=_with_run(phases, run),
        metadata=meta,
        errors=got.errors,
    )
    if stopped_by:
        raise Interrupted(stopped_by, measurement, done, config.repeats)
    return measurement


class _Collected:
    """One run's variants served repetition by repetition, and what they gave: summary rows, sample and phase
    tables, and the variants that failed (each recorded once with its error, then left out)."""

    def __init__(self, runtimes: Mapping[str, Runtime], indices: list[int], config: MeasureConfig) -> None:
        self.runtimes, self.indices, self.config = runtimes, indices, config
        self.parts = slices(len(indices), rounds_for(indices, config.rounds))
        self.rows: list[dict[str, Any]] = []
        self.samples: list[pd.DataFrame] = []
        self.phases: list[pd.DataFrame] = []
        self.errors: dict[str, str] = {}
        self.lookups: dict[str, float] = {}
        self.crossings: dict[str, Crossings | None] = {}
        self.warmups: dict[str, WarmupDone] = {}
        self.budget: BudgetFit | None = None

    def fit_budget(self) -> None:
        """With a time budget, the first requests of the trace that fit it, as the warm-up predicts, and the slices
        of that shorter trace (every variant and repetition serve the same ones)."""
        costs = {name: done.ns_per_request for name, done in self.warmups.items() if name not in self.errors}
        if self.config.time_budget_s is None or not costs:
            return
        self.budget = fit(float(self.config.time_budget_s), len(self.indices), costs, self.config.repeats, self.config.phases)
        self.indices = self.indices[:self.budget.requests]
        self.parts = slices(len(self.indices), rounds_for(self.indices, self.config.rounds))

    def fail(self, name: str, repetition: int, exc: WasmlabError) -> None:
        self.errors[name] = first_line(exc)
        self.rows.append({**_runtime_columns(self.runtimes[name]), "repetition": repetition, "status": "error", "error": self.errors[name]})

    def warm_up(self) -> None:
        """Every variant's untimed requests, then its cache lookup and C calls counted (outside every timed block)."""
        first = self.indices[0]
        for name, runtime in self.runtimes.items():
            try:
                self.warmups[name] = warm_up(runtime, self.indices, parse_warmup(self.config.warmup))
                if runtime.runtime_name == "wasmtime":  # another runtime (v8) has neither the lab's cache nor C calls
                    self.lookups[name] = cache_lookup_ns(runtime, first)
                    self.crossings[name] = count_crossings(runtime, first)
            except WasmlabError as exc:
                self.fail(name, 0, exc)

    def serve(self, rep: int, sequence: list[str], progress: Callable[[str, int, int], None] | None) -> dict[str, _Block]:
        """One repetition: round by round, each variant of ``sequence`` serves its slice, the cyclic GC off throughout
        (a collection would land in one variant's slice); in phased mode the same requests phased right after."""
        blocks: dict[str, _Block] = {}
        rewarm = REWARM_PER_SLICE if len(self.parts) > 1 else 0
        gc.collect()
        gc.disable()
        try:
            for start, stop in self.parts:
                for name in sequence:
                    if name in self.errors:
                        continue
                    runtime = self.runtimes[name]
                    if name not in blocks:
                        if progress is not None:
                            progress(name, rep, self.config.repeats)
                        blocks[name] = _Block(runtime, self.indices)
                    try:
                        blocks[name].serve(start, stop, rewarm=rewarm)
                        if self.config.phases:
                            # Right after the timed slice: both see the machine in one state.
                            self.phases.append(phased_block(runtime, self.indices[start:stop], rep, first=start, manage_gc=False))
                    except WasmlabError as exc:
                        self.fail(name, rep, exc)
        finally:
            gc.enable()
        return blocks

    def record(self, rep: int, sequence: list[str], blocks: dict[str, _Block]) -> None:
        """The summary row (and the samples) of each variant that served the whole repetition."""
        import pandas as pd

        for position, name in enumerate(sequence):
            if name in self.errors or name not in blocks:
                continue
            block = blocks[name]
            self.rows.append({**block.summary(), "repetition": rep, "position": position, "status": "ok", "error": "",
                              "rounds": len(self.parts), "cache_lookup_ns": self.lookups.get(name, float("nan")),
                              **_crossing_columns(self.crossings.get(name)), **self.warmups[name].columns()})
            if self.config.keep_samples:
                self.samples.append(pd.DataFrame({
                    "variant": name, "repetition": rep, "request_index": np.arange(len(self.indices), dtype=np.int32),
                    "workload_index": np.asarray(self.indices, dtype=np.int32),
                    "latency_ns": np.asarray(block.samples, dtype=np.int64), "outcome": pd.Categorical(block.outcomes),
                    "fresh_instance": np.asarray(block.fresh, dtype=bool), "carried_over": np.asarray(block.carried, dtype=bool)}))


def _run_columns(config: MeasureConfig, variants: int, got: _Collected) -> dict[str, Any]:
    """How the run was taken, for its metadata."""
    warmup = AUTO if isinstance(config.warmup, AutoWarmup) else config.warmup
    return {"requests": len(got.indices), "warmup": warmup, "repeats": config.repeats, "phases": config.phases,
            "cpu_pinned": config.cpu if config.cpu is not None else -1, "gc_disabled_in_timed_loops": True,
            "variant_order": order.describe(variants, config.repeats), "rounds": len(got.parts),
            "rewarm_per_slice": REWARM_PER_SLICE if len(got.parts) > 1 else 0,
            **(got.budget.columns() if got.budget is not None else {})}


def _warn_if_busy(meta: Mapping[str, Any]) -> None:
    if meta["machine_busy"]:
        warnings.warn(
            f"the machine was busy during this run: other processes used {meta['other_cpu_cores']:.2f} cores "
            f"(load average {meta['loadavg_1m_before']:.2f} -> {meta['loadavg_1m_after']:.2f}); figures may be noisy",
            RuntimeWarning,
            stacklevel=3,
        )


def _crossing_columns(crossings: Crossings | None) -> dict[str, float]:
    """A variant's counted C calls per request and their ctypes cost (``nan`` where the count failed)."""
    if crossings is None:
        return {"crossings_per_request": float("nan"), "dispatch_ns_per_request": float("nan")}
    return {"crossings_per_request": crossings.count, "dispatch_ns_per_request": crossings.dispatch_ns}


def expected_kind(workload: Workload) -> str:
    """The outcome kind a request of ``workload`` is expected to end with (``ok``, or what a hostile guest provokes)."""
    return kind_of(workload.expected_outcome)


class _Block:
    """One variant's timed requests in one repetition, served slice by slice (see ``MeasureConfig.rounds``)
    with the cyclic GC off; :meth:`summary` is its row of the summary table."""

    def __init__(self, runtime: Runtime, indices: list[int]) -> None:
        self.runtime = runtime
        self.indices = indices
        runtime.cache.reset_stats()
        self.waits_before, self.wait_ns_before = runtime.pool_waits, runtime.pool_wait_ns
        n = len(indices)
        self.samples = [0] * n
        self.outcomes = [OK] * n
        # Instance reuse: whether each request ran on a fresh instance, and whether it carried state over (from the
        # runtime's ledger; without reuse every request is on a fresh instance).
        self.ledger = runtime.parts.ledger
        self.fresh, self.carried = [True] * n, [False] * n
        self.failures: list[tuple[int, BaseException]] = []
        self.wall_ns = 0
        self.output_checks = self.output_check_ns = 0  # the lab's output checks, made outside the requests' time
        self.kernel = linux_counters.ZERO
        self.rss0, self.vms0 = _memory()
        # A guest that fails every request (a hostile one) has no warm state to restore.
        self.expects_ok = all(expected_kind(w) == OK for w in runtime.workloads)

    def _rewarm(self, index: int, count: int) -> None:
        runtime, stats = self.runtime, self.runtime.cache.stats
        counters = (stats.hits, stats.misses, stats.evictions, stats.compile_ns)
        waits, wait_ns = runtime.pool_waits, runtime.pool_wait_ns
        for _ in range(count):
            try:
                runtime.handle(index)
            except REQUEST_FAILURES:
                pass  # it is timed and classified when it is part of a slice
        stats.hits, stats.misses, stats.evictions, stats.compile_ns = counters
        self.waits_before += runtime.pool_waits - waits
        self.wait_ns_before += runtime.pool_wait_ns - wait_ns

    def serve(self, start: int, stop: int, rewarm: int = 0) -> None:
        """Serve and time requests ``start`` to ``stop`` of the trace, after ``rewarm`` untimed ones (of the
        same module, counted nowhere: the cache's counters and the pool's waits are put back)."""
        if rewarm and self.expects_ok:
            self._rewarm(self.indices[start], rewarm)
        out = [0] * (stop - start)
        failures: list[tuple[int, BaseException]] = []
        if self.ledger is not None:
            self.ledger.take()  # what warm-up and rewarm requests recorded is not this slice's
        before = linux_counters.counts()
        runtime = self.runtime
        if runtime.block is not None:  # the path times its own requests (the native loop, in C; WASI output checked apart)
            parts = runtime.parts
            checks, check_ns = parts.output_checks, parts.output_check_ns
            self.wall_ns += runtime.block(self.indices[start:stop], out, failures)
            self.output_checks += parts.output_checks - checks
            self.output_check_ns += parts.output_check_ns - check_ns
        else:
            self.wall_ns += timed_loop(runtime.handle, self.indices[start:stop], out, failures)
        self.kernel += linux_counters.counts() - before
        self.samples[start:stop] = out
        if self.ledger is not None:
            fresh, carried = self.ledger.take()
            self.fresh[start:start + len(fresh)], self.carried[start:start + len(carried)] = fresh, carried
        self.failures.extend((start + k, exc) for k, exc in failures)

    def summary(self) -> dict[str, Any]:
        runtime, indices, samples, outcomes = self.runtime, self.indices, self.samples, self.outcomes
        rss1, vms1 = _memory()
        n = len(indices)
        for k, exc in self.failures:
            outcomes[k] = classify(exc, runtime.memory_limit)
        counts = Counter(outcomes)
        kinds = Counter(kind_of(o) for o in outcomes)
        # Latency and throughput describe requests that were served (ended as the workload is expected to end);
        # the others are reported beside them with their own latency, never as throughput.
        expected = [expected_kind(runtime.workloads[index]) for index in indices]
        served = [samples[k] for k in range(n) if kind_of(outcomes[k]) == expected[k]]
        failed = [samples[k] for k in range(n) if kind_of(outcomes[k]) != expected[k]]
        return {
            **_runtime_columns(runtime),
            "requests": n,
            "served_requests": len(served),
            "failed_requests": len(failed),
            **(describe_ns(served) if served else {f"latency_us_{s}": float("nan") for s in LATENCY_STATISTICS}),
            "failed_latency_us_p50": float(np.median(failed)) / 1000 if failed else float("nan"),
            "total_ms": sum(samples) / 1e6,
            "wall_ms": self.wall_ns / 1e6,
            "throughput_rps": len(served) / (self.wall_ns / 1e9),
            **block_columns(runtime.variant.reuse, samples, [kind_of(outcomes[k]) == expected[k] for k in range(n)], self.fresh,
                            self.carried),
            **self.kernel.per_request(n),
            "rss_mib_before": self.rss0,
            "rss_mib_after": rss1,
            "vmsize_mib_before": self.vms0,
            "vmsize_mib_after": vms1,
            **runtime.cache.stats.as_dict(),
            **{f"outcome_{kind}": kinds.get(kind, 0) for kind in KINDS},
            "outcomes_json": json.dumps(dict(sorted(counts.items()))),
            "first_failure": first_line(self.failures[0][1]) if self.failures else "",
            "pool_waits": runtime.pool_waits - self.waits_before,
            "pool_wait_ms": (runtime.pool_wait_ns - self.wait_ns_before) / 1e6,
            # What the lab's check of WASI outputs costs, outside the latency above (nan: no output checked).
            "output_check_ns_per_request": self.output_check_ns / self.output_checks if self.output_checks else float("nan"),
        }


def _empty_samples() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("repetition", "int64"), ("request_index", "int32"), ("workload_index", "int32"), ("latency_ns", "int64"), ("outcome", "object"), ("fresh_instance", "bool"), ("carried_over", "bool"))})


def _with_run(frame: pd.DataFrame, run: Mapping[str, Any]) -> pd.DataFrame:
    frame.insert(0, "run_id", run["run_id"])
    return frame


def _with_metadata(frame: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """Every summary row carries the run's metadata, flattened into columns (parameters as JSON)."""
    for key, value in meta.items():
        if key == "parameters":
            frame["parameters_json"] = json.dumps(value, sort_keys=True, default=str)
        elif key not in frame.columns:
            frame[key] = value
    return frame

