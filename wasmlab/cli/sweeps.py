"""``wasmlab sweep``, ``wasmlab report`` and ``wasmlab compare``: sweeps run, summarised and compared."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from wasmlab.cli.options import GateRatio, Setting, Workers, format_option, shown


@click.command()
@click.argument("spec_file", metavar="SPEC", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder [default: the spec's, or data/results/<name>].")
@click.option("--workers", type=Workers(), default=1, show_default=True, help="Points run at once on a local Dask cluster (disturbs timings).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Submit points to this Dask distributed scheduler.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Skip points that already finished.")
@click.option("--dry-run", is_flag=True, help="List the points and whether each would run.")
@click.option("--set", "settings", type=Setting(), multiple=True,
              help="Override a parameter for this run, e.g. --set requests=200: a list replaces a grid axis's values, a "
                   "single value fixes it for every point. Repeatable.")
def sweep(spec_file: Path, out: Path | None, workers: int, scheduler: str | None, resume: bool, dry_run: bool,
          settings: tuple[tuple[str, Any], ...]) -> None:
    """Run a sweep spec: one papermill execution of its notebook per grid point, then one results table."""
    from wasmlab import sweep as sweeps
    from wasmlab.storage import check_writable

    specs = sweeps.load_specs(spec_file, out, dict(settings))
    if dry_run:
        for spec in specs:
            for line in sweeps.dry_run(spec):
                click.echo(f"{spec.name}  {line}")
        return
    failures = 0
    for spec in specs:
        check_writable(spec.out)
        outcome = sweeps.run_sweep(spec, resume=resume, workers=workers, scheduler=scheduler)
        total = len(spec.points())
        ok = sum(1 for s in outcome.statuses.values() if s.get("status") == "ok")
        overheads = [s["non_measurement_s"] for s in outcome.statuses.values() if "non_measurement_s" in s]
        click.echo(f"{spec.name}: {total} points, {ok} ok ({len(outcome.skipped)} already finished), {len(outcome.failed)} failed")
        if overheads:
            click.echo(f"  per point, time outside the measurement (Jupyter kernel start, imports, plots): max {max(overheads):.1f} s, "
                       f"median {sorted(overheads)[len(overheads) // 2]:.1f} s")
        else:
            papermill = [s["papermill_overhead_s"] for s in outcome.statuses.values() if "papermill_overhead_s" in s]
            if papermill:
                click.echo(f"  per point, papermill's own time (kernel start, notebook I/O): max {max(papermill):.1f} s")
        for point_id, error in outcome.failed.items():
            click.echo(f"  FAILED {point_id}: {error} (see {shown(spec.out / 'points' / point_id / 'executed.ipynb')})")
        click.echo(f"  Results: {shown(outcome.results) if outcome.results else '(no finished point)'}")
        click.echo(f"  Manifest: {shown(outcome.manifest)}")
        failures += len(outcome.failed)
    if failures:
        sys.exit(1)


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="Print every figure of the seed point (percentiles, page faults, hit rates, "
              "harness costs, native/lean per variant), not the short summary.")
def report(results_dir: Path, full: bool) -> None:
    """Execute notebooks/99_summary.ipynb on a sweep's results, which writes report/report.html; print a summary and the path."""
    from wasmlab.report import html as htmlreport
    from wasmlab.report.sweeps import partial_note

    path = htmlreport.build(results_dir)
    if note := partial_note(results_dir):
        click.echo(note)
    summary = htmlreport.text_summary(results_dir, full)
    if summary:
        click.echo(summary)
        click.echo()
    click.echo(f"Report: {path}")


@click.command()
@click.argument("results_a", metavar="A[@RELEASE]", type=click.Path(path_type=Path))
@click.argument("results_b", metavar="B[@RELEASE]", type=click.Path(path_type=Path))
@click.option("--fail-above", type=GateRatio(), default=None, metavar="RATIO",
              help="Exit 1 when a row's B/A 95% CI lies wholly above RATIO (a slowdown beyond noise), e.g. 1.2.")
@click.option("--fail-below", type=GateRatio(), default=None, metavar="RATIO",
              help="Exit 1 when a row's B/A 95% CI lies wholly below RATIO, e.g. 0.8.")
@format_option()
def compare(results_a: Path, results_b: Path, fail_above: float | None, fail_below: float | None, fmt: str) -> None:
    """Compare two results tables (runs, sweeps, machines, versions), or two releases of a run across releases
    (RUN@40 RUN@50): B / A per variant, with 95% CIs.
    With --fail-above or --fail-below RATIO, a regression gate: exit 1 on a change beyond noise."""
    from wasmlab.report import compare as comparing
    from wasmlab.report.gate import Gate

    result = comparing.comparison(results_a, results_b, Gate(fail_above, fail_below))
    if fmt == "json":
        from wasmlab.report.compare_json import render_json

        click.echo(render_json(result))
    else:
        click.echo(comparing.text(result))
    if result.failed:
        sys.exit(1)
