"""Reading a finished sweep back: its table, its manifest, and speedups per point with intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from wasmlab.errors import WasmlabError
from wasmlab.measure.stats import call_path_of, geometric_mean, paired_ratio, per_repetition, speedup_columns

if TYPE_CHECKING:  # the plotting stack (~3 s to import) is loaded by the figures, not by reading a sweep back
    from matplotlib.figure import Figure


def load_sweep(results_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The collected ``results.parquet`` and ``manifest.json`` of a sweep folder."""
    folder = Path(results_dir)
    table_path, manifest_path = folder / "results.parquet", folder / "manifest.json"
    if not table_path.is_file() or not manifest_path.is_file():
        raise WasmlabError(f"{str(folder)!r} is not a finished sweep folder: it needs results.parquet and manifest.json")
    return pd.read_parquet(table_path), json.loads(manifest_path.read_text())


def partial_note(results_dir: str | Path) -> str:
    """One line when the sweep was interrupted (its manifest says ``partial``), else nothing."""
    _, manifest = load_sweep(results_dir)
    return partial_note_of(manifest)


def partial_note_of(manifest: dict[str, Any]) -> str:
    """:func:`partial_note` of a manifest already read."""
    if not manifest.get("partial"):
        return ""
    done = sum(1 for status in manifest.get("points", {}).values() if status.get("status") == "ok")
    return (f"Partial sweep: interrupted ({manifest.get('interrupted_by', 'SIGINT')}) with {done} of {manifest.get('points_planned', '?')} "
            f"points finished; running the sweep again resumes it")


def varying_parameters(table: pd.DataFrame) -> list[str]:
    """The ``param_*`` columns that take more than one value across the sweep."""
    return [c for c in table.columns if c.startswith("param_") and table[c].astype(str).nunique() > 1]


def point_speedups(results_dir: str | Path, reference: str = "baseline") -> pd.DataFrame:
    """Per point and variant: the speedup over ``reference`` on the variant's own call path (``stats.own_references``:
    ``pooled+cached@native`` over ``baseline@native``) from that point's own repetitions (the ratio of geometric-mean
    total times, paired by repetition, with its 95% interval: ``stats.PAIRED_METHOD``); ``speedup_over`` names that
    reference, ``speedup_note`` says why a path without one has no speedup (nan)."""
    table, _ = load_sweep(Path(results_dir))
    if "variant" not in table or "total_ms" not in table:
        return pd.DataFrame()
    params = [c for c in table.columns if c.startswith("param_")]
    rows = []
    for point_id, point_rows in table.groupby("point_id", sort=False):
        variants = list(dict.fromkeys(point_rows["variant"]))
        columns = speedup_columns(point_rows, variants, reference)
        if not any(columns["speedup_over"]):
            continue
        fixed = point_rows.iloc[0][params].to_dict()
        paths = call_path_of(point_rows)
        for i, variant in enumerate(variants):
            latency = latency_interval(per_repetition(point_rows, variant, "latency_us_mean"))
            rows.append({"point_id": point_id, "variant": variant, "call_path": paths.get(variant, ""),
                         "speedup": columns["speedup"][i],
                         "ci95_low": columns["speedup_ci_low"][i], "ci95_high": columns["speedup_ci_high"][i],
                         "repetitions": columns["speedup_repetitions"][i], "speedup_over": columns["speedup_over"][i],
                         "speedup_note": columns["speedup_note"][i], "latency_us_mean": latency[0],
                         "latency_ci95_low": latency[1], "latency_ci95_high": latency[2], **fixed})
    return pd.DataFrame(rows)


def latency_interval(means: pd.Series) -> tuple[float, float, float]:
    """The geometric mean of per-repetition mean latencies and its 95% interval (Student-t on the logs, as the
    speedups'; nan bounds for one repetition)."""
    values = means.dropna().to_numpy(dtype=float)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    ratio = paired_ratio(values, [1.0] * values.size)
    return geometric_mean(values), ratio.low, ratio.high


