"""Seaborn figures shared by notebooks and reports.  Each returns the figure; callers save it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wasmlab.host.releases import version_key
from wasmlab.measure.measurement import Measurement
from wasmlab.report import variant_style
from wasmlab.storage import save_figure


def variant_palette(variants: list[str]) -> dict[str, str]:
    """Each variant's fixed colour (its composition's, :mod:`variant_style`), never a shade picked by run order."""
    return {v: variant_style.colour(v) for v in variants}


def figure_of(grid: sns.FacetGrid) -> Figure:
    """The matplotlib figure of a seaborn grid, typed (seaborn ships no type information)."""
    figure: Figure = grid.figure
    return figure


def latency_and_speedup(measurement: Measurement, reference: str = "baseline") -> Figure:
    """Left: per-request latency per variant (log scale).  Right: each variant's speedup over ``reference`` on its own
    call path (``pooled+cached@native`` over ``baseline@native``) with its 95% CI, that reference named on its bar; a
    path without one says so where its bar would be."""
    samples = measurement.samples.assign(latency_us=lambda d: d["latency_ns"] / 1000)
    table = measurement.variants(reference)
    # One order whatever the run's (compositions cheapest first, then path), as in every report of the lab.
    table = variant_style.in_order(table)
    table = table.reset_index(drop=True)
    order = list(table["variant"])
    meta = measurement.metadata
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 * len(order) + 2.4), width_ratios=(3, 2))
    sns.boxenplot(data=samples, x="latency_us", y="variant", order=order, log_scale=True, ax=left, hue="variant",
                  palette=variant_palette(order), legend=False, k_depth="proportion")
    left.set_xlabel("latency per request (µs, log scale)")
    left.set_ylabel("")
    paths = list(dict.fromkeys(measurement.summary["call_path"])) if "call_path" in measurement.summary else []
    paths_shown = " and ".join(paths) or str(meta["parameters"].get("call_path"))
    if "speedup" in table:
        _speedup_bars(right, table)
        whose = "its own call path's" if len(paths) > 1 else "the"
        right.set_xlabel(f"speedup over {whose} {reference.partition('@')[0]}\n(ratio of geometric-mean totals, 95% CI over repetitions)")
        right.set_ylabel("")
        right.set_yticklabels([])
    fig.suptitle(
        f"{meta.get('workload', '')}: {meta['requests']} requests x {meta['repeats']} reps, warm-up {meta['warmup']}, "
        f"{paths_shown} path - wasmtime {meta['wasmtime_version']}, {meta['cpu_model']}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _speedup_bars(ax: Axes, table: pd.DataFrame) -> None:
    """Bars of ``table``'s speedups with their intervals, each labelled with the variant it is over."""
    sns.barplot(data=table, x="speedup", y="variant", order=list(table["variant"]), ax=ax, hue="variant",
                palette=variant_palette(list(table["variant"])), legend=False)
    # One repetition has no interval (nan): the bars stand without error bars then.
    low = table["speedup_ci_low"].fillna(table["speedup"])
    high = table["speedup_ci_high"].fillna(table["speedup"])
    measured = table["speedup"].notna()
    positions = [i for i, ok in enumerate(measured) if ok]
    ax.errorbar(table["speedup"][measured], positions, xerr=[(table["speedup"] - low)[measured], (high - table["speedup"])[measured]],
                fmt="none", ecolor="black", capsize=3)
    for i, row in enumerate(table.to_dict("records")):
        if row["speedup_over"]:
            ax.text(max(row["speedup"], high.iloc[i]), i, f"  {row['speedup']:.1f}x over {row['speedup_over']}", va="center", fontsize=8)
        else:  # never a bar against another path's reference: the reason instead
            ax.text(0, i, f"  no speedup: {row['speedup_note']}", va="center", fontsize=8)
    ax.set_xlim(0, float(high.max(skipna=True) if measured.any() else 1.0) * 2.0)


