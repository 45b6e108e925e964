"""``--isolate``: each variant in its own child process, so a runtime abort cannot take the lab down.

wasmtime's C API aborts the whole process in some situations (a Rust panic: a pool that cannot
reserve its address space, a component's WASI call in a store without a WASI context).  Here a
child (:mod:`wasmlab.measure.child`) that dies by a signal becomes the outcome ``crash`` with the lines
it printed last; a child that stops with an error is reported as that error; the other variants'
figures are kept.  The price: variants no longer share a process, so they are not interleaved.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.errors import Interrupted, WasmlabError, signal_name
from wasmlab.host.outcomes import KINDS
from wasmlab.host.variant import parse_variant
from wasmlab.measure.budget import parse_budget
from wasmlab.measure.child import Reply, call_once
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import BY_KIND, with_runtime_notes

CHILD_TIMEOUT_S = 3600


def measure_variant(request: dict[str, Any]) -> None:
    """In the child: measure ``request["scenario"]`` (one variant) and save it into ``request["out_dir"]``."""
    from wasmlab.measure import scenario as scenarios
    from wasmlab.measure.results import save_measurement

    save_measurement(scenarios.run(scenarios.Scenario.from_dict(request["scenario"])), Path(request["out_dir"]))


def _budget_share(measurement: Any, variants: int) -> Any:
    """A child's measurement settings: its equal share of the run's time budget, which it fits to its one variant
    (so isolated variants may serve different counts of requests, each said in its row)."""
    budget = parse_budget(measurement.time_budget)
    return measurement if budget is None else dataclasses.replace(measurement, time_budget=budget / variants)


def _failed_row(scenario: Any, variant: str, reply: Reply) -> tuple[str, dict[str, Any]]:
    """The error of a variant whose child crashed or stopped with an error, and its row of the summary."""
    parsed = parse_variant(variant)
    if reply.status == "crash":
        status, message = "crash", reply.message
    else:
        status = "error"
        message = reply.message if reply.lab_error else f"{reply.error_type}: {reply.message}"
    return message, {
        "variant": parsed.name, "allocator": parsed.allocator, "instantiation": parsed.instantiation,
        "call_path": parsed.call_path or scenario.call_path, "repetition": 0, "status": status, "error": message,
        **{f"outcome_{kind}": 0 for kind in KINDS}, "outcome_crash": 1 if status == "crash" else 0,
    }


def run_isolated(scenario: Any, progress: Callable[[str, int, int], None] | None = None,
                 address_space: int | None = None) -> Measurement:
    """Measure each variant of ``scenario`` in a child process and merge the results.

    ``address_space`` limits each child's address space (``RLIMIT_AS``), as on a host with strict
    limits: it is how the lab's tests provoke a real abort.
    """
    parts: list[Measurement] = []
    failed_rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    try:
        for variant in scenario.variants:
            # The variant on its own runtime only: with the run's (wasmtime,extism) the child would expand it again.
            single = dataclasses.replace(scenario, variants=(variant,), runtime=parse_variant(variant).runtime,
                                         measurement=_budget_share(scenario.measurement, len(scenario.variants)))
            with tempfile.TemporaryDirectory(prefix="wasmlab-isolate-") as tmp:
                reply = call_once("wasmlab.measure.isolate:measure_variant", {"scenario": single.to_dict(), "out_dir": tmp},
                                  timeout_s=CHILD_TIMEOUT_S, address_space=address_space)
                if reply.ok and (Path(tmp) / "summary.parquet").is_file():
                    part = Measurement.load(tmp)
                    parts.append(part)
                    errors.update(part.errors)
                else:
                    errors[variant], row = _failed_row(scenario, variant, reply)
                    failed_rows.append(row)
            if progress is not None:
                for rep in range(scenario.repeats):
                    progress(variant, rep, scenario.repeats)
    except KeyboardInterrupt as exc:
        # The child under way was ended by Child.call; the variants whose children finished are kept, whole.
        done = len(parts) + len(failed_rows)
        partial = _merged(parts, failed_rows, errors, {"partial": True, "variants_planned": len(scenario.variants),
                                                       "interrupted_by": signal_name(exc)}) if parts else None
        raise Interrupted(signal_name(exc), partial, done, len(scenario.variants), "variants") from None
    if not parts:
        raise WasmlabError("every variant failed in isolation: " + "; ".join(f"{v}: {e}" for v, e in errors.items()))
    # The run's runtime notes (what --runtime left out, how other runtimes compile), which no single-variant child knows.
    return with_runtime_notes(scenario, _merged(parts, failed_rows, errors, {}))


def _merged(parts: list[Measurement], failed_rows: list[dict[str, Any]], errors: dict[str, str], extra: dict[str, Any]) -> Measurement:
    """One record of the children's records, the failed variants' rows and ``extra`` metadata."""
    metadata = {**parts[0].metadata, **aggregate_children([dict(p.metadata) for p in parts]),
                "variant_order": "one child process per variant (--isolate), not interleaved", "isolated": True, **extra}
    # A variant whose child failed has not said which path its workloads' kind chose (BY_KIND): the one the others ran.
    ran = metadata.get("parameters", {}).get("call_path")
    failed_rows = [{**row, "call_path": ran} if row["call_path"] == BY_KIND else row for row in failed_rows]
    summary = pd.concat([p.summary for p in parts] + [pd.DataFrame(failed_rows)], ignore_index=True)
    for column in ("run_id", "timestamp", "variant_order", *extra):
        summary[column] = metadata[column]
    return Measurement(
        summary=summary,
        samples=pd.concat([p.samples.assign(run_id=metadata["run_id"]) for p in parts], ignore_index=True),
        phases=pd.concat([p.phases.assign(run_id=metadata["run_id"]) for p in parts], ignore_index=True),
        metadata=metadata,
        errors=errors,
    )


# What each child measured of the harness and the machine, and how the children's values combine: the
# harness's costs by their median over the children (a child's calibration is one sample of the same
# quantity), the load from the first child's start to the last one's end, busy if any child was busy.
_MEDIAN = ("timer_overhead_ns", "harness_overhead_ns", "crossing_ns")


def aggregate_children(children: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's calibration, load and busy flag from every child's metadata, not only the first's."""
    import statistics

    out: dict[str, Any] = {key: statistics.median(float(c[key]) for c in children) for key in _MEDIAN if all(key in c for c in children)}
    walls = [float(c.get("run_wall_s", 0.0)) for c in children]
    out.update({
        "loadavg_1m_before": children[0].get("loadavg_1m_before"),
        "loadavg_1m_after": children[-1].get("loadavg_1m_after"),
        # Other processes' cores, weighted by each child's wall time.
        "other_cpu_cores": sum(float(c.get("other_cpu_cores", 0.0)) * w for c, w in zip(children, walls)) / max(sum(walls), 1e-9),
        "run_wall_s": sum(walls),
        "machine_busy": any(bool(c.get("machine_busy")) for c in children),
        "children": len(children),
        "children_calibration": [{key: c.get(key) for key in _MEDIAN} for c in children],
    })
    return out
