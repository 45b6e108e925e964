"""``wasmlab releases``: other wasmtime releases' libraries, fetched and verified, and one scenario run on each."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


@releases.command("add")
@click.argument("versions", nargs=-1, required=True)
def releases_add(versions: tuple[str, ...]) -> None:
    """Put releases into the manifest: each VERSION's wasmtime-py wheel (e.g. 48.0.0, or 48 for its newest patch) is fetched
    from PyPI with pip (never installed), its wheel's and library's SHA-256 pinned on first fetch and its library extracted;
    a version already in the manifest is verified against its pins, never rewritten."""
    from wasmlab.host.release_pins import add

    for version in versions:
        click.echo(add(version).line())


def library_option() -> Callable[[F], F]:
    return click.option("--library", "libraries", multiple=True, metavar="PATH",
                        help="Also measure your own libwasmtime build (a .so), labelled library:<first 12 hex of its SHA-256>.")


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
@click.option("--releases", "versions", default="", type=NAMES, help="Comma-separated releases (versions or majors), e.g. 30,40,50.")
@library_option()
@workload_options(variants="baseline,pooled+cached", workload_help="Workload spec: a core module (without imports) or a component (on releases whose C API serves components).")
@measurement_options((500, "Requests per variant, release and repetition."),
                     (3, "Repetitions; each runs every release once, order rotated."), (200, "Untimed requests per variant first."))
@release_pool_options()
@click.option("--compile", "compile_specs", multiple=True, metavar="WORKLOAD", help="Also time compiling this module on each release.")
@format_option()
@out_option("data/results/releases/RUN_ID")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
@scenario_with(preset=None)  # a release's child builds its pool from wasmlab's defaults, the slots and the knobs
def releases_run(scenario: Scenario, versions: tuple[str, ...], libraries: tuple[str, ...], compile_specs: tuple[str, ...], fmt: str,
                 out: Path | None, no_save: bool) -> None:
    """The same scenario on each release's library through the native driver, one child process per release and repetition;
    on Ctrl-C or SIGTERM the children that finished are kept, marked partial."""
    from wasmlab.storage import check_writable

    if not versions and not libraries:
        raise ConfigError("no release given; allowed: --releases with versions or majors from the manifest (e.g. 30,40,50), "
                          "and/or --library PATH")
    created = out is not None and not out.exists()
    if out is not None and not no_save:
        check_writable(out)
    try:
        across = measure(scenario, list(versions), compile_specs, list(libraries))
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


def measure(scenario: Scenario, versions: list[str], compile_specs: tuple[str, ...], libraries: list[str]) -> AcrossReleases:
    """Every release's (and user build's) children, with a progress bar on stderr that names the release and repetition under way."""
    from tqdm import tqdm

    from wasmlab.experiments.releases import scenario_across_releases

    repeats = scenario.repeats
    with tqdm(total=(len(versions) + len(libraries)) * repeats, desc="releases", unit="child", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(version: str, repetition: int) -> None:
            bar.set_postfix_str(f"{version} rep {repetition + 1}/{repeats}")
            bar.update(1)
        return scenario_across_releases(versions, scenario, compile_workloads=compile_specs, progress=progress, libraries=libraries)


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


@releases.command("bisect")
@click.argument("first")
@click.argument("last", required=False)
@click.option("--workload", default="seed", show_default=True, help="Workload spec (a core module or a component).")
@click.option("--variant", default="pooled+cached", show_default=True, help="The variant whose p50 per request is bisected.")
@click.option("--call-path", type=click.Choice(["native"]), default="native", show_default=True,
              help="Releases run on the native driver only (each loads its own library).")
@measurement_options((2000, "Requests per child (one release, one repetition)."),
                     (5, "Repetitions per step; each runs A and the candidate once, order rotated."), (200, "Untimed requests first."))
@release_pool_options()
@library_option()
@format_option()
def releases_bisect(first: str, last: str | None, fmt: str, libraries: tuple[str, ...], **flags: Any) -> None:
    """The release between FIRST and LAST (versions or majors of the manifest) where VARIANT's p50 per request moved outside
    its interval: FIRST and LAST measured side by side, then the releases between them bisected (each fetched and verified
    as `add` does), each step FIRST and one release interleaved by repetition, one child process per release and repetition.
    --library PATH bisects on into your own build after LAST (without LAST: up to the release its version says)."""
    from wasmlab.experiments.release_bisect import as_json, bisect_releases

    if flags["repeats"] < 2:
        raise ConfigError(f"--repeats {flags['repeats']}: an interval needs repetitions; allowed: 2 or more")
    if flags["requests"] < 1:
        raise ConfigError(f"--requests {flags['requests']}: allowed: 1 or more")
    from wasmlab.measure.warmup import fixed_warmup

    pool = dict(flags.pop("pool_knobs"))
    settings = {**flags, "pool": pool, "warmup": fixed_warmup(flags["warmup"], "wasmlab releases bisect")}
    result = bisect_releases(first, last, settings, libraries)
    click.echo(as_json(result) if fmt == "json" else result.render())
    if result.stopped:
        sys.exit(1)