def point_label(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    if not columns:
        return frame["point_id"].astype(str)
    return frame[columns].astype(str).apply(lambda r: ", ".join(f"{c.removeprefix('param_')}={v}" for c, v in r.items()), axis=1)


SEED_SPEEDUP = 59.0  # the seed PR's claim: 371 µs -> 6.3 µs per request


def speedup_figure(speedups: pd.DataFrame, varying: list[str], reference: str = "baseline") -> Figure:
    """Speedup over ``reference`` per point and variant with 95% intervals: one panel per call path, each against
    that path's own reference; a dot per (variant, point) on a log axis, hollow where the interval includes 1x (no
    difference from the reference beyond noise); one fixed colour per composition (:mod:`variant_style`)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from wasmlab.report import variant_style

    # A reference's own row (1x) is left out; a variant whose path has no reference has no dot and says why below.
    own = speedups["speedup_over"] if "speedup_over" in speedups else pd.Series(reference, index=speedups.index)
    data = speedups[speedups["variant"] != own].assign(point=lambda d: point_label(d, varying))
    if "call_path" not in data:
        data = data.assign(call_path="")
    paths = sorted(dict.fromkeys(data["call_path"].astype(str)), key=lambda p: (p != "native", p))
    compositions = variant_style.ordered([variant_style.composition(v) for v in data["variant"]])
    points = list(dict.fromkeys(data["point"]))
    rows = [(c, p) for c in compositions for p in points]
    height = 0.26 * len(rows) + 1.5
    fig, axes = plt.subplots(1, len(paths), figsize=(4.6 * len(paths) + 2.6, height), sharey=True, sharex=True,
                             squeeze=False, layout="constrained")
    for ax, path in zip(axes[0], paths, strict=True):
        part = data[data["call_path"].astype(str) == path]
        for y, (name, point) in enumerate(rows):
            match = part[(part["variant"].map(variant_style.composition) == name) & (part["point"] == point)]
            if match.empty or match["speedup"].isna().all():
                continue
            row = match.iloc[0]
            low = row["ci95_low"] if row["ci95_low"] == row["ci95_low"] else row["speedup"]
            high = row["ci95_high"] if row["ci95_high"] == row["ci95_high"] else row["speedup"]
            noise = low <= 1.0 <= high
            ax.errorbar([row["speedup"]], [y], xerr=[[row["speedup"] - low], [high - row["speedup"]]], fmt="o",
                        color=variant_style.colour(name), markerfacecolor="white" if noise else variant_style.colour(name),
                        capsize=2.5, markersize=5, linewidth=1.2)
        ax.axvline(1.0, color="#777777", linewidth=0.8)
        ax.axvline(SEED_SPEEDUP, color="#b22222", linewidth=0.8, linestyle="--")
        over = sorted({str(v) for v in part.get("speedup_over", pd.Series(dtype=str)) if v})
        whose = f"over {', '.join(over)}" if over else f"no {reference.partition('@')[0]} on this path"
        ax.set(xscale="log", title=f"{path or 'the run'} path: {whose}", xlabel="speedup (log scale)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.title.set_fontsize(10)
    # Both panels on one scale, wide enough for every point and the seed's claim; a whisker of a two-repetition
    # interval (a t of 12.7) may run past the edge rather than squeeze every other point into a corner.
    finite = data["speedup"].dropna()
    if not finite.empty:
        low = min(float(data["ci95_low"].fillna(data["speedup"]).min()), float(finite.min()))
        high = max(float(data["ci95_high"].fillna(data["speedup"]).max()), float(finite.max()), SEED_SPEEDUP)
        axes[0][0].set_xlim(max(low, finite.min() / 10, 0.1) / 1.3, min(high, finite.max() * 10) * 1.3)
    ticks = axes[0][0]
    ticks.set_yticks(range(len(rows)), [f"{name}  {point}" if len(points) > 1 else name for name, point in rows], fontsize=8)
    ticks.set_ylim(len(rows) - 0.5, -0.5)
    for ax in axes[0]:
        for boundary in range(len(points), len(rows), len(points)):
            ax.axhline(boundary - 0.5, color="#dddddd", linewidth=0.6)
    handles = [Line2D([], [], marker="o", linestyle="", color=variant_style.colour(c), label=c) for c in compositions]
    handles += [Line2D([], [], marker="o", linestyle="", color="#555555", markerfacecolor="white",
                       label="interval includes 1x"),
                Line2D([], [], color="#b22222", linestyle="--", label=f"seed's claim, {SEED_SPEEDUP:.0f}x")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    notes = sorted({f"{row.variant}: {row.speedup_note}" for row in data.itertuples() if getattr(row, "speedup_note", "")})
    if notes:
        fig.suptitle("no speedup for " + "; ".join(notes), fontsize=8)
    return fig


def heatmap_figure(table: pd.DataFrame, rows: str, columns: str, variant: str = "pooled+cached",
                   value: str = "latency_us_p50") -> Figure:
    """``value`` of ``variant`` (median over repetitions) over two varying parameters, each cell with its 95% interval."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = table[(table["variant"] == variant) & (table["status"] == "ok")]
    pivot = data.pivot_table(index=rows, columns=columns, values=value, aggfunc="median")
    halves = data.groupby([rows, columns])[value].agg(mean_half_width).unstack(columns).reindex_like(pivot)
    half = float(halves.max().max()) if halves.size else 0.0
    low, high = float(pivot.min().min()), float(pivot.max().max())
    vmin, vmax = noise_colour_range(low, high, half)
    labels = pivot.map(lambda v: f"{v:.2f}") + halves.map(lambda h: f"\n±{h:.2f}" if h > 0 else "")
    fig, ax = plt.subplots(figsize=(1.3 * pivot.shape[1] + 2.8, 0.75 * pivot.shape[0] + 1.9), layout="constrained")
    sns.heatmap(pivot, annot=labels, fmt="", cmap="Blues", ax=ax, vmin=vmin, vmax=vmax, linewidths=0.5, linecolor="white",
                annot_kws={"fontsize": 9}, cbar_kws={"label": f"{value.replace('latency_us_', '')} latency (µs)"})
    verdict = "differences not significant" if high - low < 2 * half else "some differences exceed it"
    ax.set(xlabel=columns.removeprefix("param_"), ylabel=rows.removeprefix("param_"))
    path = _distinct_text(data, "call_path")
    ax.set_title(f"{variant}{f' ({path} path)' if path else ''}: spread {high - low:.2f} µs;\n95% interval up to ±{half:.2f} µs: {verdict}", fontsize=9)
    return fig


def _distinct_text(data: pd.DataFrame, column: str) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(data[column].dropna())) if column in data else ""