def phases(measurement: Measurement) -> Figure:
    """Median time of each phase of a request, per variant, on a log scale (compile would hide the rest)."""
    data = measurement.phase_rows().groupby(["variant", "phase"], sort=False)["duration_ns"].median().div(1000).rename("median_us").reset_index()
    fig, ax = plt.subplots(figsize=(10, 5))
    variants = variant_style.ordered(list(data["variant"]))
    sns.barplot(data=data, x="median_us", y="phase", hue="variant", hue_order=variants, ax=ax, palette=variant_palette(variants))
    ax.set_xscale("log")
    ax.set_xlabel("median µs per phase (log scale; each phase timed separately, a timer pair included)")
    ax.set_ylabel("")
    ax.legend(title="variant", fontsize=8)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG (150 dpi) and close it."""
    return save_figure(fig, path)


def _caption(fig: Figure, text: str) -> None:
    fig.text(0.01, 0.005, text, fontsize=7, color="#555555", ha="left", va="bottom")


def pool_price(capacity: pd.DataFrame) -> Figure:
    """Left: address space a pool reserves vs its slots.  Right: requests refused for want of a slot."""
    data = capacity.assign(config=lambda d: "max_memory " + d["max_memory_size"].map(_size) + ", reservation " + d["memory_reservation"].map(_size))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    per_slots = data.drop_duplicates(["slots", "config"])
    sns.lineplot(data=per_slots, x="slots", y="vmsize_mib_reserved_by_pool", hue="config", marker="o", ax=left)
    left.set(xscale="log", yscale="log", xlabel="pool slots", ylabel="address space reserved (MiB, VmSize delta)")
    data = data.assign(exhausted_share=lambda d: d["pool_exhausted"] / d["requests"], pool=lambda d: d["slots"].map(lambda v: f"{v} slots"))
    sns.lineplot(data=data, x="live", y="exhausted_share", hue="pool", marker="o", ax=right, palette="tab10")
    right.set(xlabel="instances alive at once", ylabel="share of requests refused (pool exhausted)")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _caption(fig, "RSS stays near the process's own; the reservation is address space, which strict overcommit refuses.")
    return fig


def keep_resident(costs: pd.DataFrame) -> Figure:
    """Latency, page faults and store-drop time vs KiB dirtied per request, per keep-resident setting."""
    data = costs.assign(keep_resident=lambda d: d["keep_resident_bytes"].map(_size))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, column, label in zip(
        axes,
        ("latency_us_p50", "minor_faults_per_request", "drop_store_us_p50"),
        ("p50 latency per request (µs)", "minor page faults per request", "store drop, p50 (µs)"),
    ):
        sns.lineplot(data=data, x="kib_dirtied", y=column, hue="keep_resident", marker="o", ax=ax)
        ax.set(xscale="log", xlabel="KiB dirtied per request", ylabel=label)
    fig.tight_layout()
    return fig


def cache_policies(summary: pd.DataFrame) -> Figure:
    """Hit rate, p99 and compile share vs cache size, per policy (columns: distribution)."""
    melted = summary.melt(
        id_vars=["distribution", "policy", "cache_size"], value_vars=["cache_hit_rate", "latency_us_p99", "compile_share"],
        var_name="metric", value_name="value",
    )
    grid = sns.relplot(data=melted, x="cache_size", y="value", hue="policy", col="distribution", row="metric", kind="line",
                       marker="o", facet_kws={"sharey": "row"}, height=2.6, aspect=1.5)
    grid.set(xscale="log")
    for (metric, _), ax in grid.axes_dict.items():
        if metric == "latency_us_p99":
            ax.set_yscale("log")
    return figure_of(grid)


def latency_over_time(samples: pd.DataFrame, window: int = 50) -> Figure:
    """Per-request latency over the trace (rolling max and mean), one line per policy: a cache
    cleared whole when full shows as bursts of recompiles.  (A rolling median would flip between
    the hit and the miss level whenever the hit rate is near one half.)"""
    data = samples.sort_values("request_index").assign(latency_us=lambda d: d["latency_ns"] / 1000)
    rolled = []
    for (distribution, policy), group in data.groupby(["distribution", "policy"], sort=False):
        series = group.set_index("request_index")["latency_us"]
        rolled.append(pd.DataFrame({
            "request": series.index, "distribution": distribution, "policy": policy,
            f"rolling max ({window} requests)": series.rolling(window, min_periods=1).max().to_numpy(),
            f"rolling mean ({window} requests)": series.rolling(window, min_periods=1).mean().to_numpy(),
        }))
    frame = pd.concat(rolled).melt(id_vars=["request", "distribution", "policy"], var_name="statistic", value_name="latency_us")
    grid = sns.relplot(data=frame, x="request", y="latency_us", hue="policy", row="statistic", col="distribution", kind="line",
                       height=2.8, aspect=2.0, linewidth=0.8)
    grid.set(yscale="log", ylabel="µs (log)")
    return figure_of(grid)


def breakdown(rows: pd.DataFrame) -> Figure:
    """Median µs per operation and setting, per workload, log scale."""
    data = rows.assign(step=lambda d: d["operation"] + " · " + d["setting"])
    grid = sns.catplot(data=data, x="median_us", y="step", col="workload", kind="bar", height=4.5, aspect=1.0,
                       col_wrap=min(3, data["workload"].nunique()), sharex=True, color="#3b7ea1")
    grid.set(xscale="log", xlabel="median µs (log)", ylabel="")
    steps = list(dict.fromkeys(data["step"]))
    for workload, ax in grid.axes_dict.items():
        # An operation the engine refused (Winch on exception handling) has no bar: say so.
        refused = data[(data["workload"] == workload) & data["median_us"].isna()]
        for row in refused.itertuples():
            ax.text(ax.get_xlim()[0], steps.index(row.step), "  not supported", va="center", fontsize=8, color="#a13b3b")
    return figure_of(grid)


def binding(table: pd.DataFrame) -> Figure:
    """Mean µs per request on the lean and the api path, per variant, with the ratio."""
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(table) + 1.5))
    melted = table.melt(id_vars=["variant"], value_vars=["lean_us_mean", "api_us_mean"], var_name="path", value_name="us")
    sns.barplot(data=melted, x="us", y="variant", hue="path", ax=ax, palette="viridis")
    ax.set_xscale("log")
    for i, row in enumerate(table.itertuples()):
        ax.text(row.api_us_mean, i, f"  api/lean {row.ratio:.1f}x", va="center", fontsize=8)
    ax.set(xlabel="mean µs per request (log)", ylabel="")
    fig.tight_layout()
    return fig


def concurrency(rows: pd.DataFrame) -> Figure:
    """Throughput and p99 vs worker threads, per pool/cache sharing mode."""
    data = rows.assign(mode=lambda d: "pool " + d["pool_mode"] + " / cache " + d["cache_mode"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    sns.lineplot(data=data, x="threads", y="throughput_rps", hue="mode", marker="o", ax=left)
    sns.lineplot(data=data, x="threads", y="latency_us_p99", hue="mode", marker="o", ax=right, legend=False)
    left.set(ylabel="requests per second", xlabel="worker threads")
    right.set(ylabel="p99 latency (µs)", xlabel="worker threads", yscale="log")
    fig.tight_layout()
    return fig


def concurrency_paths(rows: pd.DataFrame) -> Figure:
    """Throughput against worker threads per call path and keep-resident setting, one panel per pool mode, and
    the TLB shootdowns per request beside it: where the GIL caps the Python host, where wasmtime stops scaling."""
    data = rows.assign(setting=lambda d: d["call_path"] + ", keep-resident "
                       + d["keep_resident_bytes"].map(lambda v: "0 (default)" if v == 0 else _size(v)))
    modes = list(dict.fromkeys(data["pool_mode"]))
    fig, axes = plt.subplots(1, len(modes) + 1, figsize=(5.5 * (len(modes) + 1), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        sns.lineplot(data=data[data["pool_mode"] == mode], x="threads", y="throughput_rps", hue="setting", marker="o", ax=ax,
                     errorbar=("pi", 100))
        ax.set(title=f"pool {mode}", xlabel="worker threads", ylabel="requests per second (served)")
    ax = axes[0][-1]
    sns.barplot(data=data, x="threads", y="tlb_shootdowns_per_request", hue="setting", ax=ax, errorbar=None)
    ax.set(title="kernel: TLB shootdowns (machine-wide)", xlabel="worker threads", ylabel="per request")
    fig.tight_layout()
    return fig


def latency_vs_load(rows: pd.DataFrame, p99_bound_us: float | None = None) -> Figure:
    """Open-loop latency percentiles against offered load, per variant (latency counted from each request's due time)."""
    long = rows.melt(id_vars=["variant", "offered_rps"], value_vars=["latency_us_p50", "latency_us_p99"], var_name="percentile",
                     value_name="latency_us")
    long["percentile"] = long["percentile"].str.removeprefix("latency_us_")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(data=long, x="offered_rps", y="latency_us", hue="variant", style="percentile", marker="o", ax=ax)
    if p99_bound_us is not None:
        ax.axhline(p99_bound_us, color="grey", linestyle=":", label=f"p99 bound {p99_bound_us:g} µs")
        ax.legend()
    ax.set(xlabel="offered load (requests per second, Poisson arrivals)", ylabel="latency from due time (µs)", yscale="log",
           title="native path, open loop: queueing shows as the load nears what the workers can serve")
    fig.tight_layout()
    return fig


def releases(runs: pd.DataFrame, compiles: pd.DataFrame) -> Figure:
    """Across wasmtime releases: per-request latency per variant (each repetition a point, the line through their
    medians), compile time per module, pooled instantiate and drop, faults per request, and the address space the
    same pool reserves (the VmSize its engine adds); unsupported variants are simply absent."""
    served = runs[(runs["status"] == "ok") & runs["latency_us_mean"].notna()] if "latency_us_mean" in runs else runs.iloc[0:0]
    order = sorted(runs["release"].astype(str).unique(), key=version_key)
    fig, axes = plt.subplots(1, 5, figsize=(27, 4.2))
    # One engine per kind per child, so every pooled row of a repetition carries the same reservation.
    reserved = (served[served["variant"].str.startswith("pooled")].drop_duplicates(["release", "repetition"])
                .assign(engine="pooling", mib=lambda d: d["vmsize_mib_reserved_by_engine"])
                if "vmsize_mib_reserved_by_engine" in served else served.iloc[0:0])
    pooled = served[served["variant"].str.startswith("pooled")] if "instantiate_us_p50" in served else served.iloc[0:0]
    phases = (pooled.melt(id_vars=["release", "variant"], value_vars=["instantiate_us_p50", "drop_store_us_p50"], var_name="phase",
                          value_name="us").assign(phase=lambda d: d["variant"] + " " + d["phase"].str.removesuffix("_us_p50"))
              if not pooled.empty else pooled)
    for ax, data, column, label, hue in (
            (axes[0], served, "latency_us_mean", "mean µs per request (log)", "variant"),
            (axes[1], compiles, "compile_us_p50", "compile time, µs (log)", "workload"),
            (axes[2], phases, "us", "pooled: instantiate and drop, µs (p50)", "phase"),
            (axes[3], served, "minor_faults_per_request", "minor faults per request", "variant"),
            (axes[4], reserved, "mib", "address space the pool reserves, MiB (log)", "engine")):
        if data.empty:
            ax.set_axis_off()
            continue
        data = data.assign(release=data["release"].astype(str))
        sns.pointplot(data=data, x="release", y=column, hue=hue, order=order, estimator="median", errorbar=("pi", 100), ax=ax,
                      markers="o", linestyles="-", dodge=0.2 if data[hue].nunique() > 1 else False)
        ax.set(xlabel="wasmtime release", ylabel=label, yscale="log" if "log" in label else "linear")
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle("one host configuration across wasmtime releases (bars: the range over repetitions)")
    fig.tight_layout()
    return fig


def _size(value: float) -> str:
    value = int(value)
    if value < 0:
        return "default"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} B"


