"""``wasmlab concurrency``: worker threads serving at once, closed loop or at offered rates (open loop)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

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
    takes_scenario,
    workload_options,
)
from wasmlab.errors import ConfigError

if TYPE_CHECKING:
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
@click.option("--p99-bound-us", type=float, default=None, help="With --rate: report the lowest rate whose p99 exceeds this.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the open-loop arrivals.")
@format_option()
@takes_scenario
def concurrency_command(scenario: Scenario, threads: tuple[int, ...], pool_mode: str, call_paths: str,
                        rate: tuple[float, ...] | None, p99_bound_us: float | None, fmt: str) -> None:
    """Worker threads serving requests at once on one engine (shared pool) or one each: throughput, p50/p99, outcomes,
    and the kernel's work (faults, context switches, TLB shootdowns) per thread count; --rate for open-loop load."""
    from tqdm import tqdm

    from wasmlab.experiments.concurrency import saturation
    from wasmlab.experiments.concurrency_load import Load, configurations, run_load
    from wasmlab.measure.scenario import expand_call_paths

    if any(t < 1 for t in threads):
        raise ConfigError(f"--threads {','.join(map(str, threads))!r} is out of range; allowed: integers >= 1")
    paths = expand_call_paths(call_paths)
    if rate and paths != ("native",):
        raise ConfigError("--rate needs --call-path native: a Python loop cannot keep a schedule of microseconds")
    if p99_bound_us is not None and not rate:
        raise ConfigError("--p99-bound-us applies only with --rate")
    load = Load(threads, pool_mode, paths, tuple(rate) if rate else (None,))
    with tqdm(total=len(configurations(scenario, load)) * scenario.repeats, desc="concurrency", unit="run", file=sys.stderr, disable=None,
              leave=False) as bar:
        served = run_load(scenario, load, lambda: bar.update(1))
    bound = saturation(served.summary.to_dict("records"), p99_bound_us) if p99_bound_us is not None else None
    if fmt == "json":
        data = {"results": json.loads(served.summary.to_json(orient="records")), "runs": json.loads(served.runs.to_json(orient="records")),
                "metadata": served.metadata}
        if p99_bound_us is not None:
            data["p99_bound_us"], data["saturation_rps"] = p99_bound_us, bound
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(render(served, bool(rate)))
    if p99_bound_us is not None:
        click.echo(f"Saturation: p99 first exceeds {p99_bound_us:g} µs at {bound:.0f} req/s offered" if bound is not None
                   else f"Saturation: p99 stayed under {p99_bound_us:g} µs at every offered rate")


COLUMNS = {"call_path": "path", "variant": "variant", "threads": "threads", "offered_rps": "offered/s", "throughput_rps": "req/s",
           "latency_us_p50": "p50 µs", "latency_us_p99": "p99 µs", "outcome_ok": "ok", "failed_requests": "failed",
           "minor_faults_per_request": "faults/req", "voluntary_switches_per_request": "vcsw/req",
           "involuntary_switches_per_request": "ivcsw/req", "tlb_shootdowns_per_request": "TLB/req",
           "rss_mib": "RSS MiB", "address_space_mib": "reserved MiB"}


def render(served: Any, open_loop: bool) -> str:
    """The summary as a text table, and how it was measured."""
    summary, metadata = served.summary, served.metadata
    parameters = metadata["parameters"]
    shown = {k: v for k, v in COLUMNS.items() if open_loop or k != "offered_rps"}
    summary["rss_mib"], summary["address_space_mib"] = summary["rss_bytes"] / 2**20, summary["address_space_bytes"] / 2**20
    table = summary[[c for c in shown if c in summary]].rename(columns=shown).to_string(
        index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}")
    pool = ", ".join(f"{k}={v}" for k, v in parameters["pool"].items() if v is not None)
    return (f"{table}\n\nMeasured: {parameters['workload']}, {parameters['requests_per_thread']} requests per worker after "
            f"{parameters['warmup']} warm-up, {parameters['repeats']} runs per configuration in rotation ({metadata['statistic']}); "
            f"pool {parameters['pool_mode']} ({pool}), exhaustion {parameters['exhaustion']}; "
            f"{metadata['cpu_model']}, {metadata['cpu_count']} cores, wasmtime {metadata['wasmtime_version']}; "
            f"TLB shootdowns are machine-wide; RSS is the peak resident memory added while serving, reserved the address space "
            f"the engines and pools added (measured, VmSize), plus one live instance's reservation per worker on demand")
