"""Notebook 06: worker threads serving requests at once, with shared or per-worker pools and caches:
throughput, tail latency and outcomes."""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from wasmlab.config import CacheConfig, EngineConfig, Limits, PoolConfig
from wasmlab.errors import ConfigError, allowed
from wasmlab.host.cache import LockedModuleCache
from wasmlab.host.engine import build_engine
from wasmlab.host.modules import Compiled
from wasmlab.host.outcomes import REQUEST_FAILURES, classify
from wasmlab.host.runtime import Runtime
from wasmlab.host.variant import parse_variant
from wasmlab.measure.calibrate import timed_loop
from wasmlab.measure.stats import describe_ns
from wasmlab.workloads import load_workload

POOL_MODES = ("shared", "per-worker")
CACHE_MODES = ("shared", "per-worker")


def concurrency(
    threads: int,
    pool_mode: str = "shared",
    cache_mode: str = "shared",
    requests_per_thread: int = 500,
    slots_per_worker: int = 20,
    workload: str = "seed",
    variant: str = "pooled+cached",
    warmup: int = 50,
    pool_slots: int | None = None,
    exhaustion: str = "fail",
    wait_timeout_ms: float = 100.0,
) -> dict[str, Any]:
    """``threads`` workers serving requests at once: throughput, tail latency and outcomes.

    ``pool_slots`` sizes a shared pool explicitly (default ``slots_per_worker * threads``); with
    fewer slots than threads, requests find the pool exhausted and ``exhaustion`` decides: ``fail``
    counts them as ``pool_exhausted``, ``wait`` retries until a slot frees (at most
    ``wait_timeout_ms``) and the time spent waiting is reported.

    wasmtime-py releases the GIL in its C calls, so workers overlap inside wasmtime; each
    worker has its own stores (a ``Store`` must not be used from two threads).  A pool is a
    property of an engine, and a compiled module belongs to one engine, so per-worker pools
    rule out a shared cache.
    """
    if pool_mode not in POOL_MODES:
        raise allowed(pool_mode, "pool mode", POOL_MODES)
    if cache_mode not in CACHE_MODES:
        raise allowed(cache_mode, "cache mode", CACHE_MODES)
    if pool_mode == "per-worker" and cache_mode == "shared":
        raise ConfigError("pool mode 'per-worker' with cache mode 'shared' is not possible: a compiled module belongs to one engine, "
                          "and each per-worker pool is its own engine; allowed: shared/shared, shared/per-worker, per-worker/per-worker")
    if threads < 1:
        raise ConfigError(f"threads = {threads} is out of range; allowed: an integer >= 1")
    wl = load_workload(workload)
    parsed = parse_variant(variant)

    def engine_config(slots: int) -> EngineConfig:
        return EngineConfig(allocator=parsed.allocator, pool=PoolConfig(slots=slots))

    shared_slots = pool_slots if pool_slots is not None else slots_per_worker * threads
    shared_engine = build_engine(engine_config(shared_slots)) if pool_mode == "shared" else None
    shared_cache: LockedModuleCache[Compiled] | None = LockedModuleCache(CacheConfig()) if cache_mode == "shared" else None
    limits = Limits(exhaustion=exhaustion, wait_timeout_ms=wait_timeout_ms)
    runtimes = []
    for _ in range(threads):
        engine = shared_engine or build_engine(engine_config(slots_per_worker))
        runtimes.append(Runtime(parsed, engine, CacheConfig(), [wl], shared_cache=shared_cache, limits=limits))
    samples = [[0] * requests_per_thread for _ in range(threads)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(threads)]
    failed: list[set[int]] = [set() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        handle, out, counts = runtimes[i].handle, samples[i], outcomes[i]
        try:
            for _ in range(warmup):
                try:
                    handle(0)
                except REQUEST_FAILURES:
                    pass
            barrier.wait()
            failures: list[tuple[int, BaseException]] = []
            timed_loop(handle, [0] * requests_per_thread, out, failures)
            counts.update(classify(exc) for _, exc in failures)
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
        start = time.perf_counter_ns()
        for t in workers:
            t.join()
        wall = time.perf_counter_ns() - start
    except threading.BrokenBarrierError:
        for t in workers:
            t.join()
        raise (errors[0] if errors else RuntimeError("a worker failed before starting")) from None
    finally:
        gc.enable()
    if errors:
        raise errors[0]
    # Throughput and latency count served requests only; failures are reported beside them with their own latency.
    served = np.asarray([ns for t in range(threads) for k, ns in enumerate(samples[t]) if k not in failed[t]], dtype=np.int64)
    refused = np.asarray([ns for t in range(threads) for k, ns in enumerate(samples[t]) if k in failed[t]], dtype=np.int64)
    total = sum(outcomes, Counter())
    return {
        "threads": threads,
        "pool_mode": pool_mode,
        "cache_mode": cache_mode,
        "pool_slots": shared_slots if pool_mode == "shared" else slots_per_worker,
        "exhaustion": exhaustion,
        "outcome_ok": total.get("ok", 0),
        "outcome_pool_exhausted": total.get("pool_exhausted", 0),
        "pool_waits": sum(r.pool_waits for r in runtimes),
        "pool_wait_ms": sum(r.pool_wait_ns for r in runtimes) / 1e6,
        "variant": parsed.name,
        "workload": wl.name,
        "requests": threads * requests_per_thread,
        "served_requests": int(served.size),
        "failed_requests": int(refused.size),
        "throughput_rps": served.size / (wall / 1e9),
        "offered_rps": threads * requests_per_thread / (wall / 1e9),
        "wall_ms": wall / 1e6,
        **(describe_ns(served) if served.size else {}),
        "failed_latency_us_p50": float(np.median(refused)) / 1000 if refused.size else float("nan"),
        "cache_misses": sum(r.cache.stats.misses for r in runtimes) if shared_cache is None else shared_cache.stats.misses,
    }


def sharing_modes(modes: Iterable[str]) -> list[tuple[str, str]]:
    """``"pool/cache"`` mode strings (e.g. ``"shared/per-worker"``) as (pool mode, cache mode) pairs, validated."""
    pairs = []
    for mode in modes:
        pool_mode, slash, cache_mode = mode.partition("/")
        if not slash or pool_mode not in POOL_MODES or cache_mode not in CACHE_MODES:
            raise allowed(mode, "pool/cache mode", [f"{p}/{c}" for p in POOL_MODES for c in CACHE_MODES])
        pairs.append((pool_mode, cache_mode))
    return pairs
