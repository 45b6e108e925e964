"""Statistics over latency samples: percentiles, spreads and bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _stats

PERCENTILES = (50, 90, 99)
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000


def describe_ns(samples_ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, min, max and ``PERCENTILES`` of samples in ns, reported in µs."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    out = {
        "latency_us_mean": float(us.mean()),
        "latency_us_std": float(us.std(ddof=1)) if us.size > 1 else 0.0,
        "latency_us_min": float(us.min()),
        "latency_us_max": float(us.max()),
    }
    for p, value in zip(PERCENTILES, np.percentile(us, PERCENTILES)):
        out[f"latency_us_p{p}"] = float(value)
    return out


def _bootstrap_ratio(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    center: Callable[..., np.ndarray],
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float, float, float]:
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    point = float(center(a) / center(b))
    if a.size < 2 or b.size < 2:
        return point, float("nan"), float("nan")
    # The two samples come from different variants, so they are resampled independently.
    result = _stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: center(x, axis=axis) / center(y, axis=axis),
        paired=False,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def ratio_ci(
    numerator_ns: Sequence[float] | np.ndarray,
    denominator_ns: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of means ``mean(numerator) / mean(denominator)`` with a percentile-bootstrap interval."""
    return _bootstrap_ratio(numerator_ns, denominator_ns, np.mean, confidence, resamples, seed)


def median_ratio_ci(
    numerator: Sequence[float] | np.ndarray,
    denominator: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians with a percentile-bootstrap interval (as pyperf's compare reports)."""
    return _bootstrap_ratio(numerator, denominator, np.median, confidence, resamples, seed)


def variant_table(summary: pd.DataFrame, samples: pd.DataFrame | None, reference: str | None = None) -> pd.DataFrame:
    """One row per variant: pooled percentiles over every timed request, the spread of the
    per-repetition means, and the speedup over ``reference`` (ratio of means, bootstrap CI).
    """
    ok = summary[summary["status"] == "ok"]
    rows = []
    for variant, group in ok.groupby("variant", sort=False):
        row: dict[str, object] = {"variant": variant, "repetitions": len(group), "requests": int(group["requests"].sum())}
        if samples is not None and not samples.empty:
            row.update(describe_ns(samples.loc[samples["variant"] == variant, "latency_ns"].to_numpy()))
        else:
            row.update({c: float(group[c].median()) for c in group.columns if c.startswith("latency_us_")})
        row["mean_us_rep_min"] = float(group["latency_us_mean"].min())
        row["mean_us_rep_max"] = float(group["latency_us_mean"].max())
        row["total_ms_per_repetition"] = float(group["total_ms"].median())
        row["throughput_rps"] = float(group["throughput_rps"].median())
        row["minor_faults_per_request"] = float(group["minor_faults_per_request"].median())
        for c in ("cache_hit_rate", "compile_ms_total"):
            row[c] = float(group[c].median())
        for c in group.columns:
            if c.startswith("outcome_") or c in ("pool_waits", "pool_wait_ms"):
                row[c] = float(group[c].sum()) if c == "pool_wait_ms" else int(group[c].sum())
        if "first_failure" in group:
            failures = [f for f in group["first_failure"] if f]
            row["first_failure"] = failures[0] if failures else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    if reference is not None and not table.empty and reference in set(table["variant"]):
        ref_samples = None if samples is None else samples.loc[samples["variant"] == reference, "latency_ns"].to_numpy()
        ref_mean = float(table.loc[table["variant"] == reference, "latency_us_mean"].iloc[0])
        speedups, lows, highs = [], [], []
        for variant in table["variant"]:
            if samples is not None and ref_samples is not None and ref_samples.size:
                point, low, high = ratio_ci(ref_samples, samples.loc[samples["variant"] == variant, "latency_ns"].to_numpy())
            else:
                point = ref_mean / float(table.loc[table["variant"] == variant, "latency_us_mean"].iloc[0])
                low = high = float("nan")
            speedups.append(point)
            lows.append(low)
            highs.append(high)
        table["speedup"] = speedups
        table["speedup_ci_low"] = lows
        table["speedup_ci_high"] = highs
    return table
