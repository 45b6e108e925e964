"""The time budget of timed requests (issue 30): "N requests per repetition, or fewer that fit S seconds", fitted from
each variant's warm-up as criterion fits its iteration count, every variant and repetition serving the same requests.

The fitting and the warm-up's calibration are checked on numbers of known truth; the whole with real wasmtime on a
guest of tens of milliseconds per request, where a budget ignored, or fitted to one repetition instead of all, spends
several times the budget (and a fit from the warm-up's first, compiling request would serve far fewer requests)."""

from __future__ import annotations

import pytest

from tests.host.suite_guests import SLOW
from wasmlab.errors import ConfigError
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.budget import fit, parse_budget
from wasmlab.measure.isolate import _budget_share
from wasmlab.measure.warmup import WarmupDone
from wasmlab.report import text


def test_a_budget_is_seconds_or_a_duration_and_zero_is_none():
    assert [parse_budget(v) for v in (30, 2.5, "30", "30s", "2.5s", "500ms", "2m", 0, "0", "", None)] == \
        [30.0, 2.5, 30.0, 30.0, 2.5, 0.5, 120.0, None, None, None, None]
    for bad in ("1x", "-3", -3, "s", True, float("inf"), "3 h"):
        with pytest.raises(ConfigError, match=r"^time budget .* is not a duration; allowed: a positive number of seconds"):
            parse_budget(bad)


def test_the_fit_is_the_most_requests_whose_predicted_time_fits_every_variant_and_repetition():
    costs = {"baseline": 4e6, "cached": 1e6}  # 4 ms and 1 ms a request: 5 ms for one request of each
    assert fit(1.0, 1000, costs, repeats=2, phases=False).requests == 100  # 100 x 5 ms x 2 repetitions = 1 s
    assert fit(1.0, 1000, costs, repeats=2, phases=True).requests == 50  # the phased re-run serves them again
    assert fit(1.0, 30, costs, repeats=2, phases=False).requests == 30  # never more than asked
    tiny = fit(0.001, 1000, costs, repeats=5, phases=False)
    assert tiny.requests == 1 and tiny.cut and tiny.predicted_s == pytest.approx(0.025)  # one at least, said as predicted
    assert fit(1.0, 1000, costs, repeats=2, phases=False).predicted_s == pytest.approx(1.0)


def test_the_calibration_leaves_out_the_warm_up_s_first_request():
    """A cached variant's first request compiles: 200 ms then two of 50 ms is 50 ms a warm request, not 100."""
    assert WarmupDone(3, "count", elapsed_ns=300_000_000, first_ns=200_000_000).ns_per_request == 50_000_000
    assert WarmupDone(1, "budget", elapsed_ns=7_000, first_ns=7_000).ns_per_request == 7_000  # alone, it is all there is


def test_an_isolated_variant_fits_its_equal_share_of_the_budget():
    measurement = scenarios.Scenario(time_budget="9s", variants="baseline,cached,pooled").measurement
    assert _budget_share(measurement, 3).time_budget == 3.0
    assert _budget_share(scenarios.Scenario().measurement, 3).time_budget is None


@pytest.mark.timeout(120)
def test_a_run_serves_the_requests_that_fit_its_budget_and_says_so(tmp_path):
    slow = tmp_path / "slow.wat"
    slow.write_text(SLOW)
    budget, repeats = 0.6, 3
    scenario = scenarios.Scenario(workload=str(slow), entry="run", expect=7, variants="cached,pooled+cached", call_path="lean",
                                  requests=1000, repeats=repeats, warmup=3, time_budget=f"{budget}s", rounds=1)
    measurement = scenarios.run(scenario)
    meta, summary, samples = measurement.metadata, measurement.summary, measurement.samples
    served = meta["requests"]
    assert meta["time_budget_s"] == budget and meta["requests_asked"] == 1000 and 1 <= served < 1000
    assert (summary["status"] == "ok").all() and set(summary["requests"]) == {served}  # every variant and repetition alike
    assert len(samples) == served * repeats * 2
    timed_s = samples["latency_ns"].sum() / 1e9
    # Ignoring the budget times 1000 requests; fitting one repetition times `repeats` budgets: both far above 2x.
    assert timed_s <= 2 * budget, (timed_s, served)
    # Serving one request whatever the budget leaves most of it unused.
    assert timed_s >= 0.2 * budget, (timed_s, served)
    assert f"in a {budget:g} s budget: {served} of 1000 requests per repetition, predicted " in text.provenance(measurement)
