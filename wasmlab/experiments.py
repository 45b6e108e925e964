"""Experiments beyond one side-by-side comparison: what notebooks 02, 04 and 06 measure.

Each function returns tidy rows (dicts with units in their names) and leaves plotting to
``plots`` and the notebooks; ``tidy`` adds the run's metadata to a table of them.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
import statistics
import tempfile
import threading
import time
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import psutil
import wasmtime

from wasmlab import metadata as md
from wasmlab.artifacts import ArtifactStore
from wasmlab.cache import ModuleCache
from wasmlab.config import CacheConfig, EngineConfig, Limits, MiB, PoolConfig
from wasmlab.engine import build_engine
from wasmlab.errors import ConfigError, allowed
from wasmlab.measure import REQUEST_FAILURES
from wasmlab.outcomes import PoolExhausted, classify
from wasmlab.runtime import PHASES, Runtime, parse_variant
from wasmlab.stats import describe_ns
from wasmlab.workloads import load_workload



def tidy(rows: Iterable[Mapping[str, Any]], parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A DataFrame of ``rows`` with the run's metadata in every row (parameters as JSON)."""
    frame = pd.DataFrame(list(rows))
    run = md.new_run()
    for key, value in run.items():
        frame[key] = value
    frame["parameters_json"] = json.dumps(dict(parameters or {}), sort_keys=True, default=str)
    return frame


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
    module = runtime.cache.get(wl.sha256, runtime.compile, wl).module
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
    samples: list[int] = []
    exhausted = 0
    clock, handle = time.perf_counter_ns, runtime.handle
    for _ in range(requests):
        t0 = clock()
        try:
            handle(0)
        except PoolExhausted:
            exhausted += 1
            continue
        samples.append(clock() - t0)
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


