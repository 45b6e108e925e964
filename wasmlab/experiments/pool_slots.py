"""Notebook 02: what a pool of N slots costs in address space and memory, what happens when more instances
are alive than slots, and what resetting a slot costs when requests dirty memory (keep-resident)."""

from __future__ import annotations

import gc
from typing import Any

import psutil
import wasmtime

from wasmlab.config import CacheConfig, EngineConfig, MiB, PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.host.engine import build_engine
from wasmlab.host.outcomes import classify
from wasmlab.host.runtime import Runtime
from wasmlab.host.variant import parse_variant
from wasmlab.measure.calibrate import timed_loop
from wasmlab.measure.scenario import Scenario, run
from wasmlab.measure.stats import describe_ns
from wasmlab.workloads import load_workload


def _memory_mib() -> tuple[float, float]:
    info = psutil.Process().memory_info()
    return info.rss / MiB, info.vms / MiB


def pool_memory_and_exhaustion(
    slots: int,
    live: int,
    max_memory_size: int | None = None,
    memory_reservation: int | None = None,
    memory_guard_size: int | None = None,
    requests: int = 200,
    workload: str = "seed",
) -> dict[str, Any]:
    """The price of a pool of ``slots`` and what happens with ``live`` instances alive at once.

    ``live - 1`` instances are held while each of ``requests`` requests instantiates one more
    (so ``live`` are alive during a request).  Requests that find no free slot fail with
    wasmtime's pool error and are counted as ``pool_exhausted``.
    """
    if live < 1:
        raise ConfigError(f"live = {live} is out of range; allowed: an integer >= 1")
    wl = load_workload(workload)
    gc.collect()
    rss0, vms0 = _memory_mib()
    config = EngineConfig(
        allocator="pooling",
        pool=PoolConfig(slots=slots, max_memory_size=max_memory_size),
        memory_reservation=memory_reservation,
        memory_guard_size=memory_guard_size,
    )
    engine = build_engine(config)
    rss1, vms1 = _memory_mib()
    # Requests are served as the api path serves them; the compiled module is shared with the
    # instances held alive, and compiled before anything is timed.
    runtime = Runtime(parse_variant("pooled+cached"), engine, CacheConfig(), [wl], "api")
    module = runtime.modules.get(wl).core
    held: list[wasmtime.Store] = []
    exhausted_while_holding = 0
    for _ in range(live - 1):
        store = wasmtime.Store(engine)
        try:
            wasmtime.Instance(store, module, ())
            held.append(store)
        except wasmtime.WasmtimeError as exc:
            if classify(exc) != "pool_exhausted":
                raise
            exhausted_while_holding += 1
            store.close()
    latencies = [0] * requests
    failures: list[tuple[int, BaseException]] = []
    timed_loop(runtime.handle, [0] * requests, latencies, failures)
    other = [failure for _, failure in failures if classify(failure) != "pool_exhausted"]
    if other:
        raise other[0]
    exhausted = len(failures)
    failed = {i for i, _ in failures}
    samples = [ns for i, ns in enumerate(latencies) if i not in failed]
    rss2, vms2 = _memory_mib()
    for store in held:
        store.close()
    row: dict[str, Any] = {
        "slots": slots,
        "live": live,
        "max_memory_size": max_memory_size if max_memory_size is not None else -1,
        "memory_reservation": memory_reservation if memory_reservation is not None else -1,
        "requests": requests,
        "ok_requests": len(samples),
        "pool_exhausted": exhausted,
        "pool_exhausted_while_holding": exhausted_while_holding,
        "vmsize_mib_reserved_by_pool": vms1 - vms0,
        "rss_mib_engine": rss1 - rss0,
        "rss_mib_after_requests": rss2 - rss0,
        "vmsize_mib_total": vms2,
        "workload": wl.name,
    }
    row.update(describe_ns(samples) if samples else {})
    del engine, module, runtime
    gc.collect()
    return row


def keep_resident_cost(
    kib: int, keep_resident: int, requests: int = 300, repeats: int = 3, warmup: int = 50, slots: int = 4
) -> dict[str, Any]:
    """What a pool slot's reset costs when each request dirties ``kib`` KiB, with
    ``keep_resident`` bytes of linear memory kept resident (memset) instead of decommitted."""
    scenario = Scenario(
        workload=f"dirty-memory:kib={kib}", variants=("pooled+cached",), requests=requests, repeats=repeats,
        warmup=warmup, slots=slots, pool={"linear_memory_keep_resident": keep_resident}, phases=True,
    )
    m = run(scenario)
    if m.errors:
        raise ConfigError(next(iter(m.errors.values())))
    table = m.variants(None).iloc[0]
    phase = m.phase_rows().groupby("phase")["duration_ns"].median() / 1000
    return {
        "kib_dirtied": kib,
        "keep_resident_bytes": keep_resident,
        "latency_us_mean": table["latency_us_mean"],
        "latency_us_p50": table["latency_us_p50"],
        "latency_us_p99": table["latency_us_p99"],
        "minor_faults_per_request": table["minor_faults_per_request"],
        "drop_store_us_p50": phase["drop_store"],
        "instantiate_us_p50": phase["instantiate"],
        "call_us_p50": phase["call"],
    }
