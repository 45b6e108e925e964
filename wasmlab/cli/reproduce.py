"""``wasmlab reproduce``: the seed's table, every variant side by side in one process (or one child per variant)."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wasmlab.cli.group import default_results
from wasmlab.cli.options import (
    INTEGERS,
    CallPaths,
    F,
    Size,
    cache_options,
    exhaustion_options,
    format_option,
    measurement_options,
    options,
    out_option,
    pool_options,
    takes_scenario,
    workload_options,
)
from wasmlab.errors import ConfigError, Interrupted, WasmlabError

# Errors that are findings of a measurement, not bad input: reported with the results, exit status 1.
MEASURED_FAILURES = ("ResultMismatch",)
ALL_VARIANTS = "baseline,cached,pooled,pooled+cached,pooled+cached+pre"

if TYPE_CHECKING:
    from wasmlab.measure.scenario import Scenario


def limit_options() -> Callable[[F], F]:
    """What one request may use: fuel, wall time, memory, stack."""
    return options(
        click.option("--fuel", type=int, default=None, help="Fuel per request (stops runaway guests deterministically)."),
        click.option("--deadline-ms", type=float, default=None, help="Wall-time budget per request, enforced with epoch interruption."),
        click.option("--memory-limit", type=Size(), default=None, help="Linear memory a store may use, e.g. 16MiB (store limiter)."),
        click.option("--max-wasm-stack", type=Size(), default=None, help="The engine's wasm stack size, e.g. 512KiB."),
    )


def module_by_path_options() -> Callable[[F], F]:
    """What to call in a module given by path, with which WASI context, and what it must return."""
    return options(
        click.option("--entry", default=None, help="Export to call, for a module given by path [default: run, else _start]."),
        click.option("--args", "call_args", type=INTEGERS, default=None, help="Comma-separated integer arguments, for a module given by path."),
        click.option("--expect", type=int, default=None, help="The result to check, for a module given by path."),
        click.option("--argv", "argv", default=None, help="A WASI command's arguments (shell syntax), for a module given by path."),
        click.option("--stdin", "stdin", default="", help="A file to give a WASI command as stdin, for a module given by path."),
        click.option("--dir", "dirs", multiple=True, metavar="HOST::GUEST[:rw]",
                     help="Preopen a host directory for a WASI command given by path: read-only, or with :rw a fresh writable copy "
                          "per request (::GUEST:rw: a fresh empty one)."),
        click.option("--expect-exit", type=int, default=None, help="The exit code a WASI command given by path must end with."),
        click.option("--expect-file", "expect_files", multiple=True, metavar="GUEST_PATH=sha256:HEX|regex:R",
                     help="A file a WASI command must write into a writable --dir, and what it must hold."),
        click.option("--invoke", default="", metavar="'NAME(ARGS)'",
                     help="One call in WAVE for a module or component given by path, e.g. 'score({weight: 3, bonus: some(4)})'."),
        click.option("--expect-value", default="", metavar="WAVE", help="What --invoke's call must return, in WAVE (e.g. deny, some(503))."),
        click.option("--recipe", default="", metavar="FILE", help="A request recipe (YAML): the module, its WASI context, the steps "
                     "of a request and what it must end with (also accepted wherever a workload is: --workload FILE.yaml)."),
        click.option("--stdout-match", default="", metavar="REGEX",
                     help="What a WASI command's stdout must match, for a module given by path."),
        click.option("--stdout-file", default="", metavar="FILE", help="A file whose bytes a WASI command's stdout must equal "
                     "exactly, for a module given by path (a standard suite's NAME.stdout.expected)."),
        click.option("--stderr-file", default="", metavar="FILE", help="A file whose bytes a WASI command's stderr must equal exactly."),
        click.option("--no-check", is_flag=True, help="Measure a module given by path without checking its results "
                     "(by default the first request's result is every later request's expectation)."),
    )


@click.command()
@workload_options(variants=ALL_VARIANTS)
@measurement_options((1000, "Requests per repetition."), (5, "Repetitions (variants interleaved in each)."),
                     (200, "Untimed warm-up requests per variant, ending after 2 s if the count has not (the figures say so), "
                      "or auto: until the request time is stable (the median of the last 5 within 5% of the 5 before), 10 s or "
                      "200 requests, whichever comes first."), auto_warmup=True)
@click.option("--rounds", default=10, show_default=True, type=int,
              help="Slices of each repetition: in each, every variant serves its next slice of requests (at least 25 each).")
@click.option("--time-budget", default=None, metavar="DURATION",
              help="Time for every variant's timed requests over all repetitions (e.g. 30s, 2m): each repetition serves the "
                   "first requests of the trace that fit it, as each variant's warm-up predicts; the figures say how many "
                   "[default: no budget, every request].")
@pool_options("Pool slots (core instances, memories, tables, stacks).")
@cache_options()
@click.option("--call-path", default=None, type=CallPaths(),
              help="lean (prepared C calls), api (wasmtime-py objects), native (the loop in C), a comma list (native,lean), "
                   "both (lean,api) or all: every variant on each, side by side [default: native, as concurrency and advise, "
                   "the seed's gateway being a native host; lean where native refuses a variant (disk), a cache policy "
                   "(all but lru) or a workload].")
@limit_options()
@exhaustion_options()
@module_by_path_options()
@click.option("--runtime", default="wasmtime", show_default=True,
              help="Runtimes side by side: wasmtime, v8 (the machine's Node.js), extism (Extism's Python SDK) or a comma list "
                   "(wasmtime,v8,extism): every variant on each (keyed @v8, @extism), interleaved; one a runtime cannot serve "
                   "(pooled on v8 or extism) is left out with a note.")
@click.option("--isolate", is_flag=True, help="Run each variant in a child process: a runtime abort becomes the outcome 'crash'.")
@click.option("--child-address-space", type=Size(), default=None,
              help="With --isolate: limit each child's address space (RLIMIT_AS), e.g. 8GiB.")
@click.option("--artifact-dir", default="", help="Folder of compiled artifacts for the disk variant [default: data/artifacts].")
@click.option("--phases", is_flag=True, help="Also time new store, instantiate, export lookup, call and drop separately.")
@click.option("--cpu", type=int, default=None, help="Pin the process to this CPU while measuring.")
@format_option()
@out_option("data/results/reproduce/RUN_ID")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
@takes_scenario
def reproduce(scenario: Scenario, isolate: bool, child_address_space: int | None, fmt: str, out: Path | None, no_save: bool) -> None:
    """Reproduce the seed's table: baseline vs pooled+cached (and the other variants), side by side."""
    from wasmlab.storage import check_writable

    if child_address_space and not isolate:
        raise ConfigError("--child-address-space applies only with --isolate")
    created = out is not None and not out.exists()
    if out is not None and not no_save:
        check_writable(out)
    try:
        measurement = measure(scenario, isolate, child_address_space)
    except Interrupted as stop:
        keep_partial(stop, out, created, no_save)
        raise
    measured_failures = all(e.startswith(MEASURED_FAILURES) for e in measurement.errors.values())
    if measurement.errors and not (measurement.summary["status"] == "ok").any() and not measured_failures:
        # Nothing ran at all (every variant refused its module, say): one line, like a bad input.
        raise nothing_ran(next(iter(measurement.errors.values())))
    folder = None
    if not no_save:
        from wasmlab.measure.results import save_measurement

        folder = save_measurement(measurement, out or default_results() / "reproduce" / measurement.metadata["run_id"])
    show(measurement, fmt, folder, scenario.measurement.phases)


