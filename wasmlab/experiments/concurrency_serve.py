"""The workers of one concurrency run serving at once, and the wall time their requests took.

Throughput is served requests over the wall time of those same requests, from stamps the workers take themselves:
each worker's span runs from just before its first request to its last request's end, and the wall is the latest end
less the earliest start.  A clock started in the main thread after the barrier (and after reading the kernel's
counters) missed the workers' first requests: 2000 requests once showed 13.6 ms of service in a 3.8 ms wall on one
thread.  The kernel's counters are read outside the spans: once every worker is warm (the barrier's action, before any
is released) and after all have ended."""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from wasmlab.host.outcomes import REQUEST_FAILURES, classify
from wasmlab.measure import footprint, linux_counters
from wasmlab.measure.calibrate import timed_loop

if TYPE_CHECKING:
    from wasmlab.host.runtime import Runtime

Span = tuple[int, int]  # a worker's first request start and last request end, perf_counter_ns


def wall_ns(spans: Sequence[Span]) -> int:
    """The wall time of the workers' requests: from the earliest first start to the latest last end."""
    return max(end for _, end in spans) - min(start for start, _ in spans)


def throughput_rps(served: int, spans: Sequence[Span]) -> float:
    """Served requests per second over the wall time of the same requests."""
    return served / (wall_ns(spans) / 1e9)


class Plan(Protocol):
    """What serving needs of a concurrency run's plan (experiments.concurrency.Plan has it); a protocol, so this module
    does not import the one that imports it."""

    @property
    def threads(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def rate(self) -> float | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def sequences(self) -> list[list[int]]: ...
    @property
    def warm_indices(self) -> list[int]: ...


@dataclass
class Served:
    """What the workers did: each request's latency, the failed ones, outcomes, each worker's span, the kernel's counts."""

    samples: list[list[int]]
    failed: list[set[int]]
    outcomes: Counter[str]
    spans: list[Span]
    kernel: Any
    footprint: footprint.Footprint

    @property
    def wall_ns(self) -> int:
        return wall_ns(self.spans)


def serve(plan: Plan, runtimes: list[Runtime]) -> Served:
    """Every worker warms up, waits at a barrier, then serves its requests; the runtimes are closed after."""
    samples = [[0] * plan.requests for _ in range(plan.threads)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(plan.threads)]
    failed: list[set[int]] = [set() for _ in range(plan.threads)]
    spans: list[Span] = [(0, 0)] * plan.threads
    rng = np.random.default_rng(plan.seed)
    # Open loop: each worker's requests are due at the cumulative sum of exponential gaps (Poisson arrivals).
    schedules = ([np.cumsum(rng.exponential(1e9 * plan.threads / plan.rate, plan.requests)).astype(np.int64)
                  for _ in range(plan.threads)] if plan.rate is not None else [None] * plan.threads)
    counted: list[linux_counters.KernelCounts] = []
    # The action runs once all are warm and before any is released: the counters' read is outside every span.
    barrier = threading.Barrier(plan.threads + 1, action=lambda: counted.append(linux_counters.counts()))
    errors: list[BaseException] = []

    # Set by each worker as it ends: after an interrupted join, Thread.is_alive() may say False of a running thread.
    ended = [threading.Event() for _ in range(plan.threads)]

    def worker(i: int) -> None:
        try:
            failed[i], spans[i] = work(runtimes[i], plan, plan.sequences[i], samples[i], outcomes[i], schedules[i], barrier)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)
            barrier.abort()
        finally:
            ended[i].set()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(plan.threads)]
    for t in workers:
        t.start()
    gc.disable()
    try:
        barrier.wait()
        for t in workers:
            t.join()
        spent = linux_counters.counts() - counted[0]
        served_footprint = footprint.now()
    except threading.BrokenBarrierError:
        for t in workers:
            t.join()
        raise (errors[0] if errors else RuntimeError("a worker failed before starting")) from None
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: a worker's block in C cannot be stopped half-way, and its runtime cannot be closed under
        # it; the workers finish their blocks, then the interrupt goes on up (barrier aborted for those still waiting).
        barrier.abort()
        for event in ended:
            event.wait()
        raise
    finally:
        gc.enable()
        if all(event.is_set() for event in ended):  # a second Ctrl-C while waiting leaves them to the process's exit
            close_all(runtimes)
    if errors:
        raise errors[0]
    return Served(samples, failed, sum(outcomes, Counter()), spans, spent, served_footprint)


def work(runtime: Runtime, plan: Plan, indices: list[int], out: list[int], counts: Counter[str], schedule: Any,
         barrier: threading.Barrier) -> tuple[set[int], Span]:
    """One worker: warm up untimed, wait for the others, serve ``indices`` into ``out``; the failed requests and its span."""
    handle, block = runtime.handle, runtime.block
    if block is not None:
        block(plan.warm_indices, [0] * len(plan.warm_indices), [])
    else:
        for k in plan.warm_indices:
            try:
                handle(k)
            except REQUEST_FAILURES:
                pass
    if runtime.parts.ledger is not None:
        runtime.parts.ledger.take()  # instance reuse: the warm-up's instances are not the timed block's
    barrier.wait()
    failures: list[tuple[int, BaseException]] = []
    # The span is the block's own wall (from its first request's start to its last's end, in C or in the timed loop),
    # placed at a stamp taken just before it: what the block does after its last request (copying out its latencies,
    # checking its results) is no request's time.
    start = time.perf_counter_ns()
    if block is not None:
        took = block(indices, out, failures, *([schedule] if schedule is not None else []))
    else:
        took = timed_loop(handle, indices, out, failures)
    counts.update(classify(exc, runtime.memory_limit) for _, exc in failures)
    counts["ok"] += plan.requests - len(failures)
    return {k for k, _ in failures}, (start, start + int(took))


def close_all(runtimes: Iterable[Runtime]) -> None:
    for runtime in runtimes:
        runtime.close()
