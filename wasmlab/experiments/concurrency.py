"""Notebook 06: worker threads serving requests at once, with shared or per-worker pools and caches:
throughput, tail latency and outcomes."""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import wasmtime

from wasmlab.config import WASMTIME_DEFAULT_RESERVATION, CacheConfig, EngineConfig, Limits, PoolConfig
from wasmlab.errors import ConfigError, allowed
from wasmlab.host.cache import LockedModuleCache
from wasmlab.host.engine import DEFAULT_GUARD, build_engine
from wasmlab.host.modules import Compiled
from wasmlab.host.outcomes import REQUEST_FAILURES, classify
from wasmlab.host.runtime import Runtime
from wasmlab.host.variant import engine_config_for, parse_variant
from wasmlab.measure import footprint, kernel
from wasmlab.measure.calibrate import timed_loop
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.stats import describe_ns
from wasmlab.measure.traces import make_trace
from wasmlab.workloads import load_workload

POOL_MODES = ("shared", "per-worker")
PAGE = 4096  # bytes per page fault
CALL_PATHS = ("lean", "native")
CACHE_MODES = ("shared", "per-worker")


def concurrency(
    threads: int,
    pool_mode: str = "shared",
    cache_mode: str = "shared",
    requests_per_thread: int = 500,
    slots_per_worker: int = 20,
    workload: str | Sequence[str] = "seed",
    variant: str = "pooled+cached",
    warmup: int = 50,
    pool_slots: int | None = None,
    exhaustion: str = "fail",
    wait_timeout_ms: float = 100.0,
    call_path: str = "lean",
    engine: EngineConfig | None = None,
    cache: CacheConfig | None = None,
    rate: float | None = None,
    seed: int = 0,
    trace: str = "repeat",
    zipf_s: float = 1.1,
) -> dict[str, Any]:
    """``threads`` workers serving requests at once: throughput, tail latency, outcomes and what the kernel did.

    ``pool_slots`` sizes a shared pool explicitly (default ``slots_per_worker * threads``); with
    fewer slots than threads, requests find the pool exhausted and ``exhaustion`` decides: ``fail``
    counts them as ``pool_exhausted``, ``wait`` retries until a slot frees (at most
    ``wait_timeout_ms``) and the time spent waiting is reported.  ``engine`` is the base engine
    configuration (pool knobs such as ``linear_memory_keep_resident``, memory layout); the slot counts
    above override its pool's ``slots``; ``cache`` the compiled-module cache (default LRU of 16).

    ``call_path`` ``lean``: Python threads; the GIL is held between wasmtime's C calls, so workers
    overlap only inside them.  ``native``: each worker's requests run in C with the GIL released, so
    workers really run at once; its cache is per worker (the C driver's own), so ``cache_mode`` must
    be ``per-worker``.  ``rate`` (native only): open-loop load of that many requests per second in
    total, split evenly over the workers, Poisson arrivals seeded with ``seed``; each request's latency
    counts from when it was due, so queueing shows (no coordinated omission).

    Several ``workload`` specs make a multi-tenant host: each worker's requests pick one by ``trace``
    (``uniform`` or ``zipf`` with exponent ``zipf_s``, seeded per worker), so the cache's capacity matters.

    Memory is measured, not computed: ``address_space_bytes`` is what building the engines, pools and
    runtimes added to ``VmSize`` (a pool reserves every slot then), plus, for the on-demand allocator, the
    reservation of one live instance per worker (wasmtime maps it per instantiation: memory reservation and
    guard); ``rss_bytes`` is the peak resident memory while serving above the process before (``VmHWM``,
    reset first), ``rss_held_bytes`` what stays resident after the block (keep-resident pages, warm slots).

    Each worker has its own stores (a ``Store`` must not be used from two threads).  A pool is a
    property of an engine, and a compiled module belongs to one engine, so per-worker pools
    rule out a shared cache.
    """
    if pool_mode not in POOL_MODES:
        raise allowed(pool_mode, "pool mode", POOL_MODES)
    if cache_mode not in CACHE_MODES:
        raise allowed(cache_mode, "cache mode", CACHE_MODES)
    if call_path not in CALL_PATHS:
        raise allowed(call_path, "call path for concurrency", CALL_PATHS)
    if pool_mode == "per-worker" and cache_mode == "shared":
        raise ConfigError("pool mode 'per-worker' with cache mode 'shared' is not possible: a compiled module belongs to one engine, "
                          "and each per-worker pool is its own engine; allowed: shared/shared, shared/per-worker, per-worker/per-worker")
    if call_path == "native" and cache_mode == "shared":
        raise ConfigError("cache mode 'shared' with call path 'native' is not possible: the native driver's cache is its own, one per "
                          "worker; allowed: per-worker")
    if rate is not None and call_path != "native":
        raise ConfigError(f"rate = {rate} needs call path 'native': a Python loop cannot keep a schedule of microseconds")
    if rate is not None and not rate > 0:
        raise ConfigError(f"rate = {rate} is out of range; allowed: requests per second > 0")
    if threads < 1:
        raise ConfigError(f"threads = {threads} is out of range; allowed: an integer >= 1")
    specs = [workload] if isinstance(workload, str) else list(workload)
    if not specs:
        raise ConfigError("no workload given; allowed: one or more workload specs")
    wls = [load_workload(spec) for spec in specs]
    if trace == "repeat" and len(wls) > 1:
        raise ConfigError(f"{len(wls)} workloads need a trace that picks among them; allowed: uniform, zipf")
    # Each worker's sequence of workloads (indices), seeded per worker so workers do not run in lockstep.
    sequences = [list(make_trace(trace, requests_per_thread, len(wls), seed + i, zipf_s).indices) for i in range(threads)]
    warm_indices = [k % len(wls) for k in range(max(warmup, len(wls) if warmup else 0))]
    parsed = parse_variant(variant)
    base = engine or EngineConfig()
    limits = Limits(exhaustion=exhaustion, wait_timeout_ms=wait_timeout_ms)

    def engine_config(slots: int) -> EngineConfig:
        return engine_config_for(parsed, base.replace(pool=base.pool.replace(slots=slots)), limits)

    shared_slots = pool_slots if pool_slots is not None else slots_per_worker * threads
    settle_process()
    footprint.reset_peak()
    before = footprint.now()
    shared_engine = build_engine(engine_config(shared_slots)) if pool_mode == "shared" else None
    cache_config = cache or CacheConfig()
    shared_cache: LockedModuleCache[Compiled] | None = LockedModuleCache(cache_config) if cache_mode == "shared" else None
    runtimes = []
    for _ in range(threads):
        config = engine_config(slots_per_worker)
        engine_object = shared_engine or build_engine(config)
        runtimes.append(Runtime(parsed, engine_object, cache_config, wls, call_path, shared_cache=shared_cache, limits=limits,
                                memory_limit=(engine_config(shared_slots) if shared_engine else config).pool.max_memory_size))
    built = footprint.now()
    samples = [[0] * requests_per_thread for _ in range(threads)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(threads)]
    failed: list[set[int]] = [set() for _ in range(threads)]
    rng = np.random.default_rng(seed)
    # Open loop: each worker's requests are due at the cumulative sum of exponential gaps (Poisson arrivals).
    schedules = ([np.cumsum(rng.exponential(1e9 * threads / rate, requests_per_thread)).astype(np.int64) for _ in range(threads)]
                 if rate is not None else [None] * threads)
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        runtime, out, counts = runtimes[i], samples[i], outcomes[i]
        handle, block = runtime.handle, runtime.block
        indices = sequences[i]
        try:
            if block is not None:
                block(warm_indices, [0] * len(warm_indices), [])
            else:
                for k in warm_indices:
                    try:
                        handle(k)
                    except REQUEST_FAILURES:
                        pass
            barrier.wait()
            failures: list[tuple[int, BaseException]] = []
            if block is not None:
                block(indices, out, failures, *([schedules[i]] if schedules[i] is not None else []))
            else:
                timed_loop(handle, indices, out, failures)
            counts.update(classify(exc, runtime.memory_limit) for _, exc in failures)
            counts["ok"] += requests_per_thread - len(failures)
            failed[i] = {k for k, _ in failures}
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    gc.disable()
    try:
        barrier.wait()
        counted = kernel.counts()
        start = time.perf_counter_ns()
        for t in workers:
            t.join()
        wall = time.perf_counter_ns() - start
        spent = kernel.counts() - counted
        served_footprint = footprint.now()
    except threading.BrokenBarrierError:
        for t in workers:
            t.join()
        raise (errors[0] if errors else RuntimeError("a worker failed before starting")) from None
    finally:
        gc.enable()
        # (not a loop here: its variable would keep the last runtime, and so its engine, alive below)
        close_all(runtimes)
    if errors:
        raise errors[0]
    # What the engines, pools and caches held shows when they are gone: drop them and look again, before anything
    # else is allocated here (the sample arrays below would hide the pages the pool gave back).
    late = [lag for r in runtimes if r.block is not None for lag in getattr(r.block, "lateness", [])]
    pool_waits, pool_wait_ns = sum(r.pool_waits for r in runtimes), sum(r.pool_wait_ns for r in runtimes)
    cache_misses = sum(r.cache.stats.misses for r in runtimes) if shared_cache is None else shared_cache.stats.misses
    pooled_config = engine_config(shared_slots)
    runtimes.clear()
    shared_engine = shared_cache = None
    del engine_object
    gc.collect()
    released = footprint.now()
    # Throughput and latency count served requests only; failures are reported beside them with their own latency.
    served = np.asarray([ns for t in range(threads) for k, ns in enumerate(samples[t]) if k not in failed[t]], dtype=np.int64)
    refused = np.asarray([ns for t in range(threads) for k, ns in enumerate(samples[t]) if k in failed[t]], dtype=np.int64)
    total = sum(outcomes, Counter())
    lateness = np.concatenate(late) if late and rate is not None else np.zeros(0, dtype=np.int64)
    result = {
        "threads": threads,
        "call_path": call_path,
        "pool_mode": pool_mode,
        "cache_mode": cache_mode,
        "pool_slots": shared_slots if pool_mode == "shared" else slots_per_worker,
        "exhaustion": exhaustion,
        "outcome_ok": total.get("ok", 0),
        "outcome_pool_exhausted": total.get("pool_exhausted", 0),
        **{f"outcome_{kind}": n for kind, n in total.items() if kind not in ("ok", "pool_exhausted")},
        "pool_waits": pool_waits,
        "pool_wait_ms": pool_wait_ns / 1e6,
        "variant": parsed.name,
        "workload": ",".join(w.name for w in wls),
        "trace": trace,
        "requests": threads * requests_per_thread,
        "served_requests": int(served.size),
        "failed_requests": int(refused.size),
        "throughput_rps": served.size / (wall / 1e9),
        "offered_rps": rate if rate is not None else threads * requests_per_thread / (wall / 1e9),
        "open_loop": rate is not None,
        "generator_lateness_us_p99": float(np.percentile(lateness, 99)) / 1000 if lateness.size else float("nan"),
        "wall_ms": wall / 1e6,
        **(describe_ns(served) if served.size else {}),
        "failed_latency_us_p50": float(np.median(refused)) / 1000 if refused.size else float("nan"),
        "cache_misses": cache_misses,
        **spent.per_request(threads * requests_per_thread),
        "keep_resident_bytes": base.pool.linear_memory_keep_resident or 0,
    }
    result.update(memory_footprint(before, built, served_footprint, released, pooled_config, threads,
                                   spent.per_request(threads * requests_per_thread)["minor_faults_per_request"]))
    return result