def _median_ns(action: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        action()
        samples.append(time.perf_counter_ns() - t0)
    return float(statistics.median(samples))


COMPILERS = (("cranelift", "none"), ("cranelift", "speed"), ("cranelift", "speed_and_size"), ("winch", "speed"))
INSTANTIATIONS = (
    ("on-demand", "on-demand", True),
    ("pooling", "pooling", False),
    ("pooling+cow", "pooling", True),
)


def instantiation_breakdown(workload: str, repeats: int = 20, requests: int = 200, slots: int = 4) -> list[dict[str, Any]]:
    """Per operation, the median µs for ``workload``: compile with each compiler and opt level,
    deserialize a serialized module, a cache hit, and instantiate + call + drop with each
    allocator (lean path, phases timed separately)."""
    wl = load_workload(workload)
    rows: list[dict[str, Any]] = []

    def add(operation: str, setting: str, ns: float, note: str = "") -> None:
        rows.append({"workload": wl.name, "workload_bytes": wl.size_bytes, "operation": operation, "setting": setting,
                     "median_us": ns / 1000, "repeats": repeats, "note": note})

    for compiler, opt in COMPILERS:
        engine = build_engine(EngineConfig(compiler=compiler, opt_level=opt, parallel_compilation=False))
        setting = f"{compiler}/{opt}" if compiler == "cranelift" else compiler
        try:
            add("compile", setting, _median_ns(lambda engine=engine: wasmtime.Module(engine, wl.wasm), repeats))
        except wasmtime.WasmtimeError as exc:
            # e.g. Winch does not support wasm exception handling, which C++ guests use.
            add("compile", setting, float("nan"), note="unsupported: " + str(exc).strip().splitlines()[-1].strip())
    engine = build_engine(EngineConfig())
    serialized = bytes(wasmtime.Module(engine, wl.wasm).serialize())
    add("deserialize", "Module.deserialize", _median_ns(lambda: wasmtime.Module.deserialize(engine, serialized), repeats))
    with tempfile.TemporaryDirectory(prefix="wasmlab-artifacts-") as folder:
        artifacts = ArtifactStore(Path(folder), engine, EngineConfig())
        artifacts.load_or_compile(wl)
        add("load from disk", "artifact (deserialize_file)", _median_ns(lambda: artifacts.load_or_compile(wl), repeats))
    cache: ModuleCache[Any] = ModuleCache(CacheConfig(policy="lru", size=4))
    cache.get(wl.sha256, lambda w: w, wl)
    add("cache hit", "lru", _median_ns(lambda: cache.get(wl.sha256, lambda w: w, wl), max(repeats, 1000)))
    for label, allocator, cow in INSTANTIATIONS:
        config = EngineConfig(allocator=allocator, memory_init_cow=cow, pool=PoolConfig(slots=slots))
        runtime = Runtime(parse_variant("pooled+cached" if allocator == "pooling" else "cached"), build_engine(config), CacheConfig(), [wl])
        stamps = [0] * (len(PHASES) + 1)
        runtime.handle(0)  # compiles; the next request is the first on a warm cache but fresh code pages
        runtime.handle_phased(0, stamps)
        add("first call", label, float(stamps[5] - stamps[4]))
        for _ in range(min(requests, 50)):
            runtime.handle(0)
        durations: dict[str, list[int]] = {phase: [] for phase in PHASES}
        for _ in range(requests):
            runtime.handle_phased(0, stamps)
            for i, phase in enumerate(PHASES):
                durations[phase].append(stamps[i + 1] - stamps[i])
        for phase in ("new_store", "instantiate", "call", "drop_store", "read_output"):
            add(phase, label, float(np.median(durations[phase])))
        runtime.close()
    return rows


POOL_MODES = ("shared", "per-worker")
CACHE_MODES = ("shared", "per-worker")


class _LockedCache(ModuleCache):  # type: ignore[type-arg]
    """A module cache several threads can share: cachetools caches are not thread-safe."""

    def __init__(self, config: CacheConfig) -> None:
        super().__init__(config)
        self._lock = threading.Lock()

    def get(self, key: Any, build: Any, arg: Any) -> Any:
        with self._lock:
            return super().get(key, build, arg)


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
    shared_cache = _LockedCache(CacheConfig()) if cache_mode == "shared" else None
    limits = Limits(exhaustion=exhaustion, wait_timeout_ms=wait_timeout_ms)
    runtimes = []
    for _ in range(threads):
        engine = shared_engine or build_engine(engine_config(slots_per_worker))
        runtimes.append(Runtime(parsed, engine, CacheConfig(), [wl], shared_cache=shared_cache, limits=limits))
    samples = [np.zeros(requests_per_thread, dtype=np.int64) for _ in range(threads)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        handle, out, counts = runtimes[i].handle, samples[i], outcomes[i]
        clock = time.perf_counter_ns
        try:
            for _ in range(warmup):
                try:
                    handle(0)
                except REQUEST_FAILURES:
                    pass
            barrier.wait()
            for k in range(requests_per_thread):
                t0 = clock()
                try:
                    handle(0)
                    counts["ok"] += 1
                except REQUEST_FAILURES as exc:
                    counts[classify(exc)] += 1
                out[k] = clock() - t0
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
    every = np.concatenate(samples)
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
        "requests": int(every.size),
        "throughput_rps": every.size / (wall / 1e9),
        "wall_ms": wall / 1e6,
        **describe_ns(every),
        "cache_misses": sum(r.cache.stats.misses for r in runtimes) if shared_cache is None else shared_cache.stats.misses,
    }


def sizes(values: Sequence[str | int | None]) -> list[int | None]:
    """Notebook helper: sizes given as ``"64KiB"``, ints or ``None``."""
    from wasmlab.config import parse_size

    return [None if v in (None, "", "default") else parse_size(v) for v in values]  # type: ignore[arg-type]


def keep_resident_cost(
    kib: int, keep_resident: int, requests: int = 300, repeats: int = 3, warmup: int = 50, slots: int = 4
) -> dict[str, Any]:
    """What a pool slot's reset costs when each request dirties ``kib`` KiB, with
    ``keep_resident`` bytes of linear memory kept resident (memset) instead of decommitted."""
    from wasmlab import lab

    scenario = lab.Scenario(
        workload=f"dirty-memory:kib={kib}", variants=("pooled+cached",), requests=requests, repeats=repeats,
        warmup=warmup, slots=slots, pool={"linear_memory_keep_resident": keep_resident}, phases=True,
    )
    m = lab.run(scenario)
    if m.errors:
        raise ConfigError(next(iter(m.errors.values())))
    table = m.variants(None).iloc[0]
    phase = m.phases.groupby("phase")["duration_ns"].median() / 1000
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


def cache_policy_grid(
    policies: Sequence[str],
    cache_sizes: Sequence[int],
    distributions: Sequence[str],
    modules: int = 50,
    requests: int = 2000,
    zipf_s: float = 1.1,
    seed: int = 0,
    workload: str = "seed",
    ttl_seconds: float = 0.05,
    variant: str = "pooled+cached",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (distribution, policy, size) over one request trace of ``modules`` distinct modules,
    cold (no warm-up), so the cost of misses and of clearing a full cache is in the figures.
    Returns the summary rows and the per-request samples (for latency over time)."""
    from wasmlab import lab

    summaries, samples = [], []
    for distribution in distributions:
        for policy in policies:
            for size in cache_sizes:
                scenario = lab.Scenario(
                    workload=workload, variants=(variant,), modules=modules, trace=distribution, zipf_s=zipf_s, seed=seed,
                    requests=requests, repeats=1, warmup=0, cache_policy=policy, cache_size=size, ttl_seconds=ttl_seconds,
                    slots=4,
                )
                m = lab.run(scenario)
                labels = {"distribution": distribution, "policy": policy, "cache_size": size}
                summary = m.summary.assign(**labels)
                summary["compile_share"] = summary["compile_ms_total"] / summary["total_ms"]
                summaries.append(summary)
                samples.append(m.samples.assign(**labels))
    return pd.concat(summaries, ignore_index=True), pd.concat(samples, ignore_index=True)


def component_call_costs(workload: str, calls: int = 200, repeats: int = 5) -> list[dict[str, Any]]:
    """Where one component call's time goes, on one instance held in one store: wasmtime-py's call,
    split into its parts (the function type read back on every call, arguments converted to C
    values, the result converted back), against the lean call with the arguments built once.

    ``lean call`` is wasmtime's work plus the guest's (canonical ABI copies into and out of guest
    memory, the guest's own code); everything wasmtime-py's call costs beyond it is the binding.
    Each figure is the median over ``repeats`` batches of ``calls`` calls, in microseconds per call;
    every call's result is checked against the workload's expected value first.
    """
    import ctypes

    import wasmtime.component as wc
    from wasmtime import _bindings as ffi

    from wasmlab.component_values import PreparedArgs, ResultSlot
    from wasmlab.runtime import _api_args, _component_call

    w = load_workload(workload)
    if not w.component:
        raise allowed(workload, "workload for component call costs", ["a component (e.g. middleware, middleware-py)"])
    engine = wasmtime.Engine()
    component = wc.Component(engine, w.wasm)
    linker = wc.Linker(engine)
    if w.wasi:
        linker.add_wasip2()
    store = wasmtime.Store(engine)
    if w.wasi:
        store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, component)
    func = instance.get_func(store, w.entry)
    signature = w.signature
    api_args = _api_args(w)
    args = PreparedArgs(signature, w.args)
    slot = ResultSlot(signature.result)
    raw_func = ffi.wasmtime_component_func_t()
    index = component.get_export_index(w.entry)
    ffi.wasmtime_component_instance_get_func(ctypes.byref(instance._instance), store._context(), index.ptr(),  # type: ignore[attr-defined]
                                             ctypes.byref(raw_func))
    call = _component_call  # the lean path's own function object
    context = store._context()

    def lean_call_only() -> None:
        if call(ctypes.byref(raw_func), context, args.array, args.size, slot.ref, slot.count):
            raise ConfigError(f"component call of {w.name} failed")
        ffi.wasmtime_component_val_delete(slot.ref)
        ctypes.memset(slot.ref, 0, ctypes.sizeof(ffi.wasmtime_component_val_t))

    def lean_call() -> Any:
        if call(ctypes.byref(raw_func), context, args.array, args.size, slot.ref, slot.count):
            raise ConfigError(f"component call of {w.name} failed")
        return slot.take()

    def api_call() -> Any:
        return func(store, *api_args)

    func_type = func.type(store)
    param_types = [t for _, t in func_type.params]

    def api_type_reflection() -> None:
        ty = func.type(store)
        ty.params, ty.result  # noqa: B018 - what Func.__call__ reads on every call

    scratch = (ffi.wasmtime_component_val_t * max(len(param_types), 1))()

    def api_argument_conversion() -> None:
        for i, (ty, value) in enumerate(zip(param_types, api_args)):
            ty.convert_to_c(store, value, ctypes.pointer(scratch[i]))
        for i in range(len(param_types)):
            ffi.wasmtime_component_val_delete(ctypes.byref(scratch[i]))

    kept = ffi.wasmtime_component_val_t()
    if call(ctypes.byref(raw_func), context, args.array, args.size, ctypes.byref(kept), slot.count):
        raise ConfigError(f"component call of {w.name} failed")
    copy = ffi.wasmtime_component_val_t()
    result_type = func_type.result

    def api_result_conversion() -> None:
        ffi.wasmtime_component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        result_type.convert_from_c(copy)  # frees the copy

    def clone_only() -> None:
        ffi.wasmtime_component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        ffi.wasmtime_component_val_delete(ctypes.byref(copy))

    def lean_result_lift() -> None:
        ffi.wasmtime_component_val_clone(ctypes.byref(kept), ctypes.byref(copy))
        signature.result.lift(copy)
        ffi.wasmtime_component_val_delete(ctypes.byref(copy))

    checked = {"lean": signature.result.from_api(api_call()) if signature.result else None, "api": lean_call()}
    if w.expected is not None and not (checked["lean"] == w.expected == checked["api"]):
        raise ConfigError(f"{w.name}: the two call paths disagree with the expected result: {checked} vs {w.expected!r}")

    def per_call_us(action: Any) -> float:
        batches = []
        for _ in range(repeats):
            gc.disable()
            start = time.perf_counter_ns()
            for _ in range(calls):
                action()
            batches.append((time.perf_counter_ns() - start) / calls / 1000)
            gc.enable()
        return statistics.median(batches)

    clone_us = per_call_us(clone_only)
    parts = {
        "api call (wasmtime-py)": per_call_us(api_call),
        "lean call (args built once, result read)": per_call_us(lean_call),
        "lean call without reading the result": per_call_us(lean_call_only),
        "api: function type read back": per_call_us(api_type_reflection),
        "api: arguments converted to C values": per_call_us(api_argument_conversion),
        "api: result converted from C values": max(per_call_us(api_result_conversion) - clone_us, 0.0),
        "lean: result read": max(per_call_us(lean_result_lift) - clone_us, 0.0),
    }
    ffi.wasmtime_component_val_delete(ctypes.byref(kept))
    args.close()
    store.close()
    base = {"workload": w.name, "entry": w.entry, "component_bytes": w.size_bytes, "calls": calls, "repeats": repeats,
            **{f"request_{k}": v for k, v in w.parameters.items()}}
    return [{**base, "part": part, "us_per_call": value,
             "share_of_api_call": value / parts["api call (wasmtime-py)"]} for part, value in parts.items()]
