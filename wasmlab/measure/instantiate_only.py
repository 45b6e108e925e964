"""Timing a proxy's instantiate-only requests (:mod:`wasmlab.host.proxy_instances`) with the lab's usual statistics.

Warm-up requests first (the pool's slots and the allocator's caches warmed, none recorded), then ``repetitions``
blocks of ``requests`` requests, each request timed alone: with ``perf_counter_ns`` around a Python request (the lean
path, :func:`time_requests`), or in C by the native loop, a block one C call (:func:`time_blocks`).  Each repetition's p50 and mean
are its figures; the figure reported is their geometric mean over repetitions with a 95% Student-t interval
(:func:`~wasmlab.measure.stats.geometric_interval`): the repetition is the unit that varies, as everywhere in the lab.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wasmlab.measure.stats import GEOMETRIC_METHOD, Ratio, geometric_interval


@dataclass(frozen=True)
class InstantiateOnly:
    """Per-request figures in µs over repetitions, and how many requests each rested on."""

    p50_us: Ratio
    mean_us: Ratio
    p50_by_repetition: tuple[float, ...]
    mean_by_repetition: tuple[float, ...]
    warmup: int
    requests: int  # per repetition
    instances: int  # instances made by the timed and warm-up requests (one per request)

    def as_dict(self) -> dict[str, Any]:
        return {"p50_us": list(self.p50_us.as_tuple()), "mean_us": list(self.mean_us.as_tuple()),
                "p50_us_by_repetition": list(self.p50_by_repetition), "mean_us_by_repetition": list(self.mean_by_repetition),
                "repetitions": self.p50_us.repetitions, "requests_per_repetition": self.requests, "warmup": self.warmup,
                "instances_made": self.instances, "method": GEOMETRIC_METHOD}


def _figures(samples_ns: list[np.ndarray], instances: int, expected: int, requests: int, warmup: int) -> InstantiateOnly:
    """Each repetition's p50 and mean (µs) over its requests' ns, as geometric intervals over repetitions; refused
    unless the ``expected`` requests made as many instances (each must make its own, or the figure is not a request's)."""
    if instances != expected:
        raise RuntimeError(f"{expected} requests made {instances} instances; each must make its own")
    p50s = [float(np.percentile(s / 1000.0, 50)) for s in samples_ns]
    means = [float((s / 1000.0).mean()) for s in samples_ns]
    return InstantiateOnly(geometric_interval(p50s), geometric_interval(means), tuple(p50s), tuple(means), warmup,
                           requests, instances)


def time_requests(request: Callable[[], None], made: Callable[[], int], repetitions: int, requests: int,
                  warmup: int) -> InstantiateOnly:
    """``request`` run ``warmup`` times, then ``repetitions`` x ``requests`` times each timed; ``made()`` is how many
    instances the requests have made so far (checked: one per request, or the figure would not be a request's)."""
    clock = time.perf_counter_ns
    before = made()
    for _ in range(warmup):
        request()
    blocks = []
    for _ in range(repetitions):
        samples = np.empty(requests, dtype=np.int64)
        for i in range(requests):
            start = clock()
            request()
            samples[i] = clock() - start
        blocks.append(samples)
    return _figures(blocks, made() - before, warmup + repetitions * requests, requests, warmup)


def time_blocks(block: Callable[[int], np.ndarray], made: Callable[[], int], repetitions: int, requests: int,
                warmup: int) -> InstantiateOnly:
    """The same figures from a loop that times its own requests: ``block(n)`` serves ``n`` requests and returns each
    one's ns (the native path's C loop); one block of ``warmup`` requests, then one per repetition."""
    before = made()
    if warmup:
        block(warmup)
    blocks = [np.asarray(block(requests), dtype=np.int64) for _ in range(repetitions)]
    return _figures(blocks, made() - before, warmup + repetitions * requests, requests, warmup)