_SETTLED: list[bool] = []


def settle_process() -> None:
    """Pay the process's one-time costs before the first footprint: wasmtime's first parallel compilation starts its
    compile threads, whose stacks and malloc arenas add ~130 MiB of address space once per process, whatever the pool."""
    if not _SETTLED:
        wasmtime.Module(wasmtime.Engine(), load_workload("compile-heavy:functions=8").wasm)
        _SETTLED.append(True)


def close_all(runtimes: Iterable[Runtime]) -> None:
    for runtime in runtimes:
        runtime.close()


def from_scenario(threads: int, scenario: Scenario, variant: str, workloads: Sequence[str] | None = None, pool_mode: str = "shared",
                  call_path: str = "native", requests_per_thread: int = 500, warmup: int = 50, rate: float | None = None,
                  seed: int = 0, trace: str = "repeat", zipf_s: float = 1.1) -> dict[str, Any]:
    """:func:`concurrency` with the engine, pool, cache and exhaustion policy of ``scenario`` (a preset and single knobs,
    as ``wasmlab concurrency`` and ``wasmlab reproduce`` take them): its ``slots`` are per worker (per-worker pools) or
    in all (a shared pool), else the preset's per worker; the native path's caches are per worker."""
    engine_config, cache_config, limits = scenario.engine_config(), scenario.cache_config(), scenario.limits_config()
    per_worker = scenario.slots if scenario.slots is not None and pool_mode == "per-worker" else engine_config.pool.slots
    return concurrency(threads, pool_mode, "per-worker" if call_path == "native" or pool_mode == "per-worker" else "shared",
                       requests_per_thread=requests_per_thread, slots_per_worker=per_worker,
                       workload=list(workloads) if workloads else scenario.workload, variant=variant, warmup=warmup,
                       pool_slots=scenario.slots if pool_mode == "shared" else None, exhaustion=limits.exhaustion,
                       wait_timeout_ms=limits.wait_timeout_ms, call_path=call_path, engine=engine_config, cache=cache_config,
                       rate=rate, seed=seed, trace=trace, zipf_s=zipf_s)


