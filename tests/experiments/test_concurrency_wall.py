"""Throughput and latency of a concurrency run agree: the wall time is that of the very requests served, from stamps
the workers take themselves, so no run can claim more service than its workers had time for.

A wall clock started in the main thread after the barrier (and after reading the kernel's counters) missed the
workers' first requests: 2000 requests on one thread once showed 532,545 req/s with a mean latency of 6.81 µs, that is
13.6 ms of service in a 3.8 ms wall.  The closed-loop bound below catches that on short runs."""

from __future__ import annotations

import pytest

from wasmlab.experiments.concurrency import Plan, build, concurrency
from wasmlab.experiments.concurrency_serve import serve, throughput_rps, wall_ns
from wasmlab.measure.scenario import Scenario

# perf_counter_ns and CLOCK_MONOTONIC tick in ns; each latency lies inside its worker's span, so the bound is exact
# but for rounding of the row's float columns.
TOLERANCE = 1.001


def test_wall_runs_from_the_earliest_start_to_the_latest_end_of_the_workers_own_stamps():
    # Worker 0 serves from 1,000 to 5,000 ns, worker 1 from 2,000 to 11,000: 10,000 ns of wall, not the sum or the
    # longest span (9,000).
    spans = [(2_000, 11_000), (1_000, 5_000)]
    assert wall_ns(spans) == 10_000
    # 50 requests in 10 µs: 5,000,000 per second.
    assert throughput_rps(50, spans) == pytest.approx(5e6)
    assert wall_ns([(7, 7 + 3_000)]) == 3_000 and throughput_rps(3, [(7, 7 + 3_000)]) == pytest.approx(1e6)


def test_a_closed_loop_of_known_latencies_cannot_serve_more_than_its_workers_had_time_for():
    """Two workers, each serving back to back: 4 requests of 2.5 µs (10 µs) and 2 of 5 µs (10 µs), started 1 µs apart.
    Wall 11 µs; 6 requests in 11 µs is 545,454.5 req/s; mean latency 3.333 µs; their product 1.818 <= 2 workers."""
    latencies = [[2_500] * 4, [5_000] * 2]
    spans = [(0, 10_000), (1_000, 11_000)]
    served = sum(map(len, latencies))
    rate = throughput_rps(served, spans)
    mean_s = sum(map(sum, latencies)) / served / 1e9
    assert rate == pytest.approx(6 / 11e-6)
    assert rate * mean_s == pytest.approx(20 / 11)
    assert rate * mean_s <= len(spans)


@pytest.mark.parametrize("call_path", ["native", "lean"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("requests", [200, 5000])
def test_each_worker_s_wall_holds_its_requests_and_throughput_times_latency_stays_within_the_workers(requests, threads, call_path):
    """Closed loop: a worker serves one request at a time, so its span holds the sum of its latencies, the run's wall
    holds the busiest worker's, threads x wall holds all of them, and throughput x mean latency <= threads."""
    scenario = Scenario(requests=requests, warmup=10, variants=("pooled+cached",))
    cache_mode = "per-worker" if call_path == "native" else "shared"
    plan = Plan.of(scenario, threads, "shared", cache_mode, call_path, None, None)
    served = serve(plan, build(plan).runtimes)
    wall = served.wall_ns
    for span, samples in zip(served.spans, served.samples, strict=True):
        assert span[1] - span[0] >= sum(samples), (span, sum(samples))
        assert wall >= sum(samples)
    assert threads * wall >= sum(map(sum, served.samples))

    row = concurrency(scenario, threads, "shared", call_path)
    busy_us = row["served_requests"] * row["latency_us_mean"]
    assert row["served_requests"] == threads * requests
    assert threads * row["wall_ms"] * 1e3 * TOLERANCE >= busy_us, row
    assert row["throughput_rps"] * row["latency_us_mean"] / 1e6 <= threads * TOLERANCE, row
