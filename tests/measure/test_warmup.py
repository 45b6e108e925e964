"""Warm-up (issue 30): a fixed count, or ``auto`` until the request time is stable, a time budget or a maximum count,
at least one request; how many ran and why it stopped recorded per variant and printed with the figures.

The stop rule is checked on series of known shape; the warm-up itself with real wasmtime on every call path, its
requests counted by the guest (a host function it calls once per request), so a warm-up that claims requests it did
not serve, or ``auto`` that always stops after one, fails here."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import small_pool_engine
from tests.host.suite_guests import SLOW
from tests.host.test_cheats import calls, guest  # noqa: F401 - calls: the fixture of the counting host function
from wasmlab.cli import main
from wasmlab.config import CacheConfig
from wasmlab.errors import ConfigError
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.warmup import AutoWarmup, parse_warmup, warm_up

PATHS = ("lean", "api", "native")
COUNTING = """(module
  (import "wasmlab_test_counter" "next" (func $next (result i32)))
  (func (export "run") (result i32) (drop (call $next)) (i32.const 42)))"""


def test_the_rule_stops_when_the_last_window_s_median_is_within_tolerance_of_the_one_before():
    rule = AutoWarmup()
    assert rule.stop([], 0) is None
    settling = [1000, 500, 300, 200, 150, 120, 110, 105, 100, 100]
    assert all(rule.stop(settling[:n], 0) is None for n in range(1, 11))  # still falling: 105 against 300
    steady = [*settling, 101, 99, 100, 102, 100]
    assert rule.stop(steady[:14], 0) is None and rule.stop(steady, 0) == "stable"  # 100 against 105: within 5%
    assert rule.stop([100] * 9, 0) is None and rule.stop([100] * 10, 0) == "stable"  # two windows at least
    assert rule.stop([100, 150] * 5, 0) is None and rule.stop([100] * 5 + [106] * 5, 0) is None
    assert rule.stop([25_000_000_000], 25_000_000_000) == "budget"  # a 25 s request: one, and done
    assert AutoWarmup(max_requests=3).stop([300, 200, 100], 600) == "max"


def test_a_warmup_is_a_count_or_auto_and_nothing_else():
    assert parse_warmup(0) == 0 and parse_warmup("12") == 12 and parse_warmup("auto") == AutoWarmup()
    for bad in (-1, "-1", "auto5", "2x", 1.5, True, None):
        with pytest.raises(ConfigError, match=r"^warmup = .* allowed: an integer >= 0 \(requests\) or auto"):
            parse_warmup(bad)
    assert scenarios.Scenario(warmup="auto").measure_config().warmup == AutoWarmup()
    assert scenarios.Scenario.from_dict({"warmup": "auto"}).to_dict()["warmup"] == "auto"  # a sweep point's, stored as given
    with pytest.raises(ConfigError, match="warmup = 'auto5' is not a warm-up"):
        scenarios.Scenario(warmup="auto5")


def runtime_of(path: str, wat: str, expected: int, **fields):
    workload = guest("warm", wat, expected, **fields)
    return build_runtimes(["pooled+cached"], small_pool_engine(2), CacheConfig(), [workload], call_path=path,
                          engines=EnginePool())["pooled+cached"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_auto_serves_every_request_it_counts_and_stops_by_its_rule(calls, path):  # noqa: F811
    runtime = runtime_of(path, COUNTING, 42, host_imports="wasmlab_test_counter")
    try:
        calls[0] = 0
        done = warm_up(runtime, [0], AutoWarmup())
        assert calls[0] == done.requests  # every request it counts was served, no more
        assert done.stopped in ("stable", "max") and done.requests >= 2 * AutoWarmup().window, done
        calls[0] = 0
        fixed = warm_up(runtime, [0], 7)
        assert (calls[0], fixed.requests, fixed.stopped) == (7, 7, "count")
        capped = warm_up(runtime, [0], AutoWarmup(tolerance=-1.0, max_requests=13))  # never stable: the cap ends it
        assert (capped.requests, capped.stopped) == (13, "max")
        assert runtime.cache.stats.hits == 0  # counters reset: hit rates describe timed requests
    finally:
        runtime.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_slow_guest_stops_at_the_budget_after_one_request_at_least(path):
    """A request longer than the budget: one warm-up request, stopped by the budget (a fixed 200 would take 200)."""
    runtime = runtime_of(path, SLOW, 7)
    try:
        done = warm_up(runtime, [0], AutoWarmup(budget_s=0.001))
        assert (done.requests, done.stopped) == (1, "budget")
        done = warm_up(runtime, [0], AutoWarmup(budget_s=0.15, tolerance=-1.0))
        assert done.stopped == "budget" and 2 <= done.requests < 200, done
    finally:
        runtime.close()


@pytest.mark.timeout(300)
def test_reproduce_with_auto_warmup_records_and_prints_each_variant_s(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = ["reproduce", "--requests", "30", "--repeats", "1", "--variants", "cached,pooled+cached", "--call-path", "lean,native",
                 "--warmup", "auto", "--no-save"]
    done = CliRunner().invoke(main, [*arguments, "--format", "json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["warmup"] == "auto"
    assert set(result["warmup_done"]) == {"cached", "pooled+cached", "cached@native", "pooled+cached@native"}
    for name, warm in result["warmup_done"].items():
        assert warm["stopped"] in ("stable", "max", "budget") and warm["requests"] >= 1, (name, warm)
        assert warm["stopped"] == "budget" or warm["requests"] >= 2 * AutoWarmup().window, (name, warm)
    text = CliRunner().invoke(main, arguments, catch_exceptions=False).stdout
    assert "after auto warm-up (cached " in text and " requests, " in text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_counted_warmup_ends_at_its_time_budget_when_the_count_would_take_longer(path, monkeypatch):
    """``--warmup 200`` means 200 requests or COUNT_BUDGET_S seconds, whichever ends first: a slow guest stops early,
    says so in the figures' words, and a fast one still serves its whole count."""
    from wasmlab.measure import warmup

    monkeypatch.setattr(warmup, "COUNT_BUDGET_S", 0.1)
    runtime = runtime_of(path, SLOW, 7)
    try:
        done = warm_up(runtime, [0], 200)
        assert done.stopped == "budget" and 1 <= done.requests < 200, done
        assert warmup.describe(200, {"baseline": done}) == f"200 warm-up or 0.1 s (baseline {done.requests} requests, budget)"
    finally:
        runtime.close()
    monkeypatch.setattr(warmup, "COUNT_BUDGET_S", 60.0)
    runtime = runtime_of(path, SLOW, 7)
    try:
        done = warm_up(runtime, [0], 3)
        assert (done.requests, done.stopped) == (3, "count") and warmup.describe(3, {"baseline": done}) == "3 warm-up"
    finally:
        runtime.close()
