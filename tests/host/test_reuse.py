"""Instance reuse (a variant's ``+reuseN``): the choice parsed and refused, the instance rotation on every core call path,
and the isolation price measured.

Cheats each test is built to catch (each planted once and seen to fail, see the branch's report):
- a reuse loop that makes a fresh instance for every request while calling the others reused: the stateful ``fresh``
  guest then shows no carried-over state (``test_the_fresh_guest_carries_state_into_every_reused_request``);
- reuse when told ``+reuse1`` (``test_reuse1_is_a_fresh_instance_per_request``);
- an instance kept from one measurement block into the next (``test_no_instance_outlives_its_block``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import _native
from wasmlab.config import CacheConfig
from wasmlab.errors import ConfigError
from wasmlab.experiments.concurrency import concurrency
from wasmlab.host import native_boundary
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.host.variant import parse_variant
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.reuse_figures import REUSE_CHECK
from wasmlab.report.reuse_text import reuse_json, reuse_table
from wasmlab.report.text import provenance
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload, wasi_command

PATHS = ("lean", "api", "native")

# Traps when it finds its own mark: a fresh instance never does, a reused one always.
MARKED = """(module
  (memory (export "memory") 1)
  (global $seen (mut i32) (i32.const 0))
  (func (export "run") (result i32)
    (if (global.get $seen) (then unreachable))
    (global.set $seen (i32.const 1))
    (i32.const 7)))"""


# A WASI command that prints how many times its instance ran _start: "1" on a fresh instance, more on a reused one.
COUNTING = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $runs (mut i32) (i32.const 0))
  (func (export "_start")
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (i32.store8 (i32.const 16) (i32.add (i32.const 48) (i32.rem_u (global.get $runs) (i32.const 10))))
    (i32.store8 (i32.const 17) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


def guest(name: str, wat: str, expected: int) -> Workload:
    wasm = bytes(wasmtime.wat2wasm(wat))
    return Workload(name=name, wasm=wasm, entry="run", params=(), results=("i32",), args=(), expected=expected,
                    sha256=hashlib.sha256(wasm).hexdigest())


@contextlib.contextmanager
def runtime(path: str, workload: Workload, variant: str = "pooled+cached+reuse16") -> Iterator[Any]:
    """The variant's runtime on ``path`` serving ``workload``, closed when the block ends."""
    rt = build_runtimes([variant], small_pool_engine(4), CacheConfig(), [workload], call_path=path, engines=EnginePool())[
        parse_variant(variant).name]
    try:
        yield rt
    finally:
        rt.close()


def serve(rt, n: int) -> tuple[list[bool], list[bool], list]:
    """A block of ``n`` requests of workload 0: its fresh and carried flags from the ledger, and its failures."""
    failures: list = []
    rt.block([0] * n, [0] * n, failures)
    fresh, carried = rt.parts.ledger.take()
    assert len(fresh) == len(carried) == n
    return fresh, carried, failures


def every_16th_fresh_and_the_rest_carried(rt) -> None:
    """+reuse16 over 64 requests of a stateful guest: fresh at 0, 16, 32, 48; every other request counted as carried
    over, none failed (a reused request's changed answer is the price, not a mismatch)."""
    fresh, carried, failures = serve(rt, 64)
    assert failures == []
    assert [k for k, f in enumerate(fresh) if f] == [0, 16, 32, 48]
    assert carried == [not f for f in fresh]


def carries_nothing_over(rt) -> None:
    """+reuse16 over 40 requests of a pure guest: 37 reused, none counted as carried over, none failed."""
    fresh, carried, failures = serve(rt, 40)
    assert failures == [] and fresh.count(False) == 37 and not any(carried)


# ---- the choice ----

@pytest.mark.parametrize("name, canonical, reuse", [
    ("pooled+cached+reuse16", "pooled+cached+reuse16", 16), ("reuse4+cached+pooled@native", "pooled+cached+reuse4@native", 4),
    ("baseline+reuse2", "baseline+reuse2", 2), ("pooled+cached+reuse1", "pooled+cached", 1)])
