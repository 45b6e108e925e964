"""``wasmlab releases``: other wasmtime releases' libraries, fetched and verified, and one scenario run on each."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wasmlab.cli.group import default_results
from wasmlab.cli.options import NAMES, F, format_option, measurement_options, options, out_option, scenario_with, workload_options
from wasmlab.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from wasmlab.experiments.releases import AcrossReleases
    from wasmlab.measure.scenario import Scenario


@click.group()
def releases() -> None:
    """Other wasmtime releases' libraries (from their wasmtime-py wheels), and the same scenario run on each."""


@releases.command("fetch")
@click.argument("versions", nargs=-1)
@click.option("--all-since", type=int, default=None, help="Every release of the manifest from this major on.")
def releases_fetch(versions: tuple[str, ...], all_since: int | None) -> None:
    """Download, verify (SHA-256 of the wheel and of its library) and extract each release's libwasmtime."""
    from wasmlab.host import releases as rel

    chosen = rel.resolve(versions) if versions else []
    if all_since is not None:
        chosen = list(dict.fromkeys(chosen + rel.since(all_since)))
    if not chosen:
        raise ConfigError("no release given; allowed: versions or majors from the manifest (e.g. 30 40 50), or --all-since N")
    for release in chosen:
        path = rel.fetch(release)
        click.echo(f"{release.version}: {path} (sha256 {release.library_sha256[:12]})")


def release_pool_options() -> Callable[[F], F]:
    from wasmlab.cli.options import KeyValue
    from wasmlab.config import DEFAULT_SLOTS

    return options(
        click.option("--slots", default=DEFAULT_SLOTS, show_default=True, type=int, help="Pool slots of pooled variants."),
        click.option("--pool", "pool_knobs", multiple=True, type=KeyValue(), metavar="KEY=VALUE",
                     help="Any pool knob, e.g. linear_memory_keep_resident=64KiB."),
        click.option("--cache-size", default=16, show_default=True, type=int, help="Compiled modules a cached variant keeps."),
    )


@releases.command("run")
@click.option("--releases", "versions", required=True, type=NAMES, help="Comma-separated releases (versions or majors), e.g. 30,40,50.")
@workload_options(variants="baseline,pooled+cached", workload_help="Workload spec: a core module (without imports) or a component (on releases whose C API serves components).")
@measurement_options((500, "Requests per variant, release and repetition."),
                     (3, "Repetitions; each runs every release once, order rotated."), (200, "Untimed requests per variant first."))
@release_pool_options()
@click.option("--compile", "compile_specs", multiple=True, metavar="WORKLOAD", help="Also time compiling this module on each release.")
@format_option()
@out_option("data/results/releases/RUN_ID")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
@scenario_with(preset=None)  # a release's child builds its pool from wasmlab's defaults, the slots and the knobs
def releases_run(scenario: Scenario, versions: tuple[str, ...], compile_specs: tuple[str, ...], fmt: str, out: Path | None,
                 no_save: bool) -> None:
    """The same scenario on each release's library through the native driver, one child process per release and repetition;
    on Ctrl-C or SIGTERM the children that finished are kept, marked partial."""
    from wasmlab.storage import check_writable

    created = out is not None and not out.exists()
    if out is not None and not no_save:
        check_writable(out)
    try:
        across = measure(scenario, list(versions), compile_specs)
    except Interrupted as stop:
        keep_partial(stop, out, created, no_save)
        raise
    folder = None if no_save else across.save(out or default_results() / "releases" / across.metadata["run_id"])
    if fmt == "json":
        click.echo(json.dumps({**across.to_json(), "results_dir": str(folder) if folder else None}, indent=2, default=str))
    else:
        click.echo(across.render())
        if folder:
            click.echo(f"Results: {folder}/ (summary.parquet, compiles.parquet, changes.parquet, metadata.json)")
    if across.failed:
        sys.exit(1)


def measure(scenario: Scenario, versions: list[str], compile_specs: tuple[str, ...]) -> AcrossReleases:
    """Every release's children, with a progress bar on stderr that names the release and repetition under way."""
    from tqdm import tqdm

    from wasmlab.experiments.releases import scenario_across_releases

    repeats = scenario.repeats
    with tqdm(total=len(versions) * repeats, desc="releases", unit="child", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(version: str, repetition: int) -> None:
            bar.set_postfix_str(f"{version} rep {repetition + 1}/{repeats}")
            bar.update(1)
        return scenario_across_releases(versions, scenario, compile_workloads=compile_specs, progress=progress)


def keep_partial(stop: Interrupted, out: Path | None, created: bool, no_save: bool) -> None:
    """On an interrupt: the finished children saved as a partial run (``stop.kept`` says where), or the results folder
    this command made removed again when none finished."""
    if stop.partial is not None and not no_save:
        partial: AcrossReleases = stop.partial
        folder = partial.save(out or default_results() / "releases" / partial.metadata["run_id"])
        stop.kept = f"{folder}/"
        stop.resume = "; run the command again for a whole run"
        return
    if stop.partial is not None:
        stop.resume = " (--no-save)"
    if out is not None and created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