@dataclass(frozen=True)
class Load:
    """What ``wasmlab concurrency`` varies on top of a Scenario: worker counts, pool sharing, call paths, offered rates
    (``None``: closed loop), and the workloads of a multi-tenant host (empty: the scenario's one)."""

    threads: tuple[int, ...] = (1, 2)
    pool_mode: str = "shared"
    call_paths: tuple[str, ...] = ("native",)
    rates: tuple[float | None, ...] = (None,)
    workloads: tuple[str, ...] = ()


def configurations(scenario: Scenario, load: Load) -> list[tuple[str, str, int, float | None]]:
    """(call path, variant, threads, offered rate) of every run of one repetition."""
    from wasmlab.host.variant import parse_variant

    names = [parse_variant(v).name for v in scenario.variants]
    return list(itertools.product(load.call_paths, names, load.threads, load.rates))


@dataclass
class ServedLoad:
    """Every run (one row per configuration and repetition), their medians per configuration, and the run's metadata."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    metadata: dict[str, Any]


def run_load(scenario: Scenario, load: Load, progress: Callable[[], None] | None = None) -> ServedLoad:
    """Every variant of ``scenario`` under every configuration of ``load``, ``scenario.repeats`` times in rotation
    (so that drift of the machine does not line up with one configuration); requests and warm-up are per worker."""
    from wasmlab.host.variant import parse_variant
    from wasmlab.measure import metadata as md

    names = [parse_variant(v).name for v in scenario.variants]
    every = configurations(scenario, load)
    rows = []
    run = md.new_run()
    for repetition in range(scenario.repeats):
        shift = repetition % len(every)
        for path, name, count, rate in every[shift:] + every[:shift]:
            result = from_scenario(count, scenario, name, load.workloads or None, load.pool_mode, path,
                                   requests_per_thread=scenario.requests, warmup=scenario.warmup, rate=rate,
                                   seed=scenario.seed + repetition, trace=scenario.trace, zipf_s=scenario.zipf_s)
            rows.append({**result, "repetition": repetition})
            if progress is not None:
                progress()
    runs = pd.DataFrame(rows)
    open_loop = load.rates != (None,)
    metadata = {**run, **md.machine(), "parameters": load_parameters(scenario, load, names),
                "statistic": f"median over {scenario.repeats} runs of each configuration (min and max beside throughput and p99)"}
    return ServedLoad(runs, medians(runs, open_loop), metadata)


def load_parameters(scenario: Scenario, load: Load, names: list[str]) -> dict[str, Any]:
    trace = f"zipf:s={scenario.zipf_s:g}" if scenario.trace == "zipf" and scenario.zipf_s != 1.1 else scenario.trace
    return {"threads": list(load.threads), "pool_mode": load.pool_mode, "call_paths": list(load.call_paths),
            "workload": ",".join(load.workloads or (scenario.workload,)), "trace": trace, "variants": names,
            "requests_per_thread": scenario.requests, "warmup": scenario.warmup, "repeats": scenario.repeats,
            "preset": scenario.preset or "none", "pool": scenario.engine_config().pool.to_dict(),
            "exhaustion": scenario.limits_config().exhaustion, "rates": list(load.rates), "seed": scenario.seed}


def medians(runs: pd.DataFrame, open_loop: bool) -> pd.DataFrame:
    """The median of each numeric column per configuration, with min and max beside throughput and p99."""
    keys = ["call_path", "variant", "threads", "offered_rps"] if open_loop else ["call_path", "variant", "threads"]
    numeric = [c for c in runs.columns if c not in keys and c != "repetition" and pd.api.types.is_numeric_dtype(runs[c])]
    summary = runs.groupby(keys, sort=False)[numeric].median().reset_index()
    for column in ("throughput_rps", "latency_us_p99"):
        spread = runs.groupby(keys, sort=False)[column].agg(["min", "max"]).reset_index(drop=True)
        summary[f"{column}_min"], summary[f"{column}_max"] = spread["min"], spread["max"]
    return summary


def memory_footprint(before: footprint.Footprint, built: footprint.Footprint, served: footprint.Footprint,
                     released: footprint.Footprint, config: EngineConfig, live_instances: int,
                     faults_per_request: float) -> dict[str, Any]:
    """Reserved address space and resident memory of a configuration, as result columns (see :func:`concurrency`)."""
    reserved = max(built.address_space - before.address_space, 0)
    method = "measured: VmSize added by building the engines, pools and runtimes"
    if not config.pooled:
        # On demand, wasmtime maps each instance's memory reservation and guard when it instantiates.
        per_instance = ((config.memory_reservation if config.memory_reservation is not None else WASMTIME_DEFAULT_RESERVATION)
                        + (config.memory_guard_size if config.memory_guard_size is not None else DEFAULT_GUARD))
        reserved += live_instances * per_instance
        method += f", plus {live_instances} live instance(s) x {per_instance} B (memory reservation + guard, mapped per instance)"
    held = max(served.resident - released.resident, 0)
    in_flight = int(live_instances * faults_per_request * PAGE)
    return {
        "address_space_bytes": reserved,
        "address_space_method": method,
        "rss_bytes": held + in_flight,
        "rss_held_bytes": held,
        "rss_in_flight_bytes": in_flight,
        "rss_peak_bytes": max(served.peak_resident - before.resident, 0),
        "rss_method": "resident memory the engines, pools and caches held after serving (VmRSS, less what remained once they "
                      "were dropped), plus the pages each worker's in-flight request faults in (faults per request x 4 KiB x "
                      "workers); rss_peak_bytes is VmHWM over the run, the lab's own sample buffers included",
    }


def path_grid(threads_list: Iterable[int], modes: Iterable[str], call_paths: Iterable[str], keep_resident: Iterable[int],
              requests_per_thread: int, slots_per_worker: int, workload: str, variant: str, repeats: int = 1) -> Iterator[dict[str, Any]]:
    """Closed-loop runs over threads x sharing mode x call path x keep-resident (linear memory and tables alike),
    in rotation over ``repeats``; the native path has per-worker caches only, so its shared-cache modes run with
    per-worker caches (and say so in ``cache_mode``)."""
    configurations = [(t, pool_mode, cache_mode, path, keep) for t in threads_list for pool_mode, cache_mode in sharing_modes(modes)
                      for path in call_paths for keep in keep_resident]
    for repetition in range(repeats):
        shift = repetition % len(configurations)
        for threads, pool_mode, cache_mode, path, keep in configurations[shift:] + configurations[:shift]:
            engine = EngineConfig(pool=PoolConfig(linear_memory_keep_resident=keep or None, table_keep_resident=keep or None))
            yield {**concurrency(threads, pool_mode, "per-worker" if path == "native" else cache_mode,
                                 requests_per_thread=requests_per_thread, slots_per_worker=slots_per_worker, workload=workload,
                                 variant=variant, call_path=path, engine=engine), "repetition": repetition}


def open_loop(rates: Iterable[float], threads: int, requests_per_thread: int, slots_per_worker: int, workload: str,
              variants: Iterable[str], seed: int = 0) -> Iterator[dict[str, Any]]:
    """Open-loop runs on the native path, per variant and offered rate (requests per second in all)."""
    for name in variants:
        for rate in rates:
            yield concurrency(threads, "per-worker", "per-worker", requests_per_thread=requests_per_thread,
                              slots_per_worker=slots_per_worker, workload=workload, variant=name, call_path="native", rate=rate, seed=seed)


def saturation(results: Iterable[Mapping[str, Any]], p99_bound_us: float) -> float | None:
    """The lowest offered rate whose p99 latency exceeds ``p99_bound_us`` (``None`` if none does)."""
    over = [float(r["offered_rps"]) for r in results if float(r.get("latency_us_p99", float("nan"))) > p99_bound_us]
    return min(over) if over else None


def sharing_modes(modes: Iterable[str]) -> list[tuple[str, str]]:
    """``"pool/cache"`` mode strings (e.g. ``"shared/per-worker"``) as (pool mode, cache mode) pairs, validated."""
    pairs = []
    for mode in modes:
        pool_mode, slash, cache_mode = mode.partition("/")
        if not slash or pool_mode not in POOL_MODES or cache_mode not in CACHE_MODES:
            raise allowed(mode, "pool/cache mode", [f"{p}/{c}" for p in POOL_MODES for c in CACHE_MODES])
        pairs.append((pool_mode, cache_mode))
    return pairs
