"""A sweep's report page (``report/report.html``): the headline first, then speedups per point as a table and a
chart, the standard figures, and how every point was measured, folded.

The page is plain HTML written here, not a notebook export: its layout is the lab's, so nothing in it is wider than
the window (tables and long facts scroll or wrap inside their own boxes) and the headline is the first thing read.
Figures are real PNG files beside the page, embedded too so that report.html alone still shows them.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.report import page_format as fmt
from wasmlab.report import sweeps, variant_style
from wasmlab.report.page_measured import measured_section
from wasmlab.storage import atomic_write

# The seed PR's claim, which the headline is read against.
SEED_BASELINE_US, SEED_OPTIMIZED_US = 371.0, 6.3
SEED_SPEEDUP = sweeps.SEED_SPEEDUP
TITLE = "Sweep summary"


def write_report(results_dir: str | Path, out: str | Path, reference: str = "baseline") -> Path:
    """Save the figures of the sweep in ``results_dir`` into ``out`` and write ``out/report.html``; its path."""
    from wasmlab.report.plots import save

    folder, target = Path(results_dir), Path(out)
    table, manifest = sweeps.load_sweep(folder)
    varying = sweeps.varying_parameters(table)
    speedups = sweeps.point_speedups(folder, reference)
    figures: list[tuple[str, str]] = []
    if not speedups.empty:
        save(sweeps.speedup_figure(speedups, varying, reference), target / "speedups.png")
        figures.append(("speedups.png", _speedup_caption(reference)))
    for name, figure in sweeps.standard_figures(table, varying).items():
        save(figure, target / name)
        figures.append((name, _FIGURE_CAPTIONS.get(name, "")))
    body = "".join([
        _top(manifest, table, speedups, varying),
        _figures_section(target, figures[:1], "Speedups at a glance"),
        _speedup_section(speedups, varying, table),
        _figures_section(target, figures[1:], "Across the sweep's parameters"),
        measured_section(table, manifest, varying),
    ])
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(TITLE)}: {escape(str(manifest['spec']['name']))}</title><style>{fmt.STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
    return atomic_write(target / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _top(manifest: dict[str, Any], table: pd.DataFrame, speedups: pd.DataFrame, varying: list[str]) -> str:
    spec, machine = manifest["spec"], manifest["machine"]
    shown = ", ".join(v.removeprefix("param_") for v in varying) or "nothing"
    sub = (f"Sweep {spec['name']!r} of {str(spec['notebook']).split('/')[-1]}: {len(manifest['points'])} points, varying "
           f"{shown}; measured {manifest['start']} on {machine['cpu_model']} ({machine['cpu_count']} cores), "
           f"wasmtime {machine['wasmtime_version']}")
    warnings = [w for w in (sweeps.partial_note_of(manifest), _busy_note(table), _overlap_note(manifest)) if w]
    failed = sweeps.failed_points(manifest)
    warnings += [f"Point {row.point} failed: {row.error}" for row in failed.itertuples()]
    return (f"<header><h1>{escape(TITLE)}</h1>{headline_html(speedups, varying)}"
            f'<p class="sub">{escape(sub)}</p>'
            + "".join(f'<p class="warn">{escape(w)}</p>' for w in warnings) + "</header>")


def _busy_note(table: pd.DataFrame) -> str:
    if "machine_busy" not in table or not table["machine_busy"].fillna(False).astype(bool).any():
        return ""
    busy = table.loc[table["machine_busy"].fillna(False).astype(bool), "point_id"].nunique()
    return f"The machine was busy (other processes using CPU) during {busy} point(s): their figures may be noisy."


def _overlap_note(manifest: dict[str, Any]) -> str:
    text = sweeps.describe_overlap(manifest)
    return text if "ran while other points ran" in text else ""


def headline_point(speedups: pd.DataFrame, varying: list[str]) -> pd.DataFrame:
    """The rows of the point the headline quotes: the seed's own settings (20 slots, cache size 16) where the sweep
    ran them, else its first point."""
    from wasmlab.config import PRESETS

    seed = PRESETS["seed"]
    chosen = speedups
    for column, value in (("param_slots", seed.pool.slots), ("param_cache_size", seed.cache.size)):
        if column in chosen and (chosen[column] == value).any():
            chosen = chosen[chosen[column] == value]
    return speedups[speedups["point_id"] == chosen.iloc[0]["point_id"]]


def headline_html(speedups: pd.DataFrame, varying: list[str]) -> str:
    """One sentence: the best variant's measured speedup over its own path's baseline with its interval, against the
    seed's 59x; then the same composition on the other paths, and the point quoted."""
    measured = speedups[speedups["speedup"].notna() & (speedups["variant"] != speedups.get("speedup_over"))] \
        if not speedups.empty else speedups
    if measured.empty:
        return ('<section id="headline"><p>No speedup to quote: this sweep has no variant measured beside a '
                "baseline on its own call path.</p></section>")
    point = headline_point(measured, varying)
    best = point.loc[point["speedup"].idxmax()]
    base = speedups[(speedups["point_id"] == best["point_id"]) & (speedups["variant"] == best["speedup_over"])]
    base_us = float(base["latency_us_mean"].iloc[0]) if not base.empty else float("nan")
    sentence = (f"{best['variant']} served a request {fmt.speedup(best['speedup'], best['ci95_low'], best['ci95_high'])} "
                f"faster than {best['speedup_over']} ({fmt.number(base_us)} µs → {fmt.number(best['latency_us_mean'])} µs "
                f"per request; {_interval_words(best)}), against the seed's claimed "
                f"{SEED_SPEEDUP:.0f}x ({SEED_BASELINE_US:.0f} µs → {SEED_OPTIMIZED_US} µs): {_against_seed(best)}.")
    others = point[(point["variant"].map(variant_style.composition) == variant_style.composition(best["variant"]))
                   & (point["variant"] != best["variant"])]
    also = [f"{row.variant} over {row.speedup_over}: {fmt.speedup(row.speedup, row.ci95_low, row.ci95_high)}"
            for row in others.itertuples()]
    where = sweeps.point_label(point.head(1), varying).iloc[0] if varying else "its one point"
    also.append(f"quoted at {where}")
    return (f'<section id="headline"><p>{escape(sentence)}</p>'
            f'<p class="also">{escape("; ".join(also))}</p></section>')


