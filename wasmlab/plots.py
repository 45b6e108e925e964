"""Seaborn figures shared by notebooks and reports.  Each returns the figure; callers save it."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from wasmlab.measure import Measurement
from wasmlab.results import atomic_write


def latency_and_speedup(measurement: Measurement, reference: str = "baseline") -> plt.Figure:
    """Left: per-request latency per variant (log scale).  Right: speedup over ``reference`` with its 95% CI."""
    samples = measurement.samples.assign(latency_us=lambda d: d["latency_ns"] / 1000)
    table = measurement.variants(reference)
    order = list(table["variant"])
    meta = measurement.metadata
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 * len(order) + 2.4), width_ratios=(3, 2))
    sns.boxenplot(data=samples, x="latency_us", y="variant", order=order, log_scale=True, ax=left, hue="variant",
                  palette="viridis", legend=False, k_depth="proportion")
    left.set_xlabel("latency per request (µs, log scale)")
    left.set_ylabel("")
    if "speedup" in table:
        sns.barplot(data=table, x="speedup", y="variant", order=order, ax=right, hue="variant", palette="viridis", legend=False)
        right.errorbar(
            table["speedup"], range(len(order)),
            xerr=[table["speedup"] - table["speedup_ci_low"], table["speedup_ci_high"] - table["speedup"]],
            fmt="none", ecolor="black", capsize=3,
        )
        for i, (value, high) in enumerate(zip(table["speedup"], table["speedup_ci_high"])):
            right.text(max(value, high), i, f"  {value:.1f}x", va="center")
        right.set_xlim(0, table["speedup_ci_high"].max() * 1.25)
        right.set_xlabel(f"speedup over {reference} (ratio of means, 95% CI)")
        right.set_ylabel("")
        right.set_yticklabels([])
    fig.suptitle(
        f"{meta.get('workload', '')}: {meta['requests']} requests x {meta['repeats']} reps, warm-up {meta['warmup']}, "
        f"{meta['parameters'].get('call_path')} path - wasmtime {meta['wasmtime_version']}, {meta['cpu_model']}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def phases(measurement: Measurement) -> plt.Figure:
    """Median time of each phase of a request, per variant, on a log scale (compile would hide the rest)."""
    data = measurement.phases.groupby(["variant", "phase"], sort=False)["duration_ns"].median().div(1000).rename("median_us").reset_index()
    fig, ax = plt.subplots(figsize=(10, 5))
    sns.barplot(data=data, x="median_us", y="phase", hue="variant", ax=ax, palette="viridis")
    ax.set_xscale("log")
    ax.set_xlabel("median µs per phase (log scale; each phase timed separately, a timer pair included)")
    ax.set_ylabel("")
    ax.legend(title="variant", fontsize=8)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as PNG (150 dpi) and close it."""
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    plt.close(fig)
    return Path(path)
