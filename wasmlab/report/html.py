"""``wasmlab report``: execute 99_summary.ipynb on a sweep's results, which writes the report page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from wasmlab.errors import WasmlabError
from wasmlab.jupyter_kernels import execute_notebook
from wasmlab.storage import project_root

if TYPE_CHECKING:  # pandas is imported where the tables are read
    import pandas as pd

SUMMARY_NOTEBOOK = project_root(Path(__file__).resolve().parent) / "notebooks" / "99_summary.ipynb"


def build(results_dir: str | Path, notebook: Path = SUMMARY_NOTEBOOK) -> Path:
    """Run the summary notebook on ``results_dir``; it writes ``report/report.html`` and its figures
    (:mod:`wasmlab.report.sweep_page`), and ``report/summary.ipynb`` is the notebook as executed."""
    from wasmlab.report.sweeps import load_sweep

    folder = Path(results_dir)
    load_sweep(folder)  # fails early, with a clear message, on a folder that is not a finished sweep
    if not notebook.is_file():
        raise WasmlabError(f"{notebook} not found: wasmlab report needs the repository's notebooks/ folder")
    out = folder / "report"
    if out.exists():
        shutil.rmtree(out)  # generated entirely here: no stale figure from an earlier report survives
    out.mkdir(parents=True)
    executed = out / "summary.ipynb"
    execute_notebook(notebook, executed, {"results_dir": str(folder.resolve()), "output_dir": str(out.resolve())}, notebook.parent)
    page = out / "report.html"
    if not page.is_file():
        raise WasmlabError(f"{notebook.name} ran but wrote no {page}: see {executed}")
    return page


def _per_point(speedups: pd.DataFrame, varying: list[str]) -> list[str]:
    """A line per point: its baseline and optimized µs per request, their ratio and its interval."""
    from wasmlab.report.text import OPTIMIZED, REFERENCE

    best = speedups[speedups["variant"] == OPTIMIZED]
    path = " and ".join(dict.fromkeys(best["call_path"].astype(str)))
    lines = [f"Per point: {REFERENCE} vs {OPTIMIZED} on the {path} path (ratio of geometric-mean total times, 95% CI over "
             f"repetitions)"]
    base = speedups[speedups["variant"] == REFERENCE].set_index("point_id")["latency_us_mean"]
    for row in best.itertuples():
        label = ", ".join(f"{c.removeprefix('param_')}={getattr(row, c)}" for c in varying) or row.point_id
        lines.append(f"  {label}: {base[row.point_id]:.1f} µs -> {row.latency_us_mean:.2f} µs, {row.speedup:.1f}x "
                     + (f"({row.ci95_low:.1f}-{row.ci95_high:.1f})" if row.ci95_low == row.ci95_low else "(one repetition: no interval)"))
    return lines


def text_summary(results_dir: str | Path, full: bool = False) -> str:
    """For sweeps of the seed notebook: one line per point, then the seed table of the point run with the seed's own
    settings (or the first point), every variant by call path and how it was measured; ``full``: every figure the
    run printed (the variants' percentiles, the harness lines, native/lean per composition)."""
    from wasmlab.config import PRESETS
    from wasmlab.measure.measurement import Measurement
    from wasmlab.report.brief import measured, path_legend, points_line, seed_footnote, seed_path, variants_by_path
    from wasmlab.report.sweeps import point_speedups, varying_parameters
    from wasmlab.report.text import OPTIMIZED, provenance, seed_table, variants_table

    folder = Path(results_dir)
    speedups = point_speedups(folder)
    if speedups.empty or OPTIMIZED not in set(speedups["variant"]):
        return ""
    from wasmlab.report.sweeps import load_sweep

    table, _ = load_sweep(folder)
    varying = varying_parameters(table)
    best = speedups[speedups["variant"] == OPTIMIZED]
    lines = _per_point(speedups, varying) if full or len(best) < 2 or not varying else [points_line(best, varying)]
    seed = PRESETS["seed"]
    chosen = best
    for column, value in (("param_slots", seed.pool.slots), ("param_cache_size", seed.cache.size)):
        if column in chosen and (chosen[column] == value).any():
            chosen = chosen[chosen[column] == value]
    point_id = chosen.iloc[0]["point_id"]
    label = ", ".join(f"{c.removeprefix('param_')}={chosen.iloc[0][c]}" for c in varying)
    point_results = folder / "points" / point_id / "results"
    measurement = Measurement.load(point_results)
    title = f"Seed table ({'' if full else seed_path(measurement)}{label or point_id}):"
    lines += ["", title, seed_table(measurement, brief=not full)]
    lines += [""] if full else [seed_footnote(measurement), ""]
    if full:
        lines += [variants_table(measurement), "", provenance(measurement),
                  f"Results of this point: {point_results}/ (summary.parquet, samples.parquet, metadata.json)",
                  f"All points: {folder / 'results.parquet'}"]
    else:
        legend = path_legend(measurement)
        lines += [f"All variants: µs per request (total time / {measurement.metadata['requests']}), and speedup over the same "
                  "path's baseline with its 95% CI" + (f";\n  {legend}:" if legend else ":"),
                  variants_by_path(measurement), "", measured(measurement),
                  f"More figures (percentiles, page faults, hit rates, harness cost): the report below, or\n"
                  f"  wasmlab report --full {folder}"]
    return "\n".join(lines)
