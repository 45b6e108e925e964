"""The report page's "How it was measured" section: folded under a one-line summary, complete when opened
(repetitions, warm-up, interval method, what each request was checked against, machine, versions, each point's
timings), and never wider than the page: facts wrap, the per-point table scrolls inside its own box."""

from __future__ import annotations

import json
from html import escape
from typing import Any

import pandas as pd

from wasmlab.measure.stats import PAIRED_METHOD
from wasmlab.report import page_format as fmt
from wasmlab.report import sweeps
from wasmlab.report.text import CHECK_WORDS

LATENCY_METHOD = ("mean latency per request: geometric mean of the per-repetition means, 95% Student-t interval on "
                  "their logs")


def _first(table: pd.DataFrame, column: str, default: Any = None) -> Any:
    if column not in table or table[column].dropna().empty:
        return default
    return table[column].dropna().iloc[0]


def _distinct(table: pd.DataFrame, column: str) -> str:
    if column not in table:
        return "not recorded"
    values = [str(v) for v in dict.fromkeys(table[column].dropna())]
    return ", ".join(values) if values else "not recorded"


def _checked(table: pd.DataFrame) -> str:
    """What each request's result was checked against, per distinct setting in the sweep."""
    words = [CHECK_WORDS.get(str(v), str(v)) for v in dict.fromkeys(table["workload_check"].dropna())] \
        if "workload_check" in table else []
    expected = _first(table, "workload_expected_outcome")
    outcome = f"; expected outcome of each request: {expected}" if expected is not None else ""
    return ("; ".join(words) or "not recorded (results from before the lab recorded its check)") + outcome


def _repetitions(table: pd.DataFrame) -> str:
    repeats, requests, warmup = (_first(table, c) for c in ("repeats", "requests", "warmup"))
    if repeats is None or requests is None:
        return "not recorded"
    budget = _first(table, "time_budget_s")
    fitted = (f" (the first of {int(_first(table, 'requests_asked') or requests)} that fit a {float(budget):g} s time budget, "
              f"as each variant's warm-up predicted)" if budget is not None else "")
    return (f"{int(repeats)} repetition(s) of {int(requests)} timed requests per variant{fitted}, after {_warmup(warmup)} "
            "untimed warm-up requests per variant")


def _warmup(warmup: Any) -> str:
    """A warm-up as a count, or ``auto``: as the run was asked."""
    return str(warmup) if isinstance(warmup, str) and not warmup.isdigit() else str(int(warmup or 0))


def _harness(table: pd.DataFrame) -> str:
    timer, harness = _first(table, "timer_overhead_ns"), _first(table, "harness_overhead_ns")
    if timer is None:
        return "not recorded"
    return (f"a perf_counter_ns pair costs {float(timer):.0f} ns; the timed loop around a no-op "
            f"{float(harness or 0):.0f} ns per request (measured before each point)")


def _load(table: pd.DataFrame) -> str:
    if "other_cpu_cores" not in table:
        return "not recorded"
    busy = int(table["machine_busy"].fillna(False).astype(bool).sum()) if "machine_busy" in table else 0
    return (f"other processes used up to {table['other_cpu_cores'].max():.2f} cores while points ran; "
            f"{busy} of {len(table)} runs flagged the machine busy")


def _versions(machine: dict[str, Any]) -> str:
    names = ("python", "wasmtime", "wasmlab", "pandas", "numpy", "scipy", "papermill", "cachetools")
    return ", ".join(f"{n} {machine[f'{n}_version']}" for n in names if machine.get(f"{n}_version"))


def _settings(manifest: dict[str, Any]) -> str:
    spec = manifest["spec"]
    fixed = json.dumps(spec.get("parameters", {}), sort_keys=True)
    grid = json.dumps(spec.get("grid", {}), sort_keys=True)
    return f"fixed {fixed}; grid {grid}; {spec.get('replicates', 1)} replicate(s); spec {spec.get('path', '?')}"


def _pinning(table: pd.DataFrame) -> str:
    pinned = sorted({int(v) for v in table["cpu_pinned"].dropna()} - {-1}) if "cpu_pinned" in table else []
    return f"pinned to CPU {', '.join(map(str, pinned))}" if pinned else "not pinned to a CPU"


def _summary(table: pd.DataFrame, machine: dict[str, Any]) -> str:
    repeats, requests, warmup = (_first(table, c) for c in ("repeats", "requests", "warmup"))
    shape = (f"{int(repeats)} × {int(requests)} requests, warm-up {_warmup(warmup)}" if repeats is not None
             and requests is not None else "repetitions not recorded")
    return (f"{shape} · 95% Student-t intervals over repetitions · {machine['cpu_model']}, {machine['cpu_count']} cores"
            f" · wasmtime {machine['wasmtime_version']}")


def point_rows(manifest: dict[str, Any]) -> list[list[str]]:
    """Per point: its status, wall time, measurement time, time outside the measurement, and who ran beside it."""
    rows = []
    for point_id, point in manifest["points"].items():
        beside = ", ".join(point.get("overlapped_by", [])) if "overlapped_by" in point else "not recorded"
        rows.append([point_id, str(point.get("status", "?")), fmt.number(point.get("wall_s"), 1),
                     fmt.number(point.get("measure_s"), 1), fmt.number(point.get("non_measurement_s"), 1),
                     beside or "none"])
    return rows


def measured_section(table: pd.DataFrame, manifest: dict[str, Any], varying: list[str]) -> str:
    """The folded section, as HTML."""
    machine = manifest["machine"]
    facts = [
        ("Repetitions", _repetitions(table)),
        ("Variant order", _distinct(table, "variant_order")),
        ("Call paths", _distinct(table, "call_path")),
        ("Intervals", f"speedups: {PAIRED_METHOD}; {LATENCY_METHOD}"),
        ("Checked against", _checked(table)),
        ("Workload", f"{_distinct(table, 'workload')} (entry {_distinct(table, 'workload_entry')}): "
                     f"{_distinct(table, 'workload_provenance')}"),
        ("Harness", _harness(table)),
        ("Machine", f"{machine['cpu_model']}, {machine['cpu_count']} cores, {machine.get('platform', '')}; "
                    f"{_pinning(table)}"),
        ("Load", _load(table)),
        ("Versions", f"{_versions(machine)}; commit {str(machine.get('git_commit', '?'))[:12]}"),
        ("When", f"{manifest['start']} to {manifest['end']}, executor {manifest.get('executor', '?')}"),
        ("Overlap", sweeps.describe_overlap(manifest)),
        ("Sweep settings", _settings(manifest)),
        ("Files", "results.parquet (every run of every point), manifest.json (this sweep), "
                  "points/<point>/ (each point's executed notebook and results)"),
    ]
    points = fmt.table(["Point", "Status", "Wall (s)", "Measuring (s)", "Outside the measurement (s)", "Ran beside"],
                       point_rows(manifest), numeric=[False, False, True, True, True, False],
                       caption="Each point's own time: outside the measurement is kernel start, imports and plots.")
    return (f'<h2 id="measured">How it was measured</h2><details><summary>Details <span>{escape(_summary(table, machine))}'
            f"</span></summary>{fmt.facts(facts)}{points}</details>")
