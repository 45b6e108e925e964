"""``wasmlab history``: every saved run indexed by machine, commit, wasmtime version and environment (as asv indexes its
results), and one figure followed across them with its interval, a change outside the noise flagged.

A run is a folder with ``metadata.json`` and a ``summary.parquet`` of per-repetition variant rows (``wasmlab
reproduce``, a sweep point's results).  A figure (workload, variant, call path, latency column) is, per run, the
geometric mean over its repetitions with a 95% Student-t interval on the logs; two consecutive runs **on the same
machine** are compared as ``wasmlab compare`` compares two runs (ratio of geometric means, Welch-t interval over
repetitions), and the later one is flagged when that interval excludes 1.  Runs of other machines are listed, never
compared: a figure moves with the machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from wasmlab.errors import ConfigError
from wasmlab.measure.results import read_metadata, read_table
from wasmlab.measure.stats import GEOMETRIC_METHOD, UNPAIRED_METHOD, geometric_interval, unpaired_ratio

# The JSON of ``wasmlab history --format json``; raised when a field changes meaning or goes.
HISTORY_FORMAT_VERSION = 1
METRICS = ("latency_us_mean", "latency_us_p50", "latency_us_p99")
INDEX_COLUMNS = ["run", "timestamp", "machine", "git_commit", "wasmtime_version", "python_version", "platform",
                 "workloads", "variants", "call_paths", "repeats", "machine_busy", "folder"]


def machine_of(metadata: dict[str, Any]) -> str:
    """The machine a run was measured on, as asv names one: host, CPU model and cores."""
    return f"{metadata.get('hostname', '?')} / {metadata.get('cpu_model', '?')} / {metadata.get('cpu_count', '?')} cores"


def _runs(roots: Iterable[Path]) -> Iterable[tuple[Path, dict[str, Any], pd.DataFrame]]:
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"results folder {str(root)!r} does not exist; allowed: a folder of saved runs (default data/results)")
        for metadata_file in sorted(root.rglob("metadata.json")):
            summary = metadata_file.parent / "summary.parquet"
            if not summary.is_file():
                continue
            metadata = read_metadata(metadata_file.parent)
            table = read_table(summary)
            if metadata is None or not {"variant", "latency_us_mean", "repetition"} <= set(table.columns):
                continue  # a notebook's own summary (a curve, a table of figures), not per-repetition variant rows
            yield metadata_file.parent, metadata, table


def _distinct(table: pd.DataFrame, column: str) -> str:
    return ",".join(sorted(map(str, table[column].dropna().unique()))) if column in table else ""


@dataclass
class Index:
    """Every run found: one row each (:data:`INDEX_COLUMNS`), and its table by run."""

    runs: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def index(roots: Sequence[Path]) -> Index:
    """The runs under ``roots``, oldest first."""
    rows, tables = [], {}
    for folder, metadata, table in _runs(roots):
        run = str(metadata.get("run_id") or folder.name)
        tables[run] = table
        rows.append({"run": run, "timestamp": str(metadata.get("timestamp", "")), "machine": machine_of(metadata),
                     "git_commit": str(metadata.get("git_commit") or "")[:12], "wasmtime_version": metadata.get("wasmtime_version", ""),
                     "python_version": metadata.get("python_version", ""), "platform": metadata.get("platform", ""),
                     "workloads": _distinct(table, "workload"), "variants": _distinct(table, "variant"),
                     "call_paths": _distinct(table, "call_path"), "repeats": metadata.get("repeats"),
                     "machine_busy": bool(metadata.get("machine_busy", False)), "folder": str(folder)})
    runs = pd.DataFrame(rows, columns=INDEX_COLUMNS).sort_values("timestamp", kind="stable").reset_index(drop=True)
    return Index(runs, tables)


@dataclass(frozen=True)
class Selection:
    """The figure followed: a variant of a workload on a call path, and which latency column."""

    workload: str
    variant: str
    call_path: str = "lean"
    metric: str = "latency_us_mean"

    def __post_init__(self) -> None:
        # ``pooled+cached@native`` names its call path itself.
        base, at, path = self.variant.partition("@")
        if at:
            object.__setattr__(self, "variant", base)
            object.__setattr__(self, "call_path", path)

    def rows(self, table: pd.DataFrame) -> pd.DataFrame:
        # Tables name a variant of a path other than lean with its suffix (``cached@api``) and say the path in call_path.
        variants = table["variant"].astype(str).str.partition("@")[0]
        found = table[(variants == self.variant) & (table["workload"].astype(str) == self.workload)]
        if "call_path" in found:
            found = found[found["call_path"].fillna("lean") == self.call_path]
        if "status" in found:
            found = found[found["status"] == "ok"]
        return found


def series(found: Index, selection: Selection, machine: str | None = None) -> tuple[pd.DataFrame, str, int]:
    """One row per run on ``machine`` (default: the machine of the latest run holding the figure) with the figure, its
    interval, and its ratio to the previous such run with that ratio's interval and whether it changed; and how many
    runs holding the figure are of other machines."""
    if selection.metric not in METRICS:
        raise ConfigError(f"--metric {selection.metric!r} is not allowed; allowed: {', '.join(METRICS)}")
    holding = [(run, selection.rows(found.tables[run])) for run in found.runs["run"]]
    holding = [(run, rows) for run, rows in holding if len(rows)]
    if not holding:
        raise ConfigError(f"no saved run holds {selection.variant!r} of workload {selection.workload!r} on the "
                          f"{selection.call_path} path; allowed: a figure of a listed run (wasmlab history lists them)")
    by_run = found.runs.set_index("run")
    machine = machine or str(by_run.loc[holding[-1][0], "machine"])
    rows: list[dict[str, Any]] = []
    previous: pd.Series | None = None
    for run, table in holding:
        if by_run.loc[run, "machine"] != machine:
            continue
        values = table[selection.metric].astype(float)
        figure = geometric_interval(values.to_numpy())
        row = {"run": run, **{c: by_run.loc[run, c] for c in ("timestamp", "git_commit", "wasmtime_version", "machine_busy")},
               "repetitions": len(values), "figure_us": figure.point, "ci95_low": figure.low, "ci95_high": figure.high,
               "ratio_to_previous": math.nan, "ratio_ci95_low": math.nan, "ratio_ci95_high": math.nan, "changed": ""}
        if previous is not None:
            ratio = unpaired_ratio(values.to_numpy(), previous.to_numpy())
            row.update(ratio_to_previous=ratio.point, ratio_ci95_low=ratio.low, ratio_ci95_high=ratio.high)
            if ratio.low > 1 or ratio.high < 1:
                row["changed"] = "slower" if ratio.low > 1 else "faster"
        rows.append(row)
        previous = values
    if not rows:
        raise ConfigError(f"--machine {machine!r} holds no run of this figure; allowed: "
                          + ", ".join(sorted({str(by_run.loc[run, 'machine']) for run, _ in holding})))
    return pd.DataFrame(rows), machine, len(holding) - len(rows)


def _interval(point: float, low: float, high: float, digits: int = 3) -> str:
    if math.isnan(point):
        return ""
    return f"{point:.{digits}g} ({low:.{digits}g}-{high:.{digits}g})" if not math.isnan(low) else f"{point:.{digits}g} (no interval: 1 repetition)"


def text(table: pd.DataFrame, selection: Selection, machine: str, others: int) -> str:
    """The series as a person reads it."""
    lines = [f"{selection.workload} {selection.variant} on the {selection.call_path} path: {selection.metric} (µs) per run on {machine}",
             f"  each run: {GEOMETRIC_METHOD}; against the previous run: {UNPAIRED_METHOD}; CHANGED where that interval excludes 1",
             f"  {'run':<26} {'commit':<12} {'wasmtime':<9} {'µs (95% interval)':<26} {'vs previous (95% interval)':<28}"]
    for row in table.to_dict("records"):
        flag = f"CHANGED ({row['changed']})" if row["changed"] else ("" if math.isnan(row["ratio_to_previous"]) else "within noise")
        busy = " (machine busy)" if row["machine_busy"] else ""
        lines.append(f"  {row['run']:<26} {row['git_commit'][:12]:<12} {row['wasmtime_version']!s:<9} "
                     f"{_interval(row['figure_us'], row['ci95_low'], row['ci95_high']):<26} "
                     f"{_interval(row['ratio_to_previous'], row['ratio_ci95_low'], row['ratio_ci95_high']):<20} {flag}{busy}".rstrip())
    if others:
        lines.append(f"  {others} run(s) of this figure on other machines are not compared (--machine picks one)")
    return "\n".join(lines)


def document(table: pd.DataFrame, selection: Selection, machine: str) -> str:
    """The series as ``--format json`` prints it."""
    runs = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in table.to_dict("records")]
    return json.dumps({"format_version": HISTORY_FORMAT_VERSION, "workload": selection.workload, "variant": selection.variant,
                       "call_path": selection.call_path, "metric": selection.metric, "machine": machine,
                       "method": {"run": GEOMETRIC_METHOD, "change": UNPAIRED_METHOD}, "runs": runs}, indent=2, default=str)


def plot(table: pd.DataFrame, selection: Selection, machine: str) -> Figure:
    """The figure across runs with its intervals; a run that changed against the previous one in red."""
    grid = Figure(figsize=(max(6.0, 0.9 * len(table) + 2), 4))
    axes = grid.subplots()
    x = range(len(table))
    low = (table["figure_us"] - table["ci95_low"]).fillna(0)
    high = (table["ci95_high"] - table["figure_us"]).fillna(0)
    axes.errorbar(x, table["figure_us"], yerr=[low, high], fmt="o-", capsize=3, color="tab:blue", label="run (95% interval)")
    changed = table["changed"] != ""
    axes.scatter([i for i, c in zip(x, changed) if c], table["figure_us"][changed], s=90, facecolors="none",
                 edgecolors="tab:red", linewidths=2, label="changed against the previous run", zorder=3)
    axes.set_xticks(list(x), [f"{c[:8] or '?'}\n{w}" for c, w in zip(table["git_commit"], table["wasmtime_version"])], fontsize=8)
    axes.set(xlabel="run (commit, wasmtime), oldest first", ylabel=f"{selection.metric} (µs)", ylim=(0, None),
             title=f"{selection.workload} {selection.variant} @{selection.call_path}\n{machine}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    grid.tight_layout()
    return grid


def listing(found: Index) -> str:
    """Every run, grouped by machine, as ``wasmlab history`` without a figure prints them."""
    if found.runs.empty:
        return "no saved runs found"
    lines = []
    for machine, runs in found.runs.groupby("machine", sort=False):
        lines.append(f"{machine}: {len(runs)} run(s)")
        for row in runs.to_dict("records"):
            busy = ", machine busy" if row["machine_busy"] else ""
            lines.append(f"  {row['run']:<26} commit {row['git_commit'][:12] or '?':<12} wasmtime {row['wasmtime_version']:<8} "
                         f"python {row['python_version']:<7} {row['workloads']}: {row['variants']} @{row['call_paths']}{busy}")
    return "\n".join(lines)
