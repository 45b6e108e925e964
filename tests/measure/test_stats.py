"""The statistics, on data of known truth: percentiles of known samples, ratio directions, and the coverage
of the intervals when repetitions shift (the noise the lab really sees)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wasmlab.measure.stats import describe_ns, geometric_mean, paired_by_repetition, paired_ratio, unpaired_ratio

TRUE_RATIO = 60.0


def test_percentiles_and_mean_of_known_samples():
    stats = describe_ns(np.arange(1, 101) * 1000)  # 1..100 µs
    assert stats["latency_us_mean"] == pytest.approx(50.5)
    assert stats["latency_us_p50"] == pytest.approx(50.5)
    assert stats["latency_us_p90"] == pytest.approx(90.1)
    assert stats["latency_us_p99"] == pytest.approx(99.01)
    assert (stats["latency_us_min"], stats["latency_us_max"]) == (1.0, 100.0)


def test_ratio_direction_and_exact_values():
    r = paired_ratio([300.0, 600.0], [5.0, 10.0])
    assert r.point == pytest.approx(60.0) and r.low == pytest.approx(60.0) and r.high == pytest.approx(60.0)
    assert paired_ratio([5.0, 10.0], [300.0, 600.0]).point == pytest.approx(1 / 60)
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert unpaired_ratio([8.0, 8.0], [2.0, 2.0]).point == pytest.approx(4.0)
    one = paired_ratio([300.0], [5.0])
    assert one.point == pytest.approx(60.0) and math.isnan(one.low) and one.repetitions == 1


def _simulated(rng: np.random.Generator, repetitions: int, shared: float = 0.10, own: float = 0.10) -> tuple[np.ndarray, np.ndarray]:
    """Per-repetition totals of a slow and a fast variant: a +-10% shift both share in a repetition (the
    machine) and +-10% of their own (the baseline's tail, a slot's reset).  The true ratio is TRUE_RATIO."""
    machine = rng.normal(0, shared, repetitions)
    return 300.0 * np.exp(machine + rng.normal(0, own, repetitions)), 5.0 * np.exp(machine + rng.normal(0, own, repetitions))


@pytest.mark.parametrize("repetitions", [3, 5, 10])
def test_the_paired_interval_covers_the_true_ratio_about_95_percent_of_the_time(repetitions):
    rng = np.random.default_rng(20261201 + repetitions)
    runs = 2000
    covered = sum(r.low <= TRUE_RATIO <= r.high for r in (paired_ratio(*_simulated(rng, repetitions)) for _ in range(runs)))
    assert 0.93 <= covered / runs <= 0.97


def test_the_unpaired_interval_covers_the_true_ratio_of_two_independent_runs():
    rng = np.random.default_rng(7)
    runs, covered = 2000, 0
    for _ in range(runs):
        a, _ = _simulated(rng, 5)
        b, _ = _simulated(rng, 5)
        r = unpaired_ratio(a * 1.1, b)  # B is 10% slower
        covered += r.low <= 1.1 <= r.high
    assert 0.93 <= covered / runs <= 0.98


def test_intervals_over_requests_would_not_cover(monkeypatch):
    """Why the unit is the repetition: treating 1000 requests per repetition as independent gives an
    interval that misses the true ratio most of the time when repetitions shift."""
    rng = np.random.default_rng(3)
    runs, covered = 300, 0
    for _ in range(runs):
        base, fast = _simulated(rng, 5)
        requests_b = np.repeat(base, 1000) * rng.lognormal(0, 0.05, 5000)
        requests_f = np.repeat(fast, 1000) * rng.lognormal(0, 0.05, 5000)
        se = math.sqrt(np.var(np.log(requests_b)) / 5000 + np.var(np.log(requests_f)) / 5000)
        center = np.log(requests_b).mean() - np.log(requests_f).mean()
        covered += math.exp(center - 1.96 * se) <= TRUE_RATIO <= math.exp(center + 1.96 * se)
    assert covered / runs < 0.5


def test_paired_by_repetition_pairs_the_repetitions_both_variants_finished():
    summary = pd.DataFrame({
        "variant": ["baseline"] * 3 + ["pooled+cached"] * 3,
        "repetition": [0, 1, 2, 0, 1, 2],
        "status": ["ok", "ok", "ok", "ok", "error", "ok"],
        "total_ms": [300.0, 999.0, 600.0, 5.0, 1.0, 10.0],
    })
    r = paired_by_repetition(summary, "baseline", "pooled+cached")
    assert r.repetitions == 2 and r.point == pytest.approx(60.0)
