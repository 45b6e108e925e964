"""The short printout (``wasmlab report`` after ``make demo``): every composition a row, every call path its µs per
request and speedup over that path's own baseline, on a summary of known totals; the figures agree with the seed
table's and a path without a baseline says so instead of showing a ratio over another path's."""

from __future__ import annotations

import re

import pytest
from scipy.stats import gmean

from tests.measure.test_own_baseline import LEAN_BASELINE_MS, LEAN_SPEEDUP, NATIVE_SPEEDUP, REQUESTS, known_summary, measurement_of
from wasmlab.report.brief import _speedup, variants_by_path


def cells(shown: str, variant: str) -> list[str]:
    row = next(line for line in shown.splitlines() if line.split()[0] == variant)
    return re.split(r"\s{2,}", row.strip())


def test_every_composition_is_one_row_with_each_path_s_figure_and_speedup_over_that_path_s_baseline():
    shown = variants_by_path(measurement_of(known_summary()))
    header = re.split(r"\s{2,}|\s(?=\w+ (?:µs|speedup))", shown.splitlines()[0].strip())
    assert header[0] == "variant" and "lean µs" in shown and "native µs" in shown and "api µs" in shown
    assert [line.split()[0] for line in shown.splitlines()[1:]] == ["baseline", "pooled+cached"]  # the lab's one order
    lean_base_us = gmean(LEAN_BASELINE_MS) * 1000 / REQUESTS  # the seed's statistic: geometric mean of totals, per request
    base = cells(shown, "baseline")
    assert base[1] == f"{lean_base_us:.1f}" and base[2] == "1x (the reference)"
    best = cells(shown, "pooled+cached")
    assert best[1] == f"{lean_base_us / LEAN_SPEEDUP:.2f}"
    # Exact per repetition here, so each interval is the point itself.
    assert best[2] == f"{LEAN_SPEEDUP:.1f}x ({LEAN_SPEEDUP:.1f}-{LEAN_SPEEDUP:.1f})"
    assert best[4] == f"{NATIVE_SPEEDUP:.1f}x ({NATIVE_SPEEDUP:.1f}-{NATIVE_SPEEDUP:.1f})"
    # The api path served no baseline: its figure is shown, its speedup is not made up over lean's.
    assert best[5] == f"{lean_base_us / LEAN_SPEEDUP * 3:.2f}" and best[6] == "no baseline on api"
    assert base[5] == base[6] == "-"


@pytest.mark.parametrize("speedup, low, high, shown", [(1.0234, 0.98, 1.06, "1.02x (0.98-1.06)"),
                                                    (66.71, 61.52, 72.44, "66.7x (61.5-72.4)")])
def test_a_speedup_near_one_keeps_two_decimals_so_noise_is_not_rounded_into_a_gain(speedup, low, high, shown):
    row = {"variant": "pooled", "speedup_over": "baseline", "speedup": speedup, "speedup_ci_low": low, "speedup_ci_high": high}
    assert _speedup(row) == shown


def test_the_points_line_gives_the_range_and_says_whether_the_intervals_overlap():
    import pandas as pd

    from wasmlab.report.brief import points_line

    def points(intervals):
        return pd.DataFrame([{"param_slots": slots, "call_path": "lean", "speedup": (low + high) / 2, "ci95_low": low, "ci95_high": high}
                             for slots, (low, high) in zip((4, 20), intervals, strict=True)])

    overlapping = points([(60.0, 70.0), (65.0, 75.0)])
    assert points_line(overlapping, ["param_slots"]) == ("2 points (slots 4, 20), pooled+cached over baseline on the lean "
                                                          "path:\n  from 65.0x (slots=4) to 70.0x (slots=20); all intervals "
                                                          "overlap: no difference beyond noise")
    apart = points([(60.0, 64.0), (65.0, 75.0)])  # 64 < 65: the points differ beyond noise
    assert points_line(apart, ["param_slots"]).endswith("not all intervals overlap: the report shows which points differ")
    single = points([(float("nan"), float("nan")), (65.0, 75.0)])  # one repetition: no interval, so no verdict
    assert points_line(single, ["param_slots"]).endswith("no intervals (a point of one repetition has none)")


def test_the_legend_says_what_each_call_path_of_the_table_is_and_no_other():
    from wasmlab.host.callpaths import REGISTRY
    from wasmlab.report.brief import path_legend

    summary = known_summary()
    legend = path_legend(measurement_of(summary))
    assert legend.split("; ") == [f"{p}: {REGISTRY[p].gloss}" for p in ("lean", "native", "api")]
    lean_only = summary[~summary["variant"].str.contains("@")]
    assert path_legend(measurement_of(lean_only)) == f"lean: {REGISTRY['lean'].gloss}"
