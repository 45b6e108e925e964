"""The runtime axis side by side: every variant of every runtime with its interval, and each other runtime's variant
over wasmtime's native pooled+cached (the lab's fastest wasmtime host), paired by repetition."""

from __future__ import annotations

from typing import Any

import pandas as pd

from wasmlab.measure.measurement import Measurement
from wasmlab.measure.stats import GEOMETRIC_METHOD, PAIRED_METHOD, geometric_interval, paired_by_repetition, per_repetition

WASMTIME = "wasmtime"
REFERENCE = ("pooled+cached", "native")  # composition and call path the other runtimes are compared with


def _ok(measurement: Measurement) -> pd.DataFrame:
    summary = measurement.summary
    return summary[summary["status"] == "ok"] if "runtime" in summary else summary.iloc[0:0]


def reference_variant(summary: pd.DataFrame) -> str | None:
    """The name of wasmtime native pooled+cached in this run (``pooled+cached`` or ``pooled+cached@native``), if it ran."""
    composition, path = REFERENCE
    rows = summary[(summary["runtime"] == WASMTIME) & (summary["call_path"] == path)
                   & (summary["variant"].str.split("@").str[0] == composition)]
    return str(rows["variant"].iloc[0]) if not rows.empty else None


def runtime_rows(measurement: Measurement) -> list[dict[str, Any]]:
    """Per variant: runtime, version, mean and median µs with their 95% intervals over repetitions, and (for another
    runtime's variant) its ratio to the reference with the paired interval; empty for a run of wasmtime alone."""
    summary = _ok(measurement)
    if summary.empty or set(summary["runtime"]) == {WASMTIME}:
        return []
    reference = reference_variant(summary)
    rows = []
    ran = list(dict.fromkeys(summary["variant"]))
    asked = [v for v in measurement.metadata.get("parameters", {}).get("variants", []) if v in ran]
    # The run's variant list order (wasmtime's first, then each other runtime's), not the order they happened to run in.
    for variant in dict.fromkeys([*asked, *ran]):
        first = summary[summary["variant"] == variant].iloc[0]
        mean = geometric_interval(per_repetition(summary, variant, "latency_us_mean").to_numpy())
        median = geometric_interval(per_repetition(summary, variant, "latency_us_p50").to_numpy())
        row: dict[str, Any] = {"variant": variant, "runtime": first["runtime"], "runtime_version": first["runtime_version"],
                               "mean_us": mean.point, "mean_ci95": (mean.low, mean.high), "p50_us": median.point,
                               "p50_ci95": (median.low, median.high), "ratio": None}
        if first["runtime"] != WASMTIME and reference is not None:
            ratio = paired_by_repetition(summary, variant, reference, "latency_us_mean")
            by_median = paired_by_repetition(summary, variant, reference, "latency_us_p50")
            row.update(ratio=ratio.point, ratio_ci95=(ratio.low, ratio.high), median_ratio=by_median.point,
                       median_ratio_ci95=(by_median.low, by_median.high))
        rows.append(row)
    return rows


def embedded(measurement: Measurement, runtime: str) -> str:
    """`` (wasmtime N)`` for another runtime that embeds a wasmtime of its own (extism), else ""."""
    summary = measurement.summary
    if runtime == WASMTIME or "wasmtime_version" not in summary:
        return ""
    found = [v for v in summary.loc[summary["runtime"] == runtime, "wasmtime_version"] if isinstance(v, str) and v]
    return f" (wasmtime {found[0]})" if found else ""


def _interval(bounds: tuple[float, float]) -> str:
    low, high = bounds
    return f"{low:.2f}-{high:.2f}" if low == low and high == high else "one repetition"


def runtimes_table(measurement: Measurement) -> str:
    """The runtimes side by side (empty string for a run of wasmtime alone), then the axis's notes."""
    rows = runtime_rows(measurement)
    if not rows:
        return ""
    reference = reference_variant(_ok(measurement))
    lines = [f"Runtimes side by side (per-request µs: {GEOMETRIC_METHOD}; ratio: over wasmtime native pooled+cached"
             f"{f' ({reference})' if reference else ', which did not run: no ratio'}, {PAIRED_METHOD}):"]
    for row in rows:
        text = (f"  {row['variant']:<26} {row['runtime']:<8} {row['runtime_version']:<20} mean {row['mean_us']:8.2f} µs "
                f"({_interval(row['mean_ci95'])})  p50 {row['p50_us']:8.2f} ({_interval(row['p50_ci95'])})")
        if row["ratio"] is not None:
            text += (f"  x{row['ratio']:.2f} ({_interval(row['ratio_ci95'])}) by means, x{row['median_ratio']:.2f} "
                     f"({_interval(row['median_ratio_ci95'])}) by medians")
        lines.append(text)
    versions = {(r["runtime"], r["runtime_version"] + embedded(measurement, r["runtime"])) for r in rows}
    node = measurement.summary.get("node_version")
    node_text = f", Node.js {next((v for v in node if v), '')}" if node is not None and any(node) else ""
    lines.append("Versions: " + ", ".join(f"{name} {version}" for name, version in sorted(versions)) + node_text)
    lines += [f"Note: {note}" for note in measurement.metadata.get("runtime_notes", [])]
    return "\n".join(lines)
