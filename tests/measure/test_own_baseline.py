"""Each call path's speedup is over the baseline of its own path, on per-repetition totals of known truth: a lean
speedup of exactly LEAN_SPEEDUP, a native one of exactly NATIVE_SPEEDUP, and native/lean of exactly NATIVE_OVER_LEAN.
Over the lean baseline (one reference for every path) the native speedup would be NATIVE_SPEEDUP / NATIVE_BASELINE_OVER_LEAN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wasmlab.measure.measurement import Measurement
from wasmlab.measure.stats import own_references, variant_table
from wasmlab.report import text

LEAN_SPEEDUP, NATIVE_SPEEDUP, NATIVE_OVER_LEAN = 60.0, 150.0, 0.5
# What follows for the baselines: native pooled+cached = lean pooled+cached * NATIVE_OVER_LEAN.
NATIVE_BASELINE_OVER_LEAN = NATIVE_OVER_LEAN * NATIVE_SPEEDUP / LEAN_SPEEDUP  # 1.25
REQUESTS = 1000
# The machine's state moves every total of a repetition alike; the ratios within a repetition are exact.
LEAN_BASELINE_MS = np.array([300.0, 420.0, 250.0, 510.0, 380.0])


def rows(variant: str, path: str, totals: np.ndarray, status: str = "ok") -> list[dict[str, object]]:
    return [{"variant": variant, "call_path": path, "repetition": rep, "status": status, "requests": REQUESTS, "total_ms": total,
             "latency_us_mean": total * 1000 / REQUESTS, "latency_us_p50": total * 900 / REQUESTS,
             "latency_us_p90": total * 1100 / REQUESTS, "latency_us_p99": total * 2000 / REQUESTS,
             "latency_us_min": total * 800 / REQUESTS, "latency_us_max": total * 5000 / REQUESTS, "cache_hit_rate": 0.0,
             "throughput_rps": REQUESTS / total * 1000, "minor_faults_per_request": 0.0}
            for rep, total in enumerate(totals)]


def known_summary(native_baseline_status: str = "ok") -> pd.DataFrame:
    native_baseline = LEAN_BASELINE_MS * NATIVE_BASELINE_OVER_LEAN
    return pd.DataFrame([
        *rows("baseline", "lean", LEAN_BASELINE_MS),
        *rows("pooled+cached", "lean", LEAN_BASELINE_MS / LEAN_SPEEDUP),
        *rows("baseline@native", "native", native_baseline, native_baseline_status),
        *rows("pooled+cached@native", "native", native_baseline / NATIVE_SPEEDUP),
        # Pinned to a path whose baseline the run did not serve: no speedup, rather than one over lean's.
        *rows("pooled+cached@api", "api", LEAN_BASELINE_MS / LEAN_SPEEDUP * 3),
    ])


def measurement_of(summary: pd.DataFrame) -> Measurement:
    return Measurement(summary, pd.DataFrame(), pd.DataFrame(), {"parameters": {"call_path": "lean"}, "requests": REQUESTS})


def test_each_path_s_speedup_is_over_its_own_baseline_and_the_path_ratio_is_separate():
    table = variant_table(known_summary(), None, "baseline").set_index("variant")
    lean, native = table.loc["pooled+cached"], table.loc["pooled+cached@native"]
    assert lean["speedup"] == pytest.approx(LEAN_SPEEDUP) and lean["speedup_over"] == "baseline"
    # Exact per repetition, so the interval is the point itself.
    assert (native["speedup"], native["speedup_ci_low"], native["speedup_ci_high"]) == pytest.approx((NATIVE_SPEEDUP,) * 3)
    assert native["speedup_over"] == "baseline@native" and native["speedup_repetitions"] == 5
    assert table.loc["baseline@native", "speedup"] == pytest.approx(1.0)
    ratio = text.native_over_lean(measurement_of(known_summary()))
    assert ratio is not None and ratio["ratio"] == pytest.approx(NATIVE_OVER_LEAN)
    assert (ratio["ci95_low"], ratio["ci95_high"], ratio["median_ratio"]) == pytest.approx((NATIVE_OVER_LEAN,) * 3)
    baseline_ratio = text.path_ratios(measurement_of(known_summary()))["native_over_lean"].set_index("variant").loc["baseline"]
    assert baseline_ratio["ratio"] == pytest.approx(NATIVE_BASELINE_OVER_LEAN)


def test_a_path_without_its_own_baseline_has_no_speedup_and_says_why():
    table = variant_table(known_summary(), None, "baseline").set_index("variant")
    api = table.loc["pooled+cached@api"]
    assert math.isnan(api["speedup"]) and api["speedup_over"] == "" and api["speedup_repetitions"] == 0
    assert api["speedup_note"] == "no baseline on the api path in this run"
    failed = variant_table(known_summary("error"), None, "baseline").set_index("variant").loc["pooled+cached@native"]
    assert math.isnan(failed["speedup"]) and "baseline@native did not finish" in failed["speedup_note"]


def test_the_reference_is_found_by_path_column_or_suffix_and_prefers_the_same_suffix():
    summary = known_summary().drop(columns="call_path")  # results from before the column: the suffix says the path
    assert own_references(summary, "baseline")["pooled+cached@native"] == ("baseline@native", "")
    assert own_references(summary, "baseline")["pooled+cached"] == ("baseline", "")
    both = pd.concat([known_summary(), pd.DataFrame(rows("baseline@lean", "lean", LEAN_BASELINE_MS * 2))])
    references = own_references(both, "baseline")
    assert references["pooled+cached"] == ("baseline", "") and references["baseline@lean"] == ("baseline@lean", "")