def noise_colour_range(low: float, high: float, half: float) -> tuple[float, float]:
    """A colour range at least four interval half-widths wide around the values' middle, so that a difference within
    the interval never spans more than half the scale (noise stays one shade; an effect beyond it keeps its range)."""
    middle = (low + high) / 2
    return max(0.0, min(low, middle - 2 * half)), max(high, middle + 2 * half)


def mean_half_width(values: pd.Series, confidence: float = 0.95) -> float:
    """The half-width of a Student-t interval of the mean of per-repetition ``values`` (0 for fewer than two)."""
    from scipy import stats

    x = values.dropna().to_numpy(dtype=float)
    if x.size < 2:
        return 0.0
    return float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / (x.size ** 0.5))


def hit_rate_figure(table: pd.DataFrame, size_column: str) -> Figure:
    """Cache hit rate vs cache size, per policy."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=data, x=size_column, y="cache_hit_rate", hue="cache_policy", marker="o", ax=ax)
    ax.set(xlabel=size_column.removeprefix("param_"), ylabel="cache hit rate", xscale="log")
    fig.tight_layout()
    return fig


def describe_sweep(manifest: dict[str, Any], varying: list[str]) -> str:
    """Three lines: what the sweep ran and how many points finished, where and when it was measured, and
    whether points were measured side by side on one host."""
    points, machine, spec = manifest["points"], manifest["machine"], manifest["spec"]
    ok = sum(p.get("status") == "ok" for p in points.values())
    shown = ", ".join(v.removeprefix("param_") for v in varying) or "nothing"
    return (f"Sweep {spec['name']!r} of {spec['notebook'].split('/')[-1]}: {len(points)} points, {ok} ok; varying: {shown}\n"
            f"Measured {manifest['start']} to {manifest['end']} on {machine['cpu_model']} ({machine['cpu_count']} cores), "
            f"Python {machine['python_version']}, wasmtime {machine['wasmtime_version']}, commit {machine['git_commit'][:12]}, "
            f"executor {manifest['executor']}\n{describe_overlap(manifest)}")


def describe_overlap(manifest: dict[str, Any]) -> str:
    """Whether the sweep's points were measured one at a time on their hosts, or side by side (and which)."""
    points = manifest["points"]
    recorded = {pid: p["overlapped_by"] for pid, p in points.items() if "overlapped_by" in p}
    if not recorded:
        return "Overlap of points: not recorded (a sweep run before the lab recorded each point's start and end)"
    shared = {pid: others for pid, others in recorded.items() if others}
    if not shared:
        return f"Overlap of points: none; each of {len(recorded)} points ran alone on its host"
    worst = max(shared, key=lambda pid: len(shared[pid]))
    return (f"Overlap of points: {len(shared)} of {len(recorded)} points ran while other points ran on the same host, "
            f"so their timings disturb each other (e.g. {worst} beside {', '.join(shared[worst])}); "
            f"run with --workers 1, or one worker per machine, for figures to quote")


