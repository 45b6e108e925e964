"""``wasmlab advise``: the pool and engine settings that meet a p99 target, searched and measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wasmlab.cli.options import CallPaths, Size, format_option, takes_scenario
from wasmlab.errors import ConfigError

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
@click.option("--budget-s", type=float, default=60.0, show_default=True, help="Seconds the search may spend (about half screening).")
@click.option("--requests", type=int, default=2000, show_default=True, help="Requests per worker for each screened candidate.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Runs of each finalist and of each knob's default, in rotation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search (and of the trace).")
@click.option("--target-release", default=None, help="wasmtime release the Rust snippet is for [default: the installed one].")
@click.option("--plot", "plot_file", type=click.Path(path_type=Path), default=None, help="Write the Pareto plot here (PNG).")
@format_option()
@takes_scenario
def advise_command(scenario: Scenario, concurrent: int, p99_us: float, rss_budget: int | None, address_space: int | None,
                   budget_s: float, target_release: str | None, plot_file: Path | None, fmt: str) -> None:
    """The pool and engine settings that meet a p99 target at a concurrency within memory budgets, measured: a search
    over the knobs, the front re-measured, each knob's effect against wasmtime's default, and the settings as code.
    Exit status 1 when nothing meets the goal (one line names the binding constraint)."""
    from tqdm import tqdm

    from wasmlab.errors import Infeasible
    from wasmlab.experiments.advisor.goal import effort_of, goal_of
    from wasmlab.experiments.advisor.search import advise

    if budget_s <= 0:
        raise ConfigError(f"--budget-s {budget_s:g} is out of range; allowed: a budget > 0")
    goal = goal_of(scenario, concurrent, p99_us, rss_budget, address_space)
    with tqdm(desc="advise: candidates measured", unit="run", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(stage: str, row: dict[str, Any]) -> None:
            bar.set_postfix_str(f"{stage}: p99 {row.get('latency_us_p99') or float('nan'):.1f} µs")
            bar.update(1)
        try:
            advice = advise(goal, effort_of(scenario, budget_s), progress, target_release=target_release)
        except Infeasible as exc:
            click.echo(f"wasmlab: advise: {exc}", err=True)
            sys.exit(1)
    if plot_file is not None:
        plot(advice, goal, scenario.measurement.requests, plot_file)
    click.echo(json.dumps(advice.to_json(), indent=2, default=str) if fmt == "json" else advice.render())
    if not advice.feasible:
        click.echo(f"wasmlab: advise: {advice.reason}", err=True)
        sys.exit(1)


def plot(advice: Any, goal: Any, requests: int, plot_file: Path) -> None:
    """The Pareto front of the confirmed candidates, with the recommendation marked, as a PNG."""
    import pandas as pd

    from wasmlab.report import plots

    front = pd.DataFrame(advice.pareto_rows())
    if not front.empty:
        caption = (f"{', '.join(goal.workloads)} at {goal.concurrency} concurrent, {goal.call_path} path; each point one run of "
                   f"{requests} (screen) or {2 * requests} (confirm) requests per worker; {advice.metadata.get('cpu_model')}, "
                   f"wasmtime {advice.metadata.get('wasmtime_version')}")
        plots.save(plots.advisor_front(front, goal.p99_us, advice.plot_point(), goal.address_space, caption), plot_file)