def test_a_reuse_token_is_one_more_choice_of_the_variant(name, canonical, reuse):
    variant = parse_variant(name)
    assert (variant.name, variant.reuse) == (canonical, reuse)


def test_without_a_reuse_token_every_request_gets_a_fresh_instance():
    assert parse_variant("pooled+cached").reuse == 1
    assert parse_variant("pooled+cached+reuse1") == parse_variant("pooled+cached")


@pytest.mark.parametrize("token", ["reuse0", "reusex", "reuse1.5", "reuse-1", "reuse", "reuse2+reuse3", "reuse01x"])
def test_a_bad_reuse_setting_is_refused_in_one_line(token):
    with pytest.raises(ConfigError) as caught:
        parse_variant(f"pooled+cached+{token}")
    message = str(caught.value)
    assert "\n" not in message and "reuseN with N an integer from 1" in message and "reuse" in message


# What reuse still refuses, in one line: components making several calls (test_component_reuse.py), library-style
# guests (test_reuse_recipes_wasi.py).


@pytest.mark.parametrize("clash", [{"phases": True}, {"limits": {"fuel": 10_000}}, {"limits": {"deadline_ms": 50.0}}])
def test_reuse_with_a_per_request_budget_or_phases_is_refused(clash):
    with pytest.raises(ConfigError, match="reuses instances, which --(phases|fuel|deadline-ms)"):
        scenarios.Scenario(workload="seed", variants=("pooled+cached+reuse4",), requests=10, repeats=1, warmup=1, slots=2, **clash)


def test_the_native_record_and_boundary_changed_together():
    assert native_boundary.BOUNDARY_VERSION == _native.BOUNDARY_VERSION == 8
    assert _native.RECORD_WORDS == 7


# ---- the rotation and the price, on every core path ----

