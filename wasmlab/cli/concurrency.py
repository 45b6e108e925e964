"""``wasmlab concurrency``: worker threads serving at once, closed loop or at offered rates (open loop)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wasmlab.cli.options import (
    POOL_MODES,
    RATES,
    THREAD_COUNTS,
    CallPaths,
    Choice,
    cache_options,
    exhaustion_options,
    format_option,
    measurement_options,
    pool_options,
    run_folder,
    save_options,
    takes_scenario,
    workload_options,
)
from wasmlab.errors import ConfigError, Interrupted, signal_name
from wasmlab.report.concurrency import concurrency_text

if TYPE_CHECKING:
    from wasmlab.experiments.concurrency_load import ServedLoad
    from wasmlab.measure.scenario import Scenario


@click.command("concurrency")
@click.option("--threads", default="1,2", show_default=True, type=THREAD_COUNTS, help="Comma-separated worker counts, e.g. 1,2,4.")
@click.option("--pool-mode", default="shared", show_default=True, type=Choice(POOL_MODES, "pool mode"),
              help="shared (one engine and pool) or per-worker (one each).")
@click.option("--call-path", "call_paths", default="native", show_default=True, type=CallPaths(("native", "lean"), "concurrency"),
              help="native (C, no GIL), lean (Python threads), or both: native,lean.")
@workload_options(multiple=True, workload_help="Workload spec, e.g. seed, dirty-memory:kib=64; several for a multi-tenant host (with --trace).")
@click.option("--trace", default="repeat", show_default=True,
              help="Which workload each request runs: repeat (one workload), uniform, or zipf[:s=1.1].")
@measurement_options((20000, "Requests per worker."), (3, "Runs of each configuration (in rotation)."),
                     (500, "Untimed requests per worker first."))
@pool_options("Pool slots: per worker (per-worker) or in all (shared) [default: the preset's per worker].")
@cache_options()
@exhaustion_options()
@click.option("--rate", default=None, type=RATES, help="Open-loop load (native): comma-separated offered requests/s in all, Poisson arrivals.")
@click.option("--p99-bound-us", type=click.FloatRange(min=0, min_open=True), default=None, help="With --rate: report the lowest rate whose p99 exceeds this.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the open-loop arrivals.")
@save_options("concurrency", "summary.parquet and metadata.json")
@format_option()
@takes_scenario
def concurrency_command(scenario: Scenario, threads: tuple[int, ...], pool_mode: str, call_paths: str,
                        rate: tuple[float, ...] | None, p99_bound_us: float | None, out: Path | None, no_save: bool, fmt: str) -> None:
    """Worker threads serving requests at once on one engine (shared pool) or one each: throughput, p50/p99, outcomes,
    and the kernel's work (faults, context switches, TLB shootdowns) per thread count; --rate for open-loop load."""
    from tqdm import tqdm

    from wasmlab.experiments.concurrency_load import UNIT, Load, configurations, run_load
    from wasmlab.measure.scenario import expand_call_paths
    from wasmlab.storage import check_writable

    if any(t < 1 for t in threads):
        raise ConfigError(f"--threads {','.join(map(str, threads))!r} is out of range; allowed: integers >= 1")
    paths = expand_call_paths(call_paths)
    if rate and paths != ("native",):
        raise ConfigError("--rate needs --call-path native: a Python loop cannot keep a schedule of microseconds")
    if p99_bound_us is not None and not rate:
        raise ConfigError("--p99-bound-us applies only with --rate")
    load = Load(threads, pool_mode, paths, tuple(rate) if rate else (None,))
    created = out is not None and not out.exists() and not no_save
    if out is not None and not no_save:
        check_writable(out)
    planned = len(configurations(scenario, load)) * scenario.repeats
    try:
        with tqdm(total=planned, desc="concurrency", unit="run", file=sys.stderr, disable=None, leave=False) as bar:
            served = run_load(scenario, load, lambda: bar.update(1))
    except KeyboardInterrupt as exc:
        # One that lands before run_load's first run began (while the bar starts, say) has nothing to keep either.
        stop = exc if isinstance(exc, Interrupted) else Interrupted(signal_name(exc), None, 0, planned, UNIT)
        keep_partial(stop, out, no_save, created, lambda kept: show(kept, fmt, p99_bound_us, bool(rate)))
        raise stop from None
    folder = run_folder(out, no_save, "concurrency", served.metadata["run_id"])
    if folder is not None:
        served.save(folder)
    show(served, fmt, p99_bound_us, bool(rate))
    if folder is not None and fmt != "json":
        click.echo(f"Results: {folder}/ (summary.parquet, metadata.json)")


def keep_partial(stop: Interrupted, out: Path | None, no_save: bool, created: bool, show_kept: Callable[[ServedLoad], None]) -> None:
    """On an interrupt: the finished runs saved (``--out`` or the default folder) marked partial (``stop.kept`` says
    where), or, with --no-save, their table printed before the interrupt's line; with none finished, nothing is written."""
    kept: ServedLoad | None = stop.partial
    if kept is None:
        if out is not None and created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        return
    folder = run_folder(out, no_save, "concurrency", kept.metadata["run_id"])
    if folder is not None:
        stop.kept = f"{kept.save(folder)}/"
    else:
        show_kept(kept)
        stop.resume = " (their table is above; without --no-save they are kept)"


def show(served: ServedLoad, fmt: str, p99_bound_us: float | None, open_loop: bool) -> None:
    """The runs' table (or JSON), and the saturation rate when a p99 bound was given."""
    from wasmlab.experiments.concurrency import saturation

    bound = saturation(served.summary.to_dict("records"), p99_bound_us) if p99_bound_us is not None else None
    if fmt == "json":
        data = {"results": json.loads(served.summary.to_json(orient="records")), "runs": json.loads(served.runs.to_json(orient="records")),
                "metadata": served.metadata}
        if p99_bound_us is not None:
            data["p99_bound_us"], data["saturation_rps"] = p99_bound_us, bound
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(concurrency_text(served, open_loop))
    if p99_bound_us is not None:
        click.echo(f"Saturation: p99 first exceeds {p99_bound_us:g} µs at {bound:.0f} req/s offered" if bound is not None
                   else f"Saturation: p99 stayed under {p99_bound_us:g} µs at every offered rate")
