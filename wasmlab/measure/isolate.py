"""``--isolate``: each variant in its own child process, so a runtime abort cannot take the lab down.

wasmtime's C API aborts the whole process in some situations (a Rust panic: a pool that cannot
reserve its address space, a component's WASI call in a store without a WASI context).  Here a
child that dies by a signal becomes the outcome ``crash`` with the lines it printed last; a
child that stops with the lab's own error is reported as that error; the other variants'
figures are kept.  The price: variants no longer share a process, so they are not interleaved.

Run as ``python -m wasmlab.measure.isolate OUT_DIR`` the module is the child: it reads a scenario as
JSON on stdin, measures it and saves the measurement into ``OUT_DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.errors import WasmlabError
from wasmlab.host.outcomes import KINDS
from wasmlab.host.variant import parse_variant
from wasmlab.measure.measurement import Measurement

CHILD_TIMEOUT_S = 3600


def _crash_line(stderr: str) -> str:
    """The informative lines of a dying child's stderr: Rust's panic message and its last cause."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip() and not line.strip().startswith("note:")]
    if not lines:
        return "(nothing on stderr)"
    panic = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if "panicked at" in line), None)
    last = lines[-1]
    return f"{panic} ... {last}" if panic and panic != last else last


def _limit_address_space(limit: int | None) -> Callable[[], None] | None:
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_isolated(scenario: Any, progress: Callable[[str, int, int], None] | None = None,
                 address_space: int | None = None) -> Measurement:
    """Measure each variant of ``scenario`` in a child process and merge the results.

    ``address_space`` limits each child's address space (``RLIMIT_AS``), as on a host with strict
    limits: it is how the lab's tests provoke a real abort.
    """
    parts: list[Measurement] = []
    failed_rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for variant in scenario.variants:
        single = dataclasses.replace(scenario, variants=(variant,))
        with tempfile.TemporaryDirectory(prefix="wasmlab-isolate-") as tmp:
            env = {**os.environ, "RUST_BACKTRACE": "0"}
            child = subprocess.run(
                [sys.executable, "-m", "wasmlab.measure.isolate", tmp], input=json.dumps(single.to_dict()), capture_output=True,
                text=True, env=env, timeout=CHILD_TIMEOUT_S, preexec_fn=_limit_address_space(address_space),
            )
            if child.returncode == 0 and (Path(tmp) / "summary.parquet").is_file():
                part = Measurement.load(tmp)
                parts.append(part)
                errors.update(part.errors)
            else:
                parsed = parse_variant(variant)
                if child.returncode < 0:
                    name = signal.Signals(-child.returncode).name
                    status, message = "crash", f"crash ({name}): {_crash_line(child.stderr)}"
                else:
                    status, message = "error", _crash_line(child.stderr).removeprefix("wasmlab: error: ")
                errors[variant] = message
                failed_rows.append({
                    "variant": parsed.name, "allocator": parsed.allocator, "instantiation": parsed.instantiation,
                    "call_path": parsed.call_path or scenario.call_path, "repetition": 0, "status": status, "error": message,
                    **{f"outcome_{kind}": 0 for kind in KINDS}, "outcome_crash": 1 if status == "crash" else 0,
                })
        if progress is not None:
            for rep in range(scenario.repeats):
                progress(variant, rep, scenario.repeats)
    if not parts:
        raise WasmlabError("every variant failed in isolation: " + "; ".join(f"{v}: {e}" for v, e in errors.items()))
    metadata = {**parts[0].metadata, **aggregate_children([dict(p.metadata) for p in parts]),
                "variant_order": "one child process per variant (--isolate), not interleaved", "isolated": True}
    summary = pd.concat([p.summary for p in parts] + [pd.DataFrame(failed_rows)], ignore_index=True)
    for column in ("run_id", "timestamp", "variant_order"):
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


def _child(out_dir: str) -> int:
    from wasmlab.measure import scenario as scenarios
    from wasmlab.measure.results import save_measurement

    try:
        scenario = scenarios.Scenario.from_dict(json.loads(sys.stdin.read()))
        save_measurement(scenarios.run(scenario), Path(out_dir))
    except (WasmlabError, ValueError) as exc:
        print(f"wasmlab: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
