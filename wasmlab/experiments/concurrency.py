"""Notebook 06: worker threads serving requests at once, with shared or per-worker pools and caches:
throughput, tail latency and outcomes."""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import wasmtime

from wasmlab.config import WASMTIME_DEFAULT_RESERVATION, CacheConfig, EngineConfig, Limits, check_threads
from wasmlab.errors import ConfigError, allowed
from wasmlab.experiments.concurrency_serve import Served, serve, throughput_rps
from wasmlab.host.cache import LockedModuleCache
from wasmlab.host.engine import DEFAULT_GUARD, build_engine
from wasmlab.host.modules import Compiled
from wasmlab.host.pool_sizing import sized_for
from wasmlab.host.runtime import Runtime
from wasmlab.host.variant import Variant, engine_config_for, parse_variant
from wasmlab.measure import footprint
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.stats import describe_ns
from wasmlab.measure.traces import make_trace
from wasmlab.measure.warmup import fixed_warmup
from wasmlab.workloads import Workload, load_workload

POOL_MODES = ("shared", "per-worker")
PAGE = 4096  # bytes per page fault
CALL_PATHS = ("lean", "native")
CACHE_MODES = ("shared", "per-worker")


def concurrency(scenario: Scenario, threads: int, pool_mode: str = "shared", call_path: str = "lean", rate: float | None = None,
                cache_mode: str | None = None, variant: str | None = None) -> dict[str, Any]:
    """``threads`` workers serving ``scenario``'s requests at once: throughput, tail latency, outcomes and what the kernel did.

    The scenario says the workload (several in ``tenants`` make a multi-tenant host: each worker's requests pick one by
    its ``trace``, seeded per worker, so the cache's capacity matters), the variant (``variant``, else its first), the
    engine, pool, cache and limits (a preset and single knobs), and ``requests`` and ``warmup`` per worker.  Its
    ``slots`` count a shared pool in all (default: the preset's per worker, times ``threads``) or each per-worker pool;
    with fewer slots than threads, requests find the pool exhausted and its ``exhaustion`` decides: ``fail`` counts
    them as ``pool_exhausted``, ``wait`` retries until a slot frees (at most ``wait_timeout_ms``) and the time spent
    waiting is reported.

    ``call_path`` ``lean``: Python threads; the GIL is held between wasmtime's C calls, so workers overlap only inside
    them.  ``native``: each worker's requests run in C with the GIL released, so workers really run at once; its
    cache is per worker (the C driver's own).  ``cache_mode`` defaults to ``per-worker`` for the native path and
    per-worker pools, else ``shared``.  ``rate`` (native only): open-loop load of that many requests per second in
    total, split evenly over the workers, Poisson arrivals seeded with the scenario's ``seed``; each request's
    latency counts from when it was due, so queueing shows (no coordinated omission).

    Memory is measured, not computed: ``address_space_bytes`` is what building the engines, pools and runtimes added
    to ``VmSize`` (a pool reserves every slot then), plus, for the on-demand allocator, the reservation of one live
    instance per worker (wasmtime maps it per instantiation: memory reservation and guard); ``rss_bytes`` is the
    peak resident memory while serving above the process before (``VmHWM``, reset first), ``rss_held_bytes`` what
    stays resident after the block (keep-resident pages, warm slots).

    Each worker has its own stores (a ``Store`` must not be used from two threads).  A pool is a property of an
    engine, and a compiled module belongs to one engine, so per-worker pools rule out a shared cache.
    """
    cache_mode = cache_mode or ("per-worker" if call_path == "native" or pool_mode == "per-worker" else "shared")
    check_modes(threads, pool_mode, cache_mode, call_path, rate)
    plan = Plan.of(scenario, threads, pool_mode, cache_mode, call_path, rate, variant)
    settle_process()
    footprint.reset_peak()
    before = footprint.now()
    built = build(plan)
    after_build = footprint.now()
    served = serve(plan, built.runtimes)
    counters = {"late": [lag for r in built.runtimes if r.block is not None for lag in getattr(r.block, "lateness", [])],
                "pool_waits": sum(r.pool_waits for r in built.runtimes), "pool_wait_ns": sum(r.pool_wait_ns for r in built.runtimes),
                "cache_misses": (sum(r.cache.stats.misses for r in built.runtimes) if built.shared_cache is None
                                 else built.shared_cache.stats.misses),
                "reuse": [r.parts.ledger.take() for r in built.runtimes if r.parts.ledger is not None]}
    # What the engines, pools and caches held shows when they are gone: drop them and look again, before anything
    # else is allocated here (the sample arrays below would hide the pages the pool gave back).
    built.runtimes.clear()
    built.shared_cache = None
    gc.collect()
    released = footprint.now()
    result = result_row(plan, served, counters)
    result.update(memory_footprint(before, after_build, served.footprint, released, plan.engine_config(plan.shared_slots), threads,
                                   result["minor_faults_per_request"]))
    return result