@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_the_fresh_guest_carries_state_into_every_reused_request(path):
    """The stateful guest reports what an earlier request left: with +reuse16 every reused request (15 of every 16)
    is counted, none is a failure; a loop that made a fresh instance each time would count none."""
    with runtime(path, load_workload("fresh")) as rt:
        every_16th_fresh_and_the_rest_carried(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_pure_guest_carries_nothing_over(path):
    with runtime(path, load_workload("seed")) as rt:
        carries_nothing_over(rt)
        assert rt.handle(0) == 42


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_reuse1_is_a_fresh_instance_per_request(path):
    """+reuse1 is today's loop: no ledger, and the stateful guest passes every request (a reused instance would fail it)."""
    with runtime(path, load_workload("fresh"), "pooled+cached+reuse1") as rt:
        assert rt.parts.reuse == 1 and rt.parts.ledger is None
        if rt.block is not None:
            failures: list = []
            rt.block([0] * 20, [0] * 20, failures)
            assert failures == []
        assert [rt.handle(0) for _ in range(5)] == [0] * 5


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_no_instance_outlives_its_block(path):
    """Each block's first request is on a fresh instance, whatever the block before it left (10 < 16 requests)."""
    with runtime(path, load_workload("fresh")) as rt:
        for _ in range(3):
            fresh, carried, _ = serve(rt, 10)
            assert fresh == [True] + [False] * 9 and carried == [False] + [True] * 9
        assert rt.handle(0) == 0  # a one-off request is on a fresh instance too


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_reused_request_that_fails_where_a_fresh_one_succeeded_is_carried_over_and_drops_its_instance(path):
    with runtime(path, guest("marked", MARKED, 7), "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 8)
        assert fresh == [True, False] * 4 and carried == [False, True] * 4
        assert [k for k, _ in failures] == [1, 3, 5, 7]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["lean", "api"])
def test_a_wasi_command_is_reused_with_each_requests_output_checked(path):
    """hello prints the same line on every request: reused, nothing is carried over, and every output is checked."""
    with runtime(path, load_workload("hello"), "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 12)
        assert failures == [] and fresh == [True, False, False, False] * 3 and not any(carried)
        assert rt.parts.output_checks == 12


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["lean", "api"])
def test_a_wasi_command_that_prints_its_own_state_shows_it_on_every_reused_request(path):
    counting = wasi_command("counting", bytes(wasmtime.wat2wasm(COUNTING)), ("counting",), stdout="^1\n$")
    with runtime(path, counting, "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 8)
        assert failures == [] and fresh == [True, False, False, False] * 2 and carried == [not f for f in fresh]
    with runtime(path, counting, "pooled+cached") as plain:  # without reuse, every request prints 1
        assert [plain.handle(0) for _ in range(3)] == [None] * 3


# ---- measured and reported ----

@pytest.fixture(scope="module")
def measured():
    return scenarios.run(scenarios.Scenario(workload="fresh", variants=("pooled+cached", "pooled+cached+reuse4@native",
                                                                          "pooled+cached+reuse4@lean"),
                                            requests=40, repeats=2, warmup=5, slots=4, rounds=1))


def test_each_sample_says_whether_its_instance_was_fresh(measured):
    samples = measured.samples
    for variant, expected_fresh in (("pooled+cached", 40), ("pooled+cached+reuse4@native", 10), ("pooled+cached+reuse4@lean", 10)):
        for _, rep in samples[samples["variant"] == variant].groupby("repetition"):
            assert int(rep["fresh_instance"].sum()) == expected_fresh, variant
            assert bool(rep["fresh_instance"].iloc[0])  # the warm-up's instance is not the block's
            assert (rep["carried_over"] == ~rep["fresh_instance"]).all() if "reuse" in variant else not rep["carried_over"].any()


def test_the_summary_counts_the_price_and_splits_the_latencies(measured):
    table = measured.variants(None).set_index("variant")
    reused = table.loc["pooled+cached+reuse4@native"]
    assert (reused["reuse"], reused["reused_requests"], reused["carried_over_requests"]) == (4, 60, 60)
    assert reused["latency_us_p50_first"] > 0 and reused["latency_us_p50_reused"] > 0 and reused["throughput_rps"] > 0
    plain = table.loc["pooled+cached"]
    assert (plain["reuse"], plain["reused_requests"], plain["carried_over_requests"]) == (1, 0, 0)
    assert plain["latency_us_p50_reused"] != plain["latency_us_p50_reused"]  # nan: no reused request
    assert reused["reuse_check"] == REUSE_CHECK and "not timing" in REUSE_CHECK
    assert measured.errors == {}


def test_the_reuse_table_and_json_say_what_the_check_sees(measured):
    text = reuse_table(measured)
    for words in ("carried over", "p50 first µs", "p50 reused µs", "It cannot see: timing", "fails the variant"):
        assert words in text
    assert "counted, not failed" in provenance(measured)
    data = reuse_json(measured)
    assert data is not None and "return values" in data["check_sees"] and data["check_cannot_see"]


def test_a_run_without_reuse_has_no_reuse_report():
    m = scenarios.run(scenarios.Scenario(workload="seed", variants=("pooled+cached",), requests=10, repeats=1, warmup=2, slots=2))
    assert reuse_table(m) == "" and reuse_json(m) is None


@pytest.mark.timeout(120)
def test_concurrency_counts_the_carried_over_requests():
    scenario = scenarios.Scenario(workload="fresh", variants=("pooled+cached+reuse8",), requests=32, repeats=1, warmup=8, slots=4)
    row = concurrency(scenario, 1, call_path="native")
    assert (row["reused_requests"], row["carried_over_requests"]) == (28, 28)


def test_a_sweep_point_takes_a_reuse_variant_and_refuses_a_bad_one():
    """Sweeps check their points as a Scenario (sweep_spec.check_point): the choice is accepted there as everywhere."""
    assert scenarios.Scenario.from_dict({"variants": "pooled+cached+reuse16", "slots": 2}).variants == ("pooled+cached+reuse16",)
    with pytest.raises(ConfigError, match="'reuse0' is not a reuse setting"):
        scenarios.Scenario.from_dict({"variants": "pooled+cached+reuse0", "slots": 2})