def exhaustion(rows: pd.DataFrame) -> Figure:
    """Per exhaustion policy and thread count (more threads than pool slots): requests refused,
    time spent waiting for a slot, and throughput."""
    data = rows.assign(refused=lambda d: d["outcome_pool_exhausted"] / (d["outcome_ok"] + d["outcome_pool_exhausted"]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, column, label in zip(axes, ("refused", "pool_wait_ms", "throughput_rps"),
                                 ("share of requests refused", "total time waiting for a slot (ms)", "requests per second")):
        sns.barplot(data=data, x="threads", y=column, hue="exhaustion", ax=ax, palette="Set2")
        ax.set(xlabel=f"threads sharing {int(data['pool_slots'].iloc[0])} pool slot(s)", ylabel=label)
    fig.tight_layout()
    return fig


def component_call_costs(rows: pd.DataFrame) -> Figure:
    """Per component request: µs per call of wasmtime-py's call and of the lean call, and the parts
    of wasmtime-py's call (what the binding converts) beside the lean call (wasmtime and the guest)."""
    data = rows.assign(request=lambda d: d["workload"].astype(str).str.replace(":", "\n", n=1, regex=False))
    grid = sns.catplot(data=data, x="us_per_call", y="part", col="request", kind="bar", height=3.6, aspect=1.35,
                       col_wrap=min(2, data["request"].nunique()), color="#3b7ea1", sharex=True)
    grid.set(xscale="log", xlabel="µs per call (median of batches, log)", ylabel="")
    for ax in grid.axes.flat:
        for container in ax.containers:
            ax.bar_label(container, fmt="%.1f", fontsize=7, padding=2)
        ax.set_xlim(right=data["us_per_call"].max() * 5)
    grid.figure.suptitle(f"one call on a held instance ({int(rows['calls'].iloc[0])} calls x "
                         f"{int(rows['repeats'].iloc[0])} batches)", x=0.7, y=1.02)
    return figure_of(grid)


def payload_scaling(rows: pd.DataFrame) -> Figure:
    """wasmtime-py's call and the lean call vs the request's header count and body size."""
    parts = {"api call (wasmtime-py)": "api (wasmtime-py)", "lean call (args built once, result read)": "lean"}
    data = rows[rows["part"].isin(parts)].assign(path=lambda d: d["part"].map(parts))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for ax, column, label in ((left, "request_headers", "headers in the request"), (right, "request_body", "body bytes")):
        other = "request_body" if column == "request_headers" else "request_headers"
        fixed = data[data[other] == data[other].mode().iloc[0]]
        sns.lineplot(data=fixed, x=column, y="us_per_call", hue="path", marker="o", ax=ax)
        ax.set(yscale="log", xlabel=f"{label} ({other.removeprefix('request_')} = {fixed[other].iloc[0]})",
               ylabel="µs per call (log)")
    fig.tight_layout()
    return fig


def advisor_front(runs: pd.DataFrame, p99_target_us: float, recommended: Mapping[str, float] | None = None,
                  address_space_budget: int | None = None, caption: str = "") -> Figure:
    """The advisor's candidates: p99 against resident memory and against reserved address space, the p99/RSS Pareto
    front joined, the target as a line, the recommendation (its medians: ``latency_us_p99``, ``rss_bytes``,
    ``address_space_bytes``) starred.  ``runs`` has ``allocator``, ``stage``, those three columns and ``on_front``."""
    data = runs.assign(rss_kib=runs["rss_bytes"] / 1024, address_space_mib=runs["address_space_bytes"] / 2**20)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, x, label in ((left, "rss_kib", "resident memory while serving (KiB)"),
                         (right, "address_space_mib", "reserved address space (MiB, log)")):
        sns.scatterplot(data=data, x=x, y="latency_us_p99", hue="allocator", style="stage" if "stage" in data else None,
                        alpha=0.7, ax=ax)
        ax.axhline(p99_target_us, color="grey", linestyle=":", label=f"p99 target {p99_target_us:g} µs")
        if recommended is not None:
            at = recommended["rss_bytes"] / 1024 if x == "rss_kib" else recommended["address_space_bytes"] / 2**20
            ax.scatter([at], [recommended["latency_us_p99"]], marker="*", s=260, color="black", zorder=5, label="recommended")
        ax.set(xlabel=label, yscale="log")
    front = data[data["on_front"]].sort_values("rss_kib")
    left.plot(front["rss_kib"], front["latency_us_p99"], color="black", linewidth=1, label="p99/RSS front")
    if address_space_budget is not None:
        right.axvline(address_space_budget / 2**20, color="red", linestyle="--", label="address-space budget")
    right.set_xscale("log")
    left.set(ylabel="p99 latency (µs, log)", title="latency against resident memory")
    right.set(title="latency against address space")
    for ax in (left, right):
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if caption:
        _caption(fig, caption)
    return fig


def request_shapes(rows: pd.DataFrame) -> Figure:
    """Whole component requests by shape: left, the p50 of each call path (colour) and header count (line style) against
    the body size (log); right, each path's p50 over the native path's with its 95% interval (paired by repetition)."""
    data = rows.assign(headers=lambda d: d["request_headers"].astype(str) + " headers")
    palette = dict(zip(("native", "lean", "api"), sns.color_palette("colorblind", 3), strict=True))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    sns.lineplot(data=data, x="request_body", y="p50_us", hue="call_path", style="headers", marker="o", palette=palette, ax=left)
    left.set(yscale="log", xlabel="request body bytes", ylabel="p50 µs per request (log)")
    left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    styles = dict(zip(data["headers"].unique(), ("-", "--", ":", "-."), strict=False))
    for (path, headers), group in data[data["call_path"] != "native"].groupby(["call_path", "headers"], sort=False):
        right.errorbar(group["request_body"], group["over_native"],
                       yerr=[group["over_native"] - group["over_native_low"], group["over_native_high"] - group["over_native"]],
                       marker="o", capsize=3, color=palette.get(str(path)), linestyle=styles.get(str(headers), "-"),
                       label=f"{path}, {headers}")
    right.axhline(1.0, color="grey", linewidth=0.8)
    right.set(yscale="log", xlabel="request body bytes", ylabel="p50 over the native path's (log)")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    first = rows.iloc[0]
    repetitions = int(first["repetitions"])
    interval = ("95% interval: Student-t on the log ratios over repetitions" if repetitions > 1
                else "one repetition: no interval")
    _caption(fig, f"{repetitions} repetition(s) x {int(first['requests']) // repetitions} requests per path and shape, "
                  f"paths interleaved in each run; ratios of per-repetition medians, paired by repetition; {interval}")
    fig.tight_layout()
    return fig


def beside_core(rows: pd.DataFrame) -> Figure:
    """Each workload's p50 per request (log), its bar spanning the lowest to the highest per-repetition p50, with its
    p50 over the first workload's written beside it."""
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.8))
    labels = [f"{r.workload}\n{r.entry}" for r in rows.itertuples()]
    ax.barh(labels, rows["p50_us"], color=["#3b7ea1" if c else "#8fb9a8" for c in rows["command"]],
            xerr=[rows["p50_us"] - rows["p50_us_rep_min"], rows["p50_us_rep_max"] - rows["p50_us"]], capsize=3)
    for y, r in enumerate(rows.itertuples()):
        ax.text(r.p50_us_rep_max * 1.15, y, f"{r.p50_us:.2f} µs ({r.over_first:.1f}x)", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="p50 µs per request (log); whiskers: lowest and highest p50 of the repetitions")
    ax.set_xlim(right=rows["p50_us_rep_max"].max() * 8)
    first = rows.iloc[0]
    _caption(fig, f"{first['variant']} on the {first['call_path']} path, one run per workload ({int(first['repetitions'])} "
                  f"repetitions x {int(first['requests']) // int(first['repetitions'])} requests); ratios to the first row,\n"
                  f"separate runs (no paired interval); dark: commands (outputs checked every request)")
    fig.tight_layout()
    return fig
