"""Warm-up: the untimed requests each variant serves before anything is timed, one concept in one place.

A warm-up is a count (the default, 200: enough for a request of microseconds, where caches, pool slots and code
paths need a few hundred requests to settle), cut short once it has taken :data:`COUNT_BUDGET_S` seconds so that a
guest of seconds per request does not spend minutes warming up (``budget``; at least one request runs), or ``auto``,
for guests whose requests take from milliseconds to seconds (a standard suite's: Sightglass benchmarks take 3 ms to
25 s), where a count is either far too short or cut by the time, not by the guest settling.  ``auto`` times each warm-up request and stops at the first of:

* ``stable``: the median of the last :attr:`AutoWarmup.window` requests is within :attr:`AutoWarmup.tolerance` of the
  median of the window before it (so at least two windows run);
* ``budget``: the warm-up has taken :attr:`AutoWarmup.budget_s` seconds (a 25 s request stops after one);
* ``max``: :attr:`AutoWarmup.max_requests` requests ran (never more than the fixed default).

At least one request always runs.  Which one ended it, and how many requests ran, are recorded per variant
(``warmup_requests``, ``warmup_stopped`` in the summary) and printed with the figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.host.outcomes import REQUEST_FAILURES

AUTO = "auto"
# A counted warm-up ends here if its count has not: "200 requests or 2 s, whichever ends first".
COUNT_BUDGET_S = 2.0
# Why a warm-up stopped: its fixed count reached, or one of ``auto``'s three rules.
STOPS = ("count", "stable", "budget", "max")


@dataclass(frozen=True)
class AutoWarmup:
    """The rules of ``--warmup auto`` (see the module docstring); the defaults are what ``auto`` means."""

    window: int = 5
    tolerance: float = 0.05
    budget_s: float = 10.0
    max_requests: int = 200

    def stop(self, times_ns: Sequence[int], elapsed_ns: int) -> str | None:
        """Why the warm-up stops after the requests that took ``times_ns`` (``elapsed_ns`` in all), or ``None``."""
        if not times_ns:
            return None
        if elapsed_ns >= self.budget_s * 1e9:
            return "budget"
        if len(times_ns) >= self.max_requests:
            return "max"
        if len(times_ns) >= 2 * self.window:
            last = statistics.median(times_ns[-self.window:])
            before = statistics.median(times_ns[-2 * self.window:-self.window])
            if abs(last - before) <= self.tolerance * before:
                return "stable"
        return None


Warmup = int | AutoWarmup


def parse_warmup(value: Any) -> Warmup:
    """A warm-up as written (an integer >= 0, its text, or ``auto``), or a one-line ConfigError naming it."""
    if isinstance(value, AutoWarmup):
        return value
    if isinstance(value, str) and value.strip() == AUTO:
        return AutoWarmup()
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problem = "is out of range" if isinstance(value, int) and not isinstance(value, bool) else "is not a warm-up"
        raise ConfigError(f"warmup = {value!r} {problem}; allowed: an integer >= 0 (requests) or auto (until the request time "
                          f"is stable, {AutoWarmup().budget_s:g} s or {AutoWarmup().max_requests} requests)")
    return value


def fixed_warmup(value: Any, where: str) -> int:
    """A warm-up that must be a count (``where`` runs a fixed number per worker), or one line saying so."""
    parsed = parse_warmup(value)
    if isinstance(parsed, AutoWarmup):
        raise ConfigError(f"warmup auto applies to wasmlab reproduce and its sweeps; allowed for {where}: an integer >= 0")
    return parsed


@dataclass(frozen=True)
class WarmupDone:
    """What one variant's warm-up did: how many requests ran and why it stopped (one of :data:`STOPS`)."""

    requests: int
    stopped: str
    # The warm-up's wall time and its first request's: what a request costs, for a time budget (wasmlab.measure.budget).
    elapsed_ns: int = 0
    first_ns: int = 0

    @property
    def ns_per_request(self) -> float:
        """A warm request's mean cost: the first request left out where others ran (it compiles for a cached variant)."""
        if self.requests > 1:
            return (self.elapsed_ns - self.first_ns) / (self.requests - 1)
        return float(self.elapsed_ns)

    def columns(self) -> dict[str, Any]:
        return {"warmup_requests": self.requests, "warmup_stopped": self.stopped, "warmup_ns_per_request": self.ns_per_request}


def warm_up(runtime: Any, indices: Sequence[int], warmup: Warmup) -> WarmupDone:
    """Serve ``runtime``'s untimed warm-up requests (the trace's, in order, from its start), then reset its cache's
    counters so that hit rates describe timed requests."""
    handle = runtime.handle
    clock = time.perf_counter_ns
    start = clock()
    if not isinstance(warmup, AutoWarmup):
        deadline, served, first = start + int(COUNT_BUDGET_S * 1e9), 0, 0
        while served < warmup and (served == 0 or clock() < deadline):
            _serve(handle, indices[served % len(indices)])
            served += 1
            first = first or clock() - start
        done = WarmupDone(served, "count" if served == warmup else "budget", clock() - start, first)
    else:
        times: list[int] = []
        stopped = None
        while stopped is None:
            before = clock()
            _serve(handle, indices[len(times) % len(indices)])
            after = clock()
            times.append(after - before)
            stopped = warmup.stop(times, after - start)
        done = WarmupDone(len(times), stopped, clock() - start, times[0])
    runtime.cache.reset_stats()
    return done


def _serve(handle: Any, index: int) -> None:
    try:
        handle(index)
    except REQUEST_FAILURES:
        pass  # a hostile guest fails every request; its outcomes are counted when timed


def describe(warmup: Any, done: dict[str, WarmupDone] | None = None) -> str:
    """The warm-up in words for the figures' lines: ``200 warm-up``, ``200 warm-up or 2 s (baseline 3 requests, budget)``
    where the time ran out first, or ``auto warm-up (cached 12 requests, stable; ...)``."""
    if not isinstance(parse_warmup(warmup), AutoWarmup):
        short = "; ".join(f"{name} {d.requests} requests, budget" for name, d in (done or {}).items() if d.stopped == "budget")
        return f"{warmup} warm-up or {COUNT_BUDGET_S:g} s ({short})" if short else f"{warmup} warm-up"
    per_variant = "; ".join(f"{name} {d.requests} requests, {d.stopped}" for name, d in (done or {}).items())
    return f"auto warm-up ({per_variant})" if per_variant else "auto warm-up"
