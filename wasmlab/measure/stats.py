"""Statistics: percentiles over requests, and ratios with intervals over repetitions (the unit that varies)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from wasmlab.measure.reuse_figures import variant_columns

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built, not by every command that imports this
    import pandas as pd

PERCENTILES = (50, 90, 99)
LATENCY_STATISTICS = ("mean", "std", "min", "max", *(f"p{p}" for p in PERCENTILES))
CONFIDENCE = 0.95


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


@dataclass(frozen=True)
class Ratio:
    """A ratio of two variants' figures with its interval, and how both were computed."""

    point: float
    low: float
    high: float
    repetitions: int
    method: str

    def as_tuple(self) -> tuple[float, float, float]:
        return self.point, self.low, self.high


# The unit of every interval is the repetition: requests within one repetition share the machine's
# state (frequency, other load, the allocator's warm slots), so they are not independent draws, and an
# interval over requests would be far too narrow.  Ratios are geometric means over repetitions with a
# Student-t interval on the log ratios: with five repetitions a percentile bootstrap covers the true
# ratio in ~82-92% of simulated runs, the t interval in ~95% (tests/measure/test_stats.py).
PAIRED_METHOD = ("geometric mean over repetitions of each repetition's ratio (variants paired by repetition), "
                 "95% Student-t interval on the log ratios over repetitions")
UNPAIRED_METHOD = ("ratio of geometric means over repetitions of the two runs, "
                   "95% Welch-t interval on the log per-repetition figures")


def _t(confidence: float, df: float) -> float:
    # Imported here: scipy.stats takes ~0.7 s to import, which every command and notebook kernel would pay.
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def geometric_mean(values: Sequence[float] | np.ndarray) -> float:
    """The geometric mean of positive ``values`` (nan when there are none)."""
    logs = np.log(np.asarray(values, dtype=np.float64))
    return float(np.exp(logs.mean())) if logs.size else float("nan")


def paired_ratio(numerator: Sequence[float] | np.ndarray, denominator: Sequence[float] | np.ndarray,
                 confidence: float = CONFIDENCE) -> Ratio:
    """``numerator / denominator`` for figures measured in the same repetitions (``numerator[i]`` and
    ``denominator[i]`` from repetition ``i``): see :data:`PAIRED_METHOD`.  One repetition: no interval."""
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired figures need one value per repetition on each side; got {a.size} and {b.size}")
    logs = np.log(a / b)
    n = int(logs.size)
    if n == 0:
        return Ratio(float("nan"), float("nan"), float("nan"), 0, PAIRED_METHOD)
    center = float(logs.mean())
    if n < 2:
        return Ratio(float(np.exp(center)), float("nan"), float("nan"), n, PAIRED_METHOD)
    half = _t(confidence, n - 1) * float(logs.std(ddof=1)) / np.sqrt(n)
    return Ratio(float(np.exp(center)), float(np.exp(center - half)), float(np.exp(center + half)), n, PAIRED_METHOD)


GEOMETRIC_METHOD = "geometric mean over repetitions, 95% Student-t interval on the log per-repetition figures"


def geometric_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Ratio:
    """One run's figure from its per-repetition values: :data:`GEOMETRIC_METHOD` (the ratio to 1, as a
    :class:`Ratio`).  One repetition: no interval."""
    figures = np.asarray(values, dtype=np.float64)
    found = paired_ratio(figures, np.ones_like(figures), confidence)
    return Ratio(found.point, found.low, found.high, found.repetitions, GEOMETRIC_METHOD)


def unpaired_ratio(numerator: Sequence[float] | np.ndarray, denominator: Sequence[float] | np.ndarray,
                   confidence: float = CONFIDENCE) -> Ratio:
    """``numerator / denominator`` for figures of independent runs (per-repetition values of each): see
    :data:`UNPAIRED_METHOD`."""
    a = np.log(np.asarray(numerator, dtype=np.float64))
    b = np.log(np.asarray(denominator, dtype=np.float64))
    n = int(min(a.size, b.size))
    if n == 0:
        return Ratio(float("nan"), float("nan"), float("nan"), 0, UNPAIRED_METHOD)
    center = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Ratio(float(np.exp(center)), float("nan"), float("nan"), n, UNPAIRED_METHOD)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = float(np.sqrt(va + vb))
    if se == 0:
        return Ratio(float(np.exp(center)), float(np.exp(center)), float(np.exp(center)), n, UNPAIRED_METHOD)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))  # Welch-Satterthwaite
    half = _t(confidence, df) * se
    return Ratio(float(np.exp(center)), float(np.exp(center - half)), float(np.exp(center + half)), n, UNPAIRED_METHOD)


def per_repetition(summary: pd.DataFrame, variant: str, column: str) -> pd.Series:
    """``column`` of ``variant``'s finished repetitions, indexed by repetition."""
    rows = summary[(summary["variant"] == variant) & (summary["status"] == "ok")]
    return rows.set_index("repetition")[column].astype(float)


def paired_by_repetition(summary: pd.DataFrame, numerator: str, denominator: str, column: str = "total_ms") -> Ratio:
    """``numerator``'s ``column`` over ``denominator``'s, paired by repetition (repetitions both finished)."""
    a, b = per_repetition(summary, numerator, column), per_repetition(summary, denominator, column)
    common = a.index.intersection(b.index)
    return paired_ratio(a.loc[common].to_numpy(), b.loc[common].to_numpy())


