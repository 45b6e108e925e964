"""Notebook 10's measurements: what instance reuse (``+reuseN``) saves and what it carries over between requests, and
what a Wizer snapshot (``+snapshot``) saves a guest with heavy start-up, each against pooled+cached in the same run.

Every figure comes from the lab's own runs (:func:`wasmlab.measure.scenario.run`): variants interleaved in each
repetition, every request checked, a reused request's result compared with a fresh instance's and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from wasmlab.measure import snapshot_figures
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import Scenario, run

FRESH_EACH_TIME = "pooled+cached"

REUSE_COLUMNS = ["workload", "call_path", "reuse", "variant", "latency_us_p50", "latency_us_p99", "latency_us_p50_first",
                 "latency_us_p50_reused", "throughput_rps", "speedup", "speedup_ci_low", "speedup_ci_high",
                 "reused_requests", "carried_over_requests"]


def reuse_variants(reuse_list: Sequence[int]) -> str:
    """pooled+cached (a fresh instance per request) and pooled+cached+reuseN for each N > 1 of ``reuse_list``."""
    return ",".join([FRESH_EACH_TIME] + [f"{FRESH_EACH_TIME}+reuse{n}" for n in sorted(set(reuse_list)) if n > 1])


def reuse_curve(workloads: Sequence[str], reuse_list: Sequence[int], call_path: str = "native", **counts: Any
                ) -> tuple[pd.DataFrame, list[Measurement]]:
    """Each workload served with every reuse setting side by side (``counts``: requests, repeats, warmup, slots); one
    row per workload and variant, speedups over a fresh instance per request in the same run."""
    rows, measurements = [], []
    for workload in workloads:
        measurement = run(Scenario(workload=workload, variants=reuse_variants(reuse_list), call_path=call_path, **counts))
        measurements.append(measurement)
        table = measurement.variants(FRESH_EACH_TIME)
        for row in table.to_dict("records"):
            rows.append({"workload": workload, **{c: row.get(c) for c in REUSE_COLUMNS if c != "workload"}})
    frame = pd.DataFrame(rows, columns=REUSE_COLUMNS)
    frame["reuse"] = frame["reuse"].fillna(1).astype(int)
    frame["carried_over_share"] = frame["carried_over_requests"] / frame["reused_requests"].where(frame["reused_requests"] > 0)
    return frame, measurements


def reuse_figure(curve: pd.DataFrame) -> Figure:
    """Left: p50 per request against N (log-log), all requests and the reused ones apart; right: the share of reused
    requests that carried state over, per workload."""
    long = curve.melt(id_vars=["workload", "reuse"], value_vars=["latency_us_p50", "latency_us_p50_reused"],
                      var_name="requests", value_name="p50 µs").dropna()
    long["requests"] = long["requests"].map({"latency_us_p50": "all", "latency_us_p50_reused": "reused only"})
    grid = Figure(figsize=(11, 4))
    left, right = grid.subplots(1, 2)
    sns.lineplot(long, x="reuse", y="p50 µs", hue="workload", style="requests", markers=True, ax=left)
    left.set(xscale="log", yscale="log", xlabel="requests per instance (N of +reuseN)", title="p50 per request")
    carried = curve[curve["reuse"] > 1]
    sns.barplot(carried, x="reuse", y="carried_over_share", hue="workload", ax=right)
    for bars in right.containers:  # a pure guest's 0 is a bar of no height: say it
        right.bar_label(bars, fmt="%.2f")
    right.set(ylim=(0, 1.05), xlabel="requests per instance", ylabel="share of reused requests",
              title="reused requests that carried state over")
    grid.tight_layout()
    return grid


def snapshot_table(kib_list: Sequence[int], call_paths: Sequence[str] = ("native", "lean"), **counts: Any
                   ) -> tuple[pd.DataFrame, list[Measurement]]:
    """``startup-heavy:kib=K`` served with its start-up on every request and from its Wizer snapshot, side by side,
    per size and call path: p50s, their ratio, faults per request, the snapshot's size, Wizer's and compile times."""
    rows, measurements = [], []
    for kib in kib_list:
        for path in call_paths:
            measurement = run(Scenario(workload=f"startup-heavy:kib={kib}", variants=f"{FRESH_EACH_TIME},{FRESH_EACH_TIME}+snapshot",
                                       call_path=path, **counts))
            measurements.append(measurement)
            for found in snapshot_figures.summary(measurement):
                rows.append({"kib": kib, "call_path": path, "start_up_p50_us": found["start_up"]["latency_us_p50"],
                             "snapshot_p50_us": found["snapshot"]["latency_us_p50"], "p50_ratio": found["p50_ratio"],
                             "start_up_faults": found["start_up"]["minor_faults_per_request"],
                             "snapshot_faults": found["snapshot"]["minor_faults_per_request"],
                             "module_bytes": found["module_bytes"], "snapshot_bytes": found["snapshot_bytes"],
                             "wizer_ms": found["wizer_ms"], "module_compile_ms": found["module_compile_ms"],
                             "snapshot_compile_ms": found["snapshot_compile_ms"]})
    return pd.DataFrame(rows), measurements


def snapshot_figure(table: pd.DataFrame) -> Figure:
    """p50 with start-up on every request against p50 from the snapshot, per start-up size and call path."""
    long = table.melt(id_vars=["kib", "call_path"], value_vars=["start_up_p50_us", "snapshot_p50_us"], var_name="served",
                      value_name="p50 µs")
    long["served"] = long["served"].map({"start_up_p50_us": "start-up every request", "snapshot_p50_us": "from the snapshot"})
    grid = Figure(figsize=(7, 4))
    axes = grid.subplots()
    sns.lineplot(long, x="kib", y="p50 µs", hue="served", style="call_path", markers=True, ax=axes)
    axes.set(xscale="log", yscale="log", xlabel="start-up state written (KiB)", title="startup-heavy: p50 per request")
    grid.tight_layout()
    return grid


def decision_figure(curve: pd.DataFrame, snapshots: pd.DataFrame) -> Figure:
    """The design-review picture, "what you save, what you risk": per option, the speedup over a fresh pooled+cached
    instance per request (x, with its interval where the run has one) against the share of reused requests that carried
    state over (y).  Reuse points are labelled by N; snapshots (no state carried, a larger image instead) by their size."""
    grid = Figure(figsize=(8, 5))
    axes = grid.subplots()
    options = curve[curve["reuse"] > 1]
    for workload, rows in options.groupby("workload", sort=False):
        low = (rows["speedup"] - rows["speedup_ci_low"]).clip(lower=0)
        high = (rows["speedup_ci_high"] - rows["speedup"]).clip(lower=0)
        points = axes.errorbar(rows["speedup"], rows["carried_over_share"].fillna(0), xerr=[low, high], fmt="o", capsize=3,
                               label=f"{workload}: +reuseN")
        for x, y, n in zip(rows["speedup"], rows["carried_over_share"].fillna(0), rows["reuse"]):
            axes.annotate(f"N={n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=points[0].get_color())
    if not snapshots.empty:
        ratio = 1 / snapshots["p50_ratio"]
        axes.scatter(ratio, [0] * len(ratio), marker="s", color="black", label="+snapshot (startup-heavy)")
        for x, row in zip(ratio, snapshots.to_dict("records")):
            growth = (row["snapshot_bytes"] - row["module_bytes"]) / 1024
            axes.annotate(f"{row['kib']} KiB start-up, {row['call_path']}\nimage +{growth:,.0f} KiB", (x, 0),
                          textcoords="offset points", xytext=(4, -22), fontsize=7)
    axes.axvline(1, color="grey", linewidth=0.8)
    axes.set(xscale="log", ylim=(-0.12, 1.08), xlabel="speedup over a fresh pooled+cached instance per request (log)",
             ylabel="share of reused requests that carried state over",
             title="What you save (right) and what you risk (up)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    grid.tight_layout()
    return grid