def check_modes(threads: int, pool_mode: str, cache_mode: str, call_path: str, rate: float | None) -> None:
    """One line for a combination the host cannot have."""
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
    check_rate(rate)
    check_threads(threads)


def check_rate(rate: float | None) -> None:
    """One line for an offered rate that is not a finite number of requests per second above 0 (nan and inf included)."""
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"rate = {rate} is out of range; allowed: a finite number of requests per second > 0")


@dataclass(frozen=True)
class Plan:
    """One concurrency run, resolved: who serves what, on which engines, in what order."""

    threads: int
    pool_mode: str
    cache_mode: str
    call_path: str
    rate: float | None
    variant: Variant
    workloads: list[Workload]
    trace: str
    sequences: list[list[int]]  # each worker's workloads (indices), seeded per worker so workers do not run in lockstep
    warm_indices: list[int]
    base: EngineConfig
    cache: CacheConfig
    limits: Limits
    per_worker_slots: int
    shared_slots: int
    requests: int  # per worker
    seed: int

    @classmethod
    def of(cls, scenario: Scenario, threads: int, pool_mode: str, cache_mode: str, call_path: str, rate: float | None,
           variant: str | None) -> Plan:
        chosen = scenario.workload
        workloads = [load_workload(spec) for spec in chosen.specs()]
        if chosen.trace == "repeat" and len(workloads) > 1:
            raise ConfigError(f"{len(workloads)} workloads need a trace that picks among them; allowed: uniform, zipf")
        m, base = scenario.measurement, scenario.engine_config()
        sequences = [list(make_trace(chosen.trace, m.requests, len(workloads), chosen.seed + i, chosen.zipf_s).indices)
                     for i in range(threads)]
        count = fixed_warmup(m.warmup, "the concurrency experiment (a fixed warm-up per worker)")
        warm = [k % len(workloads) for k in range(max(count, len(workloads) if count else 0))]
        slots = scenario.pool.slots
        per_worker = slots if slots is not None and pool_mode == "per-worker" else base.pool.slots
        shared = slots if slots is not None and pool_mode == "shared" else per_worker * threads
        return cls(threads, pool_mode, cache_mode, call_path, rate, parse_variant(variant or scenario.variants[0]), workloads,
                   chosen.trace, sequences, warm, base, scenario.cache_config(), scenario.limits_config(), per_worker, shared,
                   m.requests, chosen.seed)

    def engine_config(self, slots: int) -> EngineConfig:
        """The variant's engine with ``slots`` slots, its pool sized for the components served (as ``reproduce``'s)."""
        return sized_for(engine_config_for(self.variant, self.base.replace(pool=self.base.pool.replace(slots=slots)), self.limits),
                         self.workloads)


@dataclass
class Built:
    """The workers' runtimes, and the cache they share (if they do); dropped to measure what they held."""

    runtimes: list[Runtime]
    shared_cache: LockedModuleCache[Compiled] | None


def build(plan: Plan) -> Built:
    """One runtime per worker, on one shared engine (and pool) or one engine each."""
    shared_config = plan.engine_config(plan.shared_slots)
    shared_engine = build_engine(shared_config) if plan.pool_mode == "shared" else None
    shared_cache = LockedModuleCache[Compiled](plan.cache) if plan.cache_mode == "shared" else None
    runtimes = []
    for _ in range(plan.threads):
        config = plan.engine_config(plan.per_worker_slots)
        engine = shared_engine or build_engine(config)
        runtimes.append(Runtime(plan.variant, engine, plan.cache, plan.workloads, plan.call_path, shared_cache=shared_cache,
                                limits=plan.limits, memory_limit=(shared_config if shared_engine else config).pool.max_memory_size))
    return Built(runtimes, shared_cache)