# Each call path's speedup is against the reference composition served on that same path: ``pooled+cached@native``
# over ``baseline@native``.  Against the lean baseline it would fold the binding's cost into the pooling claim; the
# paths' ratio to one another is reported on its own (report.text.path_table).
def call_path_of(summary: pd.DataFrame) -> dict[str, str]:
    """Each variant's call path: its ``call_path`` column (results since the lab ran several paths), else the
    ``@path`` suffix of its name, else ``""`` (the run's one path)."""
    paths: dict[str, str] = {}
    for variant, group in summary.groupby("variant", sort=False):
        named = group["call_path"].dropna().astype(str).tolist() if "call_path" in group else []
        paths[str(variant)] = named[0] if named else str(variant).partition("@")[2]
    return paths


def own_references(summary: pd.DataFrame, reference: str) -> dict[str, tuple[str | None, str]]:
    """Per variant: the variant of composition ``reference`` (its name without ``@path``) on the same call path,
    and ``""``; or ``None`` and why there is none (the speedup is then absent, never taken against another path).
    Where a path has two such variants (``baseline`` and ``baseline@lean``), the one with the same suffix wins."""
    composition = reference.partition("@")[0]
    paths = call_path_of(summary)
    finished = set(summary.loc[summary["status"] == "ok", "variant"])
    found: dict[str, tuple[str | None, str]] = {}
    for variant, path in paths.items():
        mine = [v for v, p in paths.items() if p == path and v.partition("@")[0] == composition]
        same_suffix = [v for v in mine if v.partition("@")[1:] == variant.partition("@")[1:]]
        ranked = [v for v in same_suffix + mine if v in finished]
        where = f"the {path} path" if path else "its call path"
        if ranked:
            found[variant] = (ranked[0], "")
        elif mine:
            found[variant] = (None, f"{mine[0]} did not finish, so {where} has no {composition} to compare against")
        else:
            found[variant] = (None, f"no {composition} on {where} in this run")
    return found


def speedup_columns(summary: pd.DataFrame, variants: Sequence[str], reference: str) -> dict[str, list[object]]:
    """The ``speedup*`` columns for ``variants``: each over :func:`own_references`'s variant, paired by repetition
    (:data:`PAIRED_METHOD`), with ``speedup_over`` naming that variant and ``speedup_note`` why a speedup is absent."""
    references = own_references(summary, reference)
    columns: dict[str, list[object]] = {name: [] for name in ("speedup", "speedup_ci_low", "speedup_ci_high",
                                                             "speedup_repetitions", "speedup_over", "speedup_note")}
    for variant in variants:
        over, note = references.get(variant, (None, f"{variant} is not in the run"))
        ratio = (paired_by_repetition(summary, over, variant) if over is not None
                 else Ratio(float("nan"), float("nan"), float("nan"), 0, PAIRED_METHOD))
        for name, value in (("speedup", ratio.point), ("speedup_ci_low", ratio.low), ("speedup_ci_high", ratio.high),
                            ("speedup_repetitions", ratio.repetitions), ("speedup_over", over or ""), ("speedup_note", note)):
            columns[name].append(value)
    return columns


def variant_table(summary: pd.DataFrame, samples: pd.DataFrame | None, reference: str | None = None) -> pd.DataFrame:
    """One row per variant: pooled percentiles over every timed request, the spread of the per-repetition
    means, the geometric mean of the per-repetition total times, and the speedup over the ``reference`` composition
    on the variant's own call path (the ratio of those totals, paired by repetition: :data:`PAIRED_METHOD`;
    ``speedup_over`` names it, ``speedup_note`` says why a path without one has no speedup).
    """
    import pandas as pd

    ok = summary[summary["status"] == "ok"]
    rows = []
    for variant, group in ok.groupby("variant", sort=False):
        row: dict[str, object] = {"variant": variant, "repetitions": len(group), "requests": int(group["requests"].sum())}
        if "call_path" in group:
            row["call_path"] = str(group["call_path"].iloc[0])
        if samples is not None and not samples.empty:
            mine = samples[samples["variant"] == variant]
            if "outcome" in mine and "workload_expected_outcome" in group:
                # Latencies of served requests only: a failed request is reported, not timed as service.
                expected = str(group["workload_expected_outcome"].iloc[0]).split("(")[0]
                served = mine[mine["outcome"].astype(str).str.split("(").str[0] == expected]
                mine = served if not served.empty else mine
            row.update(describe_ns(mine["latency_ns"].to_numpy()))
            row.update(variant_columns(group, mine))
        else:
            row.update(variant_columns(group, None))
            row.update({c: float(group[c].median()) for c in group.columns if c.startswith("latency_us_")})
        row["mean_us_rep_min"] = float(group["latency_us_mean"].min())
        row["mean_us_rep_max"] = float(group["latency_us_mean"].max())
        # The geometric mean, so that the ratio of two variants' totals is exactly their speedup (see paired_ratio).
        row["total_ms_per_repetition"] = geometric_mean(group["total_ms"])
        row["throughput_rps"] = float(group["throughput_rps"].median())
        row["minor_faults_per_request"] = float(group["minor_faults_per_request"].median())
        for c in ("cache_hit_rate", "compile_ms_total", "cache_lookup_ns", "crossings_per_request", "dispatch_ns_per_request",
                  "output_check_ns_per_request"):
            if c in group:  # cache_lookup_ns: recorded since results format 1's second revision of the harness
                row[c] = float(group[c].median())
        for c in group.columns:
            if c.startswith("outcome_") or c in ("pool_waits", "pool_wait_ms", "served_requests", "failed_requests"):
                row[c] = float(group[c].sum()) if c == "pool_wait_ms" else int(group[c].sum())
        if "first_failure" in group:
            failures = [f for f in group["first_failure"] if f]
            row["first_failure"] = failures[0] if failures else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    if reference is not None and not table.empty:
        columns = speedup_columns(summary, list(table["variant"]), reference)
        if any(columns["speedup_over"]):  # no path served the reference: no speedup column at all, as before paths
            table = table.assign(**columns)
    return table
