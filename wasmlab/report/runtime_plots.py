"""Notebook 11's figures: per-request time per runtime and variant with its interval, and a server's latency by load."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

# One colour per runtime, the same in every figure of the notebook.
RUNTIME_COLOURS = dict(zip(("wasmtime", "v8", "extism"), sns.color_palette("colorblind", 3), strict=True))


def runtimes(rows: list[dict[str, Any]]) -> Figure:
    """Mean µs per request (log scale) of every variant, coloured by runtime, with its 95% interval over repetitions."""
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))
    for y, row in enumerate(table.to_dict("records")):
        low, high = row["mean_ci95"]
        colour = RUNTIME_COLOURS.get(row["runtime"], "grey")
        ax.barh(y, row["mean_us"], color=colour, label=row["runtime"])
        if low == low and high == high:  # one repetition has no interval
            ax.errorbar(row["mean_us"], y, xerr=[[row["mean_us"] - low], [high - row["mean_us"]]], fmt="none", ecolor="black", capsize=3)
    ax.set_yticks(range(len(table)), list(table["variant"]))
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per request (geometric mean over repetitions, 95% CI), log scale")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), title="runtime", loc="lower right")
    ax.set_title("The same requests on each runtime, every result checked")
    fig.tight_layout()
    return fig


def server_loads(table: pd.DataFrame) -> Figure:
    """p50 and p99 latency (left, log scale) and requests per second (right) of a server at each connection count."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    ticks = [str(c) for c in table["connections"]]
    for column, style in (("p50_us", "o-"), ("p99_us", "s--")):
        left.plot(ticks, table[column], style, label=column.removesuffix("_us"))
    left.set_yscale("log")
    left.set_xlabel("connections")
    left.set_ylabel("latency, µs (log scale)")
    left.legend()
    right.bar(ticks, table["requests_per_s"], color=RUNTIME_COLOURS["wasmtime"])
    right.set_xlabel("connections")
    right.set_ylabel("requests / s")
    seconds = ", ".join(f"{s:g}" for s in sorted(set(table["duration_s"].round(1)))) if "duration_s" in table else "?"
    fig.suptitle(f"wasmtime serve under load, every response checked (one load of {seconds} s per connection count: "
                 "no interval)", fontsize=10)
    fig.tight_layout()
    return fig