def _interval_words(best: pd.Series) -> str:
    repetitions = int(best["repetitions"])
    if best["ci95_low"] != best["ci95_low"]:
        return f"{repetitions} repetition: no interval"
    return f"95% interval over {repetitions} repetitions"


def _against_seed(best: pd.Series) -> str:
    low, high = best["ci95_low"], best["ci95_high"]
    if low != low or high != high:
        return "one repetition gives no interval, so this run cannot say whether it differs"
    if low <= SEED_SPEEDUP <= high:
        return f"{SEED_SPEEDUP:.0f}x lies inside the interval, so no difference is shown"
    return f"the seed's {SEED_SPEEDUP:.0f}x lies {'below' if SEED_SPEEDUP < low else 'above'} the interval"


def _speedup_section(speedups: pd.DataFrame, varying: list[str], table: pd.DataFrame) -> str:
    """One row per point and composition, the call paths side by side, each path against its own baseline."""
    if speedups.empty:
        return ("<h2>Speedups per point</h2><p>No per-request timings with a reference variant in this sweep: "
                "no speedup to show. Its table is results.parquet.</p>")
    labels = sweeps.point_label(speedups, varying) if varying else speedups["point_id"].astype(str)
    frame = speedups.assign(point=labels, composition=speedups["variant"].map(variant_style.composition),
                            call_path=speedups["call_path"].fillna("").astype(str))
    paths = sorted(dict.fromkeys(frame["call_path"]), key=lambda p: (p != "native", p))
    references = {p: ", ".join(sorted({str(v) for v in frame.loc[frame["call_path"] == p, "speedup_over"] if v})) or "-"
                  for p in paths}
    columns, spans = ["Variant"], [("", 1)]
    for path in paths:
        columns += ["Mean latency", "Speedup"]
        spans.append((f"{path or 'the run'} path, over {references[path]}", 2))
    rows, groups = [], []
    for point in dict.fromkeys(frame["point"]):
        here = frame[frame["point"] == point]
        for i, name in enumerate(variant_style.ordered(list(here["composition"]))):
            cells = [name]
            for path in paths:
                match = here[(here["composition"] == name) & (here["call_path"] == path)]
                cells += _path_cells(match.iloc[0]) if not match.empty else ["not run", ""]
            rows.append(cells)
            groups.append(point if i == 0 else None)
    reps = int(frame["repetitions"].max())
    caption = (f"Geometric mean over {reps} repetition(s), 95% interval in brackets. Each speedup is over the baseline "
               "of its own call path, paired by repetition; an interval that includes 1x shows no difference beyond noise.")
    return ("<h2>Speedups per point</h2>"
            + fmt.table(columns, rows, numeric=[False] + [True] * (len(columns) - 1),
                        groups=groups if len(groups) > 1 and varying else None, caption=caption, spans=spans))


def _path_cells(row: pd.Series) -> list[str]:
    latency = fmt.interval(row["latency_us_mean"], row["latency_ci95_low"], row["latency_ci95_high"], " µs")
    if row["variant"] == row["speedup_over"]:
        return [latency, "1x (reference)"]
    if row["speedup"] != row["speedup"]:
        return [latency, f"none: {row['speedup_note']}"]
    return [latency, fmt.speedup(row["speedup"], row["ci95_low"], row["ci95_high"])]


def _speedup_caption(reference: str) -> str:
    return (f"Speedup over {reference} on each call path's own {reference}, one panel per path: a dot is the point "
            "estimate, its whiskers the 95% interval over repetitions; hollow where the interval includes 1x (no "
            f"difference beyond noise). Log scale; dashed red line: the seed's claimed {SEED_SPEEDUP:.0f}x.")


_FIGURE_CAPTIONS = {
    "heatmap.png": ("Median p50 latency of pooled+cached over the two parameters, each cell with its 95% interval. The "
                    "colour scale spans at least four interval half-widths, so differences within the interval stay "
                    "within a shade or two."),
    "hit_rates.png": "Compiled-module cache hit rate against cache size, per policy.",
}


def _figures_section(folder: Path, figures: list[tuple[str, str]], title: str) -> str:
    if not figures:
        return ""
    parts = [f"<h2>{escape(title)}</h2>"]
    for name, caption in figures:
        parts.append(f"<figure>{_image(folder / name)}<figcaption>{escape(caption)} "
                     f'File: <a href="{escape(name)}">{escape(name)}</a>.</figcaption></figure>')
    return "".join(parts)


def _image(path: Path) -> str:
    """The PNG embedded, shown at its size in inches at 96 px per inch (it was saved at 150 dpi), never wider than
    the page."""
    from PIL import Image

    with Image.open(path) as image:
        width = round(image.width * 96 / 150)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{width}" alt="{escape(path.stem)} chart">'
