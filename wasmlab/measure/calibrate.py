"""The harness's own costs, measured before every run and reported beside its figures: a timer pair,
the timed loop around a no-op handler, and one C call made the way the lean path makes them."""

from __future__ import annotations

import gc
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import wasmtime

from wasmlab import capi
from wasmlab.errors import WasmlabError
from wasmlab.host.outcomes import REQUEST_FAILURES


def timed_loop(handle: Callable[[int], object], indices: Sequence[int], out: list[int],
                failures: list[tuple[int, BaseException]] | None = None) -> int:
    """Time each request; return the block's wall time in ns.  Kept minimal: it is the harness overhead.

    A request that fails with a trap or a wasmtime error is timed too and recorded in ``failures``.
    """
    clock = time.perf_counter_ns
    i = 0
    start = clock()
    for index in indices:
        t0 = clock()
        try:
            handle(index)
        except REQUEST_FAILURES as exc:
            out[i] = clock() - t0
            if failures is None:
                raise
            failures.append((i, exc))
            i += 1
            continue
        out[i] = clock() - t0
        i += 1
    return clock() - start


def calibrate(engine: wasmtime.Engine | None = None, rounds: int = 20000) -> dict[str, float]:
    """The harness's own costs, in ns: a ``perf_counter_ns`` pair, the timed loop around a
    no-op handler, and one C call made the way the lean path makes them."""
    clock = time.perf_counter_ns
    pairs = np.empty(rounds, dtype=np.int64)
    for i in range(rounds):
        t0 = clock()
        pairs[i] = clock() - t0
    noop_samples = [0] * rounds
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        timed_loop(lambda index: None, [0] * rounds, noop_samples)
    finally:
        if gc_was_enabled:
            gc.enable()
    probe = capi.crossing_probe(engine or wasmtime.Engine())
    crossing = min(timeit.repeat(probe, number=rounds, repeat=5)) / rounds * 1e9
    return {
        "timer_overhead_ns": float(np.median(pairs)),
        "harness_overhead_ns": float(np.median(noop_samples)),
        "crossing_ns": crossing,
    }


def median_ns(action: Callable[[], object], repeats: int) -> float:
    """The median of ``repeats`` timings of ``action()``, in ns (for operations of a millisecond and more)."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        action()
        samples.append(time.perf_counter_ns() - t0)
    return float(np.median(samples))


def per_call_ns(action: Callable[[], object], calls: int, repeats: int) -> float:
    """The median over ``repeats`` batches of the mean time of one of ``calls`` calls of ``action()``, in ns,
    with the cyclic GC off in each batch (for operations of microseconds, where one timer pair per call would dominate)."""
    batches = []
    for _ in range(repeats):
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(calls):
                action()
            batches.append((time.perf_counter_ns() - start) / calls)
        finally:
            if gc_was_enabled:
                gc.enable()
    return float(np.median(batches))


def cache_lookup_ns(runtime: Any, index: int, calls: int = 2000, repeats: int = 5) -> float:
    """What one hit in ``runtime``'s compiled-module cache costs, in ns: the lab's own lookup, part of every
    cached request (``nan`` for a variant that does not cache).  Measured after warm-up, so it is a hit."""
    if not runtime.variant.cached:
        return float("nan")
    workload = runtime.workloads[index]
    cache, compile_, key = runtime.cache, runtime.compile, workload.sha256
    if cache.lock_free:  # what the lean path inlines: the lookup and a counter (or, on a miss, the compile)
        lookup, stats, get = cache.lookup, cache.stats, cache.get

        def hit() -> None:
            try:
                lookup(key)
            except KeyError:  # a trace of more modules than the cache holds: the key may have been evicted
                get(key, compile_, workload)
            else:
                stats.hits += 1
        get(key, compile_, workload)  # cached now, if the cache holds anything
    else:
        def hit() -> None:
            cache.get(key, compile_, workload)
    # The call of the action itself is not part of a request: it is timed on its own and taken off.
    return max(per_call_ns(hit, calls, repeats) - per_call_ns(lambda: None, calls, repeats), 0.0)


@dataclass(frozen=True)
class Crossings:
    """The C calls one request makes, counted, and what they cost through ctypes at their own arities."""

    count: int
    dispatch_ns: float


def dispatch_ns(made: Sequence[tuple[Any, tuple[Any, ...]]], engine: wasmtime.Engine, rounds: int = 1000,
                repeats: int = 3) -> float:
    """What the C calls in ``made`` (function object, arguments) cost in ctypes, in ns: each is probed with a
    function of the same arity, argument objects and result type whose callee does nothing
    (:func:`~wasmlab.capi.probe_like`), timed by ``timeit`` (the best of ``repeats``), and the costs summed.
    Calls alike in function and argument types are probed once."""
    engine_ptr = engine.ptr()
    probed: dict[tuple[Any, ...], float] = {}
    total = 0.0
    for function, args in made:
        shape = (id(function), tuple(type(a) for a in args))
        if shape not in probed:
            names = [f"a{i}" for i in range(len(args))]
            scope = {"probe": capi.probe_like(function), "a0": engine_ptr,
                     **{name: value for name, value in zip(names[1:], args[1:], strict=True)}}
            timer = timeit.Timer(f"probe({', '.join(names or ['a0'])})", globals=scope)
            probed[shape] = min(timer.repeat(repeat=repeats, number=rounds)) / rounds * 1e9
        total += probed[shape]
    return total


def count_crossings(runtime: Any, index: int) -> Crossings | None:
    """The C calls one request of workload ``index`` makes on ``runtime``'s call path, counted, not assumed, and
    their cost at their own arities (:func:`dispatch_ns`): the path's handlers are bound again while every
    libwasmtime function counts its calls, and one request is served (after warm-up, so a cached variant's
    module is a hit).  ``None`` when that request fails."""
    from wasmlab.host import callpaths

    with capi.counting() as counter:
        handle = callpaths.bind(runtime.call_path, runtime.parts, runtime.workloads).handle
        before = len(runtime.parts.cleanup)
        try:
            counter.made.clear()  # what binding called is not part of the request
            calls_before = counter.calls
            handle(index)
        except (*REQUEST_FAILURES, WasmlabError):
            return None
        finally:
            while len(runtime.parts.cleanup) > before:  # what the extra binding allocated (WASI output folders)
                runtime.parts.cleanup.pop()()
    return Crossings(counter.calls - calls_before, dispatch_ns(counter.made, runtime.engine))
