"""``wasmlab history``: saved runs indexed by machine, commit and wasmtime version, and one figure followed across them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from wasmlab.cli.group import default_results
from wasmlab.cli.options import Choice, format_option


@click.command()
@click.argument("roots", nargs=-1, type=click.Path(path_type=Path))
@click.option("--workload", default=None, help="The workload of the figure to follow (with --variant).")
@click.option("--variant", default=None, help="The variant of the figure to follow, e.g. pooled+cached; without it, list the runs.")
@click.option("--call-path", default="lean", show_default=True, type=Choice(("lean", "api", "native"), "call path"),
              help="The call path of the figure.")
@click.option("--metric", default="latency_us_mean", show_default=True,
              type=Choice(("latency_us_mean", "latency_us_p50", "latency_us_p99"), "metric"),
              help="The per-repetition latency column followed.")
@click.option("--machine", default=None, help="The machine whose runs are compared (default: the latest run's).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None, help="Write the figure across runs to this PNG.")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when the latest run changed against the one before it.")
@format_option()
def history(roots: tuple[Path, ...], workload: str | None, variant: str | None, call_path: str, metric: str,
            machine: str | None, plot_path: Path | None, fail_on_change: bool, fmt: str) -> None:
    """List saved runs by machine, commit, wasmtime version and environment, or follow one figure across them with its
    interval and flag a change outside the noise. ROOTS are folders of saved runs (default data/results)."""
    from wasmlab.errors import ConfigError
    from wasmlab.report import history as hist

    found = hist.index(list(roots) or [default_results()])
    if variant is None:
        if workload is not None:
            raise ConfigError("--workload needs --variant (the figure to follow); allowed: both, or neither to list the runs")
        click.echo(found.runs.to_json(orient="records", indent=2) if fmt == "json" else hist.listing(found))
        return
    if workload is None:
        raise ConfigError("--variant needs --workload (the figure to follow); allowed: both, or neither to list the runs")
    selection = hist.Selection(workload, variant, call_path, metric)
    table, chosen, others = hist.series(found, selection, machine)
    click.echo(hist.document(table, selection, chosen) if fmt == "json" else hist.text(table, selection, chosen, others))
    if plot_path is not None:
        hist.plot(table, selection, chosen).savefig(plot_path, dpi=120)
        click.echo(f"Plot: {plot_path}", err=fmt == "json")
    if fail_on_change and len(table) > 1 and table["changed"].iloc[-1]:
        sys.exit(1)
