"""``wasmlab advise``: the pool and engine settings that meet a p99 target, searched and measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wasmlab.cli.options import CallPaths, Size, format_option, run_folder, save_options, takes_scenario
from wasmlab.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from wasmlab.measure.scenario import Scenario


@click.command("advise")
@click.option("--workload", "workloads", multiple=True, default=("seed",), show_default=True,
              help="Workload spec; several for a multi-tenant host (with --trace).")
@click.option("--concurrency", "concurrent", type=int, required=True, help="Requests served at once (worker threads).")
@click.option("--p99-us", type=float, required=True, help="The p99 latency target, in microseconds.")
@click.option("--rss-budget", type=Size(), default=None, help="Most resident memory the pool and cache may add, e.g. 64MiB.")
@click.option("--address-space", type=Size(), default=None, help="Most address space the engine may reserve, e.g. 8GiB.")
@click.option("--call-path", default="native", show_default=True, type=CallPaths(("native", "lean"), "advise", lists=False),
              help="native (C, no GIL) or lean (Python threads).")
@click.option("--trace", default="repeat", show_default=True, help="Over several workloads: uniform or zipf[:s=1.1].")
@click.option("--allow-reuse", is_flag=True, help="Let the search try instance reuse (+reuseN: one instance serves N requests); a "
              "candidate counts only if no reused request's result differed from a fresh instance's. Core modules only.")
@click.option("--budget-s", type=float, default=60.0, show_default=True, help="Seconds the search may spend (about half screening).")
@click.option("--requests", type=int, default=2000, show_default=True, help="Requests per worker for each screened candidate (confirmation and claim runs: twice that, at least 10,000).")
@click.option("--repeats", type=int, default=3, show_default=True, help="Runs of each finalist and of each knob's default, in rotation (the claim's: at least 5).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search (and of the trace).")
@click.option("--target-release", default=None, help="wasmtime release the Rust snippet is for [default: the installed one].")
@click.option("--plot", "plot_file", type=click.Path(path_type=Path), default=None, help="Write the Pareto plot here (PNG).")
@format_option()
@save_options("advise", "trials.parquet, advice.json and metadata.json")
@takes_scenario
def advise_command(scenario: Scenario, concurrent: int, p99_us: float, rss_budget: int | None, address_space: int | None,  # noqa: PLR0913 - click passes every flag
                   allow_reuse: bool, budget_s: float, target_release: str | None, plot_file: Path | None, fmt: str, out: Path | None,
                   no_save: bool) -> None:
    """The pool and engine settings that meet a p99 target at a concurrency within memory budgets, measured: a search
    over the knobs, the front re-measured, each knob's effect against wasmtime's default, and the settings as code.
    Exit status 1 when nothing meets the goal (one line names the binding constraint)."""
    from tqdm import tqdm

    from wasmlab.errors import Infeasible
    from wasmlab.experiments.advisor.goal import effort_of, goal_of
    from wasmlab.experiments.advisor.record import TrialLog
    from wasmlab.experiments.advisor.search import advise
    from wasmlab.storage import check_writable

    if budget_s <= 0:
        raise ConfigError(f"--budget-s {budget_s:g} is out of range; allowed: a budget > 0")
    goal, effort = goal_of(scenario, concurrent, p99_us, rss_budget, address_space, allow_reuse), effort_of(scenario, budget_s)
    created = out is not None and not out.exists() and not no_save
    if out is not None and not no_save:
        check_writable(out)
    with tqdm(desc="advise: candidates measured", unit="run", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(stage: str, row: dict[str, Any]) -> None:
            bar.set_postfix_str(f"{stage}: p99 {row.get('latency_us_p99') or float('nan'):.1f} µs")
            bar.update(1)
        try:
            advice = advise(goal, effort, progress, target_release=target_release)
        except Infeasible as exc:
            forget(out, created)
            click.echo(f"wasmlab: advise: {exc}", err=True)
            sys.exit(1)
        except Interrupted as stop:
            keep_trials(stop, out, no_save, created)
            raise
    folder = run_folder(out, no_save, "advise", advice.metadata["run_id"])
    if folder is not None:
        TrialLog(goal, effort, advice.metadata, advice.rows, "done").save(folder, advice=advice.to_json())
    if plot_file is not None:
        plot(advice, goal, scenario.measurement.requests, plot_file)
    click.echo(json.dumps(advice.to_json(), indent=2, default=str) if fmt == "json" else advice.render())
    if folder is not None and fmt != "json":
        click.echo(f"Results: {folder}/ (trials.parquet, advice.json, metadata.json)")
    if not advice.feasible:
        click.echo(f"wasmlab: advise: {advice.reason}", err=True)
        sys.exit(1)


def keep_trials(stop: Interrupted, out: Path | None, no_save: bool, created: bool) -> None:
    """On an interrupt: the trials finished so far saved (``--out`` or the default folder), marked partial
    (``stop.kept`` says where), or, with --no-save, the line says how to keep them next time."""
    log: Any = stop.partial
    folder = None if log is None else run_folder(out, no_save, "advise", log.metadata["run_id"])
    if log is not None and folder is not None:
        log.save(folder, interrupted_by=stop.signal_name)
        stop.kept = f"{folder}/"
        return
    forget(out, created)
    if log is not None:
        stop.resume += "; without --no-save the trials measured are kept"


def forget(out: Path | None, created: bool) -> None:
    """The results folder this command made, removed again when nothing went into it."""
    if out is not None and created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def plot(advice: Any, goal: Any, requests: int, plot_file: Path) -> None:
    """The Pareto front of the confirmed candidates, with the recommendation marked, as a PNG."""
    import pandas as pd

    from wasmlab.report import plots

    front = pd.DataFrame(advice.pareto_rows())
    if not front.empty:
        caption = (f"{', '.join(goal.workloads)} at {goal.concurrency} concurrent, {goal.call_path} path; each point one run of "
                   f"{requests:,} (screen) or {advice.confirm_requests:,} (confirm) requests per worker; {advice.metadata.get('cpu_model')}, "
                   f"wasmtime {advice.metadata.get('wasmtime_version')}")
        plots.save(plots.advisor_front(front, goal.p99_us, advice.plot_point(), goal.address_space, caption), plot_file)