def failed_points(manifest: dict[str, Any]) -> pd.DataFrame:
    """The points that did not finish, with their errors (empty when every point is ok)."""
    failed = {k: p.get("error") for k, p in manifest["points"].items() if p.get("status") != "ok"}
    return pd.DataFrame({"point": list(failed), "error": list(failed.values())})


def standard_figures(table: pd.DataFrame, varying: list[str]) -> dict[str, Figure]:
    """The figures a sweep's report shows beyond speedups, by file name: a heatmap when two parameters
    vary, and hit-rate curves when the cache size varies and hit rates differ."""
    figures: dict[str, Figure] = {}
    if "variant" in table and len(varying) >= 2:
        figures["heatmap.png"] = heatmap_figure(table, varying[0], varying[1])
    if "cache_policy" in table and "param_cache_size" in varying:
        cached = table[table["cache_policy"] != "none"]
        if not cached.empty and cached["cache_hit_rate"].nunique() > 1:
            figures["hit_rates.png"] = hit_rate_figure(table, "param_cache_size")
    return figures


MEASUREMENT_COLUMNS = ("point_id", "variant", "call_path", "repetition", "requests", "warmup", "latency_us_mean", "latency_us_p50",
                       "latency_us_p99", "timer_overhead_ns", "harness_overhead_ns", "other_cpu_cores", "machine_busy")


def measurement_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The columns that say how each point was measured, where the sweep's notebook recorded them."""
    return table[[c for c in MEASUREMENT_COLUMNS if c in table]]


def point_overheads(manifest: dict[str, Any]) -> pd.DataFrame:
    """Per point: its wall time, its measurement's time, the time outside the measurement (kernel, imports, plots), and the
    points that ran beside it on the same host."""
    return pd.DataFrame({k: {"wall_s": p.get("wall_s"), "measure_s": p.get("measure_s"), "non_measurement_s": p.get("non_measurement_s"),
                             "overlapped_by": ", ".join(p.get("overlapped_by", [])) if "overlapped_by" in p else "not recorded"}
                         for k, p in manifest["points"].items()}).T
