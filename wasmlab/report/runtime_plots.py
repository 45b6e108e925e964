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
    """A server under load: closed-loop latency (log scale) and requests per second by connection count, and, when the
    lab's open-loop generator ran, latency from each request's intended send time against the offered rate."""
    closed = table[table["generator"] != "open-loop"] if "generator" in table else table
    opened = table[table["generator"] == "open-loop"] if "generator" in table else table.iloc[0:0]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 3.6))
    ticks = [str(c) for c in closed["connections"]]
    for column, style in (("p50_us", "o-"), ("p99_us", "s--")):
        left.plot(ticks, closed[column], style, label=column.removesuffix("_us"))
    left.set_yscale("log")
    left.set(xlabel="connections (closed loop)", ylabel="latency, µs (log scale)")
    left.legend()
    middle.bar(ticks, closed["requests_per_s"], color=RUNTIME_COLOURS["wasmtime"])
    middle.set(xlabel="connections (closed loop)", ylabel="requests / s")
    if opened.empty:
        right.text(0.5, 0.5, "no open-loop load\n(rates: [] )", ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
    else:
        rates = [f"{r:g}" for r in opened["offered_rate"]]
        for column, style, label in (("p50_us", "o-", "p50"), ("p99_us", "s--", "p99"), ("p999_us", "^:", "p99.9"),
                                     ("p50_from_send_us", "x-", "p50 from send")):
            right.plot(rates, opened[column], style, label=label)
        right.set_yscale("log")
        right.set(xlabel="offered requests / s (open loop)", ylabel="latency from intended send, µs")
        right.legend(fontsize=8)
    seconds = ", ".join(f"{s:g}" for s in sorted(set(table["duration_s"].round(0)))) if "duration_s" in table else "?"
    fig.suptitle(f"wasmtime serve under load, every response checked (one load of {seconds} s each: no interval)", fontsize=10)
    fig.tight_layout()
    return fig