def result_row(plan: Plan, served: Served, counters: dict[str, Any]) -> dict[str, Any]:
    """The run as one row: outcomes, throughput and latency of the served requests (failures beside them), the kernel's counts."""
    threads, requests, rate = plan.threads, plan.requests, plan.rate
    ok_ns = np.asarray([ns for t in range(threads) for k, ns in enumerate(served.samples[t]) if k not in served.failed[t]], dtype=np.int64)
    refused = np.asarray([ns for t in range(threads) for k, ns in enumerate(served.samples[t]) if k in served.failed[t]], dtype=np.int64)
    late = counters["late"]
    lateness = np.concatenate(late) if late and rate is not None else np.zeros(0, dtype=np.int64)
    total, wall = served.outcomes, served.wall_ns
    return {
        "threads": threads,
        "call_path": plan.call_path,
        "pool_mode": plan.pool_mode,
        "cache_mode": plan.cache_mode,
        "pool_slots": plan.shared_slots if plan.pool_mode == "shared" else plan.per_worker_slots,
        "exhaustion": plan.limits.exhaustion,
        "outcome_ok": total.get("ok", 0),
        "outcome_pool_exhausted": total.get("pool_exhausted", 0),
        **{f"outcome_{kind}": n for kind, n in total.items() if kind not in ("ok", "pool_exhausted")},
        "pool_waits": counters["pool_waits"],
        "pool_wait_ms": counters["pool_wait_ns"] / 1e6,
        "variant": plan.variant.name,
        "workload": ",".join(w.name for w in plan.workloads),
        "trace": plan.trace,
        "requests": threads * requests,
        "served_requests": int(ok_ns.size),
        "failed_requests": int(refused.size),
        "throughput_rps": throughput_rps(int(ok_ns.size), served.spans),
        "offered_rps": rate if rate is not None else threads * requests / (wall / 1e9),
        "open_loop": rate is not None,
        "generator_lateness_us_p99": float(np.percentile(lateness, 99)) / 1000 if lateness.size else float("nan"),
        "wall_ms": wall / 1e6,
        # No request served (a guest that always traps): the latency columns are there, empty, for the table.
        **(describe_ns(ok_ns) if ok_ns.size else dict.fromkeys(describe_ns(np.zeros(1, dtype=np.int64)), float("nan"))),
        "failed_latency_us_p50": float(np.median(refused)) / 1000 if refused.size else float("nan"),
        "cache_misses": counters["cache_misses"],
        **served.kernel.per_request(threads * requests),
        "keep_resident_bytes": plan.base.pool.linear_memory_keep_resident or 0,
        # Instance reuse (+reuseN): the workers' reused requests and those whose results carried state over.
        **({"reused_requests": sum(fresh.count(False) for fresh, _ in counters["reuse"]),
            "carried_over_requests": sum(carried.count(True) for _, carried in counters["reuse"])} if counters["reuse"] else {}),
    }


_SETTLED: list[bool] = []


def settle_process() -> None:
    """Pay the process's one-time costs before the first footprint: wasmtime's first parallel compilation starts its
    compile threads, whose stacks and malloc arenas add ~130 MiB of address space once per process, whatever the pool."""
    if not _SETTLED:
        wasmtime.Module(wasmtime.Engine(), load_workload("compile-heavy:functions=8").wasm)
        _SETTLED.append(True)


def from_scenario(threads: int, scenario: Scenario, variant: str, workloads: Sequence[str] | None = None, pool_mode: str = "shared",  # noqa: PLR0913 - the advisor's trial entry point: its arguments cross a process boundary as plain values
                  call_path: str = "native", requests_per_thread: int = 500, warmup: int = 50, rate: float | None = None,
                  seed: int = 0, trace: str = "repeat", zipf_s: float = 1.1) -> dict[str, Any]:
    """:func:`concurrency` with the workloads, trace and counts per worker given beside ``scenario`` (the advisor's trials)."""
    chosen = dataclasses.replace(scenario.workload, tenants=tuple(workloads or ()), trace=trace, zipf_s=zipf_s, seed=seed)
    counts = dataclasses.replace(scenario.measurement, requests=requests_per_thread, warmup=warmup)
    return concurrency(dataclasses.replace(scenario, workload=chosen, measurement=counts), threads, pool_mode, call_path, rate,
                       variant=variant)


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


def notebook_scenario(workload: str, variant: str, requests_per_thread: int, slots_per_worker: int, keep_resident: int = 0,
                      seed: int = 0) -> Scenario:
    """The scenario notebook 06 serves: wasmlab's defaults (no preset), the slots per worker, keep-resident pages
    (linear memory and tables alike) and 50 warm-up requests per worker."""
    keep = {"linear_memory_keep_resident": keep_resident, "table_keep_resident": keep_resident} if keep_resident else {}
    return Scenario(workload=workload, variants=(variant,), preset=None, pool={"slots": slots_per_worker, **keep},
                    requests=requests_per_thread, warmup=50, seed=seed)


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
            scenario = notebook_scenario(workload, variant, requests_per_thread, slots_per_worker, keep)
            yield {**concurrency(scenario, threads, pool_mode, path, cache_mode="per-worker" if path == "native" else cache_mode),
                   "repetition": repetition}


def open_loop(rates: Iterable[float], threads: int, requests_per_thread: int, slots_per_worker: int, workload: str,
              variants: Iterable[str], seed: int = 0) -> Iterator[dict[str, Any]]:
    """Open-loop runs on the native path, per variant and offered rate (requests per second in all)."""
    for name in variants:
        for rate in rates:
            scenario = notebook_scenario(workload, name, requests_per_thread, slots_per_worker, seed=seed)
            yield concurrency(scenario, threads, "per-worker", "native", rate, "per-worker")


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