def nothing_ran(error: str) -> WasmlabError:
    """A run in which no variant served a request, as the one line of a bad input: a bad input met while measuring
    (an import the lab cannot satisfy, found at a lean path's first compilation) in the words it has when met before
    (on the native path), without the class name a variant's error is recorded with (``ConfigError: ...``)."""
    from wasmlab import errors

    kind, colon, text = error.partition(": ")
    found = getattr(errors, kind, None) if colon else None
    if isinstance(found, type) and issubclass(found, ConfigError):
        return found(text)
    return WasmlabError(error)


def keep_partial(stop: Interrupted, out: Path | None, created: bool, no_save: bool) -> None:
    """On an interrupt: the finished repetitions saved as a partial run (``stop.kept`` says where), or the results
    folder this command made removed again when nothing finished."""
    if stop.partial is not None and not no_save:
        from wasmlab.measure.results import save_measurement

        partial: Any = stop.partial
        folder = save_measurement(partial, out or default_results() / "reproduce" / partial.metadata["run_id"])
        stop.kept = f"{folder}/"
        stop.resume = "; run the command again for a whole run"
    else:
        if stop.partial is not None:
            stop.resume = " (--no-save)"
        if out is not None and created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def measure(scenario: Scenario, isolate: bool, child_address_space: int | None) -> Any:
    """Every variant of ``scenario`` measured, with a progress bar on stderr."""
    # Imported once the input is known good: a bad flag is answered without loading pandas and the plotting stack.
    from tqdm import tqdm

    from wasmlab.measure.scenario import run

    blocks = scenario.repeats * len(scenario.variants)
    with tqdm(total=blocks, desc="measuring", unit="block", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(variant: str, rep: int, total: int) -> None:
            bar.set_postfix_str(f"{variant} rep {rep + 1}/{total}")
            bar.update(1)

        with warnings.catch_warnings():
            # The busy-machine warning is printed with the provenance lines instead.
            warnings.simplefilter("ignore", RuntimeWarning)
            if isolate:
                from wasmlab.measure.isolate import run_isolated

                return run_isolated(scenario, progress, child_address_space)
            return run(scenario, progress)


def show(measurement: Any, fmt: str, folder: Path | None, phases: bool) -> None:
    """The headline as JSON, or the seed's table, the variants, the phases and how it was measured; exit 1 on errors."""
    from wasmlab.report import snapshots
    from wasmlab.report import text as report
    from wasmlab.report.reuse_text import reuse_table
    from wasmlab.report.runtimes_text import runtime_rows, runtimes_table

    if fmt == "json":
        data = report.headline(measurement)
        found = snapshots.summary(measurement)
        if found:
            data["snapshots"] = found
        if runtime_rows(measurement):
            data["runtimes"] = runtime_rows(measurement)
            data["runtime_notes"] = measurement.metadata.get("runtime_notes", [])
        data["results_dir"] = str(folder) if folder else None
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(report.seed_table(measurement))
        click.echo()
        click.echo(report.variants_table(measurement))
        runtimes = runtimes_table(measurement)
        if runtimes:
            click.echo()
            click.echo(runtimes)
        reuse = reuse_table(measurement)
        if reuse:
            click.echo()
            click.echo(reuse)
        if phases:
            click.echo()
            click.echo(report.phases_table(measurement))
        snapshot_lines = snapshots.table(measurement)
        if snapshot_lines:
            click.echo()
            click.echo(snapshot_lines)
        click.echo()
        click.echo(report.provenance(measurement))
        if folder:
            click.echo(f"Results: {folder}/ (summary.parquet, samples.parquet, metadata.json)")
    if measurement.errors or report.unexpected_outcomes(measurement):
        sys.exit(1)
