"""The short printout of a run: one table of every variant by call path, one figure per cell (µs per request, the
seed's statistic) with its speedup and interval, and two lines on how it was measured.  It is what ``wasmlab report``
prints for the seed sweep (``make demo``): a newcomer reads it in a minute, and every other figure of the run (the
percentiles, page faults, hit rates, the harness's own costs, native/lean per composition) is in the HTML report and
in ``wasmlab report --full``, one command away."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from wasmlab.measure.measurement import Measurement
from wasmlab.report import variant_style
from wasmlab.report.text import CHECK_WORDS, OPTIMIZED, REFERENCE

DEFAULT_PATH = "lean"  # a variant named without @path ran on the run's default path (lean in the seed sweep)


def _speedup(row: dict[str, Any]) -> str:
    low, high = row.get("speedup_ci_low"), row.get("speedup_ci_high")
    if row["variant"] == row.get("speedup_over"):
        return "1x (the reference)"
    if row.get("speedup") is None or math.isnan(row["speedup"]):
        return f"no baseline on {variant_style.call_path(str(row['variant']), DEFAULT_PATH)}"
    digits = 1 if row["speedup"] >= 10 else 2  # 1.02x, where a pooled baseline differs from its own by noise
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{row['speedup']:.{digits}f}x (one repetition)"
    return f"{row['speedup']:.{digits}f}x ({low:.{digits}f}-{high:.{digits}f})"


def _per_request_us(row: dict[str, Any], requests: int) -> float:
    """The seed's statistic: the geometric mean over repetitions of a repetition's total time, per request."""
    return float(row["total_ms_per_repetition"]) * 1000 / requests


def _us(value: float) -> str:
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}"


def _aligned(rows: list[list[str]], right: set[int]) -> str:
    """Columns two spaces apart; the figures in ``right`` right-aligned so their decimal points line up."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip()
                     for r in rows)


def variants_by_path(measurement: Measurement) -> str:
    """Every composition a row, every call path two columns: µs per request and the speedup over that path's baseline."""
    table = measurement.variants(REFERENCE)
    if table.empty:
        return ""
    rows = table.to_dict("records")
    default = str(measurement.metadata.get("parameters", {}).get("call_path") or DEFAULT_PATH).split(",")[0]
    paths = list(dict.fromkeys(variant_style.call_path(str(r["variant"]), default) for r in
                               variant_style.in_order(table).to_dict("records")))
    cells: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        name = str(row["variant"])
        cells.setdefault(variant_style.composition(name), {})[variant_style.call_path(name, default)] = [
            _us(_per_request_us(row, int(measurement.metadata["requests"]))), _speedup(row)]
    header: list[str] = ["variant"]
    for path in paths:
        header += [f"{path} µs", f"{path} speedup (CI)"]
    body = [[name, *[cell for path in paths for cell in cells[name].get(path, ["-", "-"])]]
            for name in variant_style.ordered(list(cells))]
    return _aligned([header, *body], right={1 + 2 * i for i in range(len(paths))})


def path_legend(measurement: Measurement) -> str:
    """What each call path of the run is, in a few words: the variants table's column names say only its name."""
    from wasmlab.host.callpaths import REGISTRY

    default = str(measurement.metadata.get("parameters", {}).get("call_path") or DEFAULT_PATH).split(",")[0]
    paths = dict.fromkeys(variant_style.call_path(str(v), default) for v in measurement.variants(REFERENCE)["variant"])
    return "; ".join(f"{p}: {REGISTRY[p].gloss}" for p in paths if p in REGISTRY and REGISTRY[p].gloss)


def measured(measurement: Measurement) -> str:
    """How the run was made, in two lines: its size, order and checks; the machine and how busy it was."""
    m = measurement.metadata
    busy = " (busy: rerun before trusting small differences)" if m.get("machine_busy") else ""
    return (f"Measured: {m['requests']} timed requests x {m['repeats']} repetitions per variant and path, after {m['warmup']} "
            f"untimed warm-up requests;\n  all interleaved; {CHECK_WORDS[str(m.get('workload_check', 'expected'))]}\n"
            f"Machine: {m['cpu_model']}, {m['cpu_count']} cores, wasmtime {m['wasmtime_version']}, wasmlab commit "
            f"{m['git_commit'][:12]}; other processes used {m['other_cpu_cores']:.2f} cores{busy}")


def points_line(best: pd.DataFrame, varying: list[str]) -> str:
    """A sweep's points in two lines: the lowest and highest speedup of the optimized variant, each with its point, and
    whether their intervals overlap (each point's line is in the report and ``report --full``)."""
    axes = " x ".join(f"{c.removeprefix('param_')} {', '.join(str(v) for v in dict.fromkeys(best[c]))}" for c in varying)
    path = " and ".join(dict.fromkeys(best["call_path"].astype(str)))
    low, high = best["ci95_low"], best["ci95_high"]
    overlap = ("no intervals (a point of one repetition has none)" if low.isna().any() or high.isna().any() else
               "all intervals overlap: no difference beyond noise" if low.max() <= high.min()
               else "not all intervals overlap: the report shows which points differ")
    def at(row: pd.Series) -> str:  # a speedup and the point it was measured at
        where = ", ".join(f"{c.removeprefix('param_')}={row[c]}" for c in varying)
        return f"{row['speedup']:.1f}x ({where})"

    low_point, high_point = best.loc[best["speedup"].idxmin()], best.loc[best["speedup"].idxmax()]
    return (f"{len(best)} points ({axes}), {OPTIMIZED} over {REFERENCE} on the {path} path:\n  from {at(low_point)} to "
            f"{at(high_point)}; {overlap}")


def seed_footnote(measurement: Measurement) -> str:
    """How the seed table's rows are made, in one line."""
    m = measurement.metadata
    return (f"Total time: geometric mean of the {m['repeats']} repetitions' totals; CI: Student t over the {m['repeats']} "
            f"per-repetition speedups;\n  latency: over all {m['repeats'] * m['requests']} requests (so the mean differs a "
            f"little from total time / {m['requests']})")


def seed_path(measurement: Measurement) -> str:
    """The call path the seed table's two variants ran on, for its title."""
    table = measurement.variants(REFERENCE)
    paths = table.loc[table["variant"] == OPTIMIZED, "call_path"]
    return f"{paths.iloc[0]} path, " if len(paths) else ""
