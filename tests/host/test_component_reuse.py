"""Instance reuse of components (``+reuseN``) on the lean, api and native paths: the rotation, each request flagged
fresh or reused, and the carried-over count against a fresh instance's result (the core modules' are in test_reuse.py).

Cheats each test is built to catch (each planted once in wasmlab/native/component_loop.c or request_loop.c and seen to fail, see the
branch's report):
- a C loop that never drops its kept instance (reuses it past N): one fresh request per block, not one in 16
  (``test_a_counting_component_carries_state_into_every_reused_request``, ``test_a_pure_component_carries_nothing_over``,
  ``test_the_summary_counts_15_of_16_with_reuse_and_0_without``);
- a C loop that marks reused requests fresh: no reused request (those three, ``test_no_component_instance_outlives_its_block``
  and ``test_a_reused_component_request_that_traps_is_carried_over_and_drops_its_instance``);
- a carried-over check that compares only the first reused request of an instance: 1 carried per instance, not 15
  (``test_a_counting_component_carries_state_into_every_reused_request``, ``test_no_component_instance_outlives_its_block``,
  ``test_the_summary_counts_15_of_16_with_reuse_and_0_without``);
- a native loop that never compares a reused component command's output (the block loop's check skipped for it):
  ``test_a_component_command_is_reused_with_each_requests_output_compared[native]`` (outputs unchecked),
  ``test_a_counting_component_command_carries_its_counter_into_every_reused_requests_output[native]`` and
  ``test_a_counting_component_commands_summary_counts_15_of_16_on_native_and_0_without_reuse``; one that compares but
  never counts the difference: the last two;
- a native loop that compares a reused component command's whole stdout file instead of what it gained:
  ``test_a_component_command_is_reused_with_each_requests_output_compared[native]`` and
  ``test_a_reused_component_commands_expected_exit_is_its_normal_end[err-True-native]``;
- a native loop that does not judge a reused component command's exit: ``...expected_exit_is_its_normal_end[exit-False-native]``.
"""

from __future__ import annotations

import hashlib

import pytest
import wasmtime
import yaml

from tests.host.test_component_cheats import COUNTING
from tests.host.test_component_commands import command_wat, write_command
from tests.host.test_reuse import PATHS, carries_nothing_over, every_16th_fresh_and_the_rest_carried, runtime, serve
from tests.workloads.recipe_guests import write_recipe
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.reuse import refusal
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload

# Traps when it finds its own mark: a fresh instance never does, a reused one always (then poisoned: dropped).
MARKED = """(component
  (core module $m
    (global $seen (mut i32) (i32.const 0))
    (func (export "run") (result i32)
      (if (global.get $seen) (then unreachable))
      (global.set $seen (i32.const 1))
      (i32.const 7)))
  (core instance $i (instantiate $m))
  (func (export "run") (result u32) (canon lift (core func $i "run"))))"""


def counting(folder) -> Workload:
    """next() answers 101 in a fresh instance, 202, 303, ... in a reused one (COUNTING), its expectation 101."""
    return load_workload(write_recipe(folder, COUNTING, {"invoke": "next()", "expect": {"result": 101}}, "counting"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_counting_component_carries_state_into_every_reused_request(tmp_path, path):
    """+reuse16: a fresh instance at requests 0, 16, 32, 48, and every other request (15 of 16) counted as carried over,
    none failed (a reused request's 202 is the price, not a mismatch of its expected 101)."""
    with runtime(path, counting(tmp_path)) as rt:
        every_16th_fresh_and_the_rest_carried(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_pure_component_carries_nothing_over(path):
    with runtime(path, load_workload("component-seed")) as rt:
        carries_nothing_over(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_without_reuse_a_counting_component_is_fresh_every_request(tmp_path, path):
    """+reuse1 is today's loop: no ledger, and every request answers the fresh 101 (a kept instance would fail it)."""
    with runtime(path, counting(tmp_path), "pooled+cached+reuse1") as rt:
        assert rt.parts.reuse == 1 and rt.parts.ledger is None
        if rt.block is not None:
            failures: list = []
            rt.block([0] * 20, [0] * 20, failures)
            assert failures == []
        for _ in range(5):
            rt.handle(0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_no_component_instance_outlives_its_block(tmp_path, path):
    """Each block's first request is on a fresh instance, whatever the block before it left (10 < 16 requests)."""
    with runtime(path, counting(tmp_path)) as rt:
        for _ in range(3):
            fresh, carried, _ = serve(rt, 10)
            assert fresh == [True] + [False] * 9 and carried == [False] + [True] * 9


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_reused_component_request_that_traps_is_carried_over_and_drops_its_instance(tmp_path, path):
    """The reused request traps (its instance poisoned): counted as carried over, failed, and the next request fresh."""
    w = load_workload(write_recipe(tmp_path, MARKED, {"invoke": "run()", "expect": {"result": 7}}, "marked"))
    with runtime(path, w, "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 8)
        assert fresh == [True, False] * 4 and carried == [False, True] * 4
        assert [k for k, _ in failures] == [1, 3, 5, 7]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_component_command_is_reused_with_each_requests_output_compared(tmp_path, path):
    """The command prints the same lines on every request: reused, nothing carried over, every output checked (a
    reused request's output is what its kept stdout gained, not the whole file)."""
    command = load_workload(str(write_command(tmp_path, expect={"stdout_match": "^hello\na1\nb2\nK=v\n/sb\n$"})))
    with runtime(path, command, "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 12)
        assert failures == [] and fresh == [True, False, False, False] * 3 and not any(carried)
        assert rt.parts.output_checks == 12


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_counting_component_command_carries_its_counter_into_every_reused_requests_output(tmp_path, path):
    """The command prints a counter kept in its memory ("1" in a fresh instance): +reuse16 counts 15 of every 16
    requests carried over (their stdout differs from the fresh reference's), none failed, every output checked."""
    with runtime(path, load_workload(str(write_command(tmp_path, "count")))) as rt:
        fresh, carried, failures = serve(rt, 64)
        assert failures == [] and [k for k, f in enumerate(fresh) if f] == [0, 16, 32, 48]
        assert carried == [not f for f in fresh]
        assert rt.parts.output_checks == 64


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("ending", "kept"), [("err", True), ("exit", False)])
def test_a_reused_component_commands_expected_exit_is_its_normal_end(tmp_path, path, ending, kept):
    """run's err and wasi:cli/exit's status 1, expected: no request fails and none carries over; run's err keeps its
    instance (4 requests each), an exit poisons it (wasmtime's), so every request after one is on a fresh instance."""
    command = load_workload(str(write_command(tmp_path, ending, {"exit": 1, "stdout_match": "^hello\na1\nb2\nK=v\n/sb\n$"})))
    with runtime(path, command, "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 8)
        assert failures == [] and not any(carried)
        assert fresh == ([True, False, False, False] * 2 if kept else [True] * 8)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_reused_component_command_rewriting_its_file_carries_nothing_over(tmp_path, path):
    """The command writes (create, truncate) the same out.txt into a writable directory its kept WASI context keeps:
    every request's files match the expected digest and the fresh reference's, none carried over."""
    (tmp_path / "file.wasm").write_bytes(wasmtime.wat2wasm(command_wat("file")))
    recipe = tmp_path / "file.yaml"
    recipe.write_text(yaml.safe_dump({"module": "file.wasm", "wasi": {"dirs": [{"guest": "/out", "writable": True}]},
                                      "expect": {"stdout_match": "^hello\n/out\n$",
                                                 "files": {"/out/out.txt": {"sha256": hashlib.sha256(b"written\n").hexdigest()}}}}))
    with runtime(path, load_workload(str(recipe)), "pooled+cached+reuse4") as rt:
        fresh, carried, failures = serve(rt, 8)
        assert failures == [] and fresh == [True, False, False, False] * 2 and not any(carried)
        assert rt.parts.output_checks == 8


@pytest.mark.timeout(180)
def test_a_counting_component_commands_summary_counts_15_of_16_on_native_and_0_without_reuse(tmp_path):
    """Measured as a scenario on the native path: +reuse16 counts 30 of 32 requests reused and carried over; without
    reuse every request is a fresh instance printing "1", checked against the first, none carried, nothing failed."""
    spec = str(write_command(tmp_path, "count"))
    variants = ("pooled+cached@native", "pooled+cached+reuse16@native")
    m = scenarios.run(scenarios.Scenario(workload=spec, variants=variants, requests=32, repeats=1, warmup=2, slots=4, rounds=1))
    assert m.errors == {}
    table = m.variants(None).set_index("variant")
    reused = table.loc["pooled+cached+reuse16@native"]
    assert (reused["reuse"], reused["reused_requests"], reused["carried_over_requests"]) == (16, 30, 30)
    plain = table.loc["pooled+cached@native"]
    assert (plain["reused_requests"], plain["carried_over_requests"]) == (0, 0)


@pytest.mark.timeout(180)
def test_the_summary_counts_15_of_16_with_reuse_and_0_without(tmp_path):
    """Measured as a scenario: 32 requests a repetition, +reuse16 counts 30 reused and 30 carried over on every path,
    the fresh instance's variant none (and fails nothing)."""
    spec = write_recipe(tmp_path, COUNTING, {"invoke": "next()", "expect": {"result": 101}}, "counting")
    variants = ("pooled+cached", *(f"pooled+cached+reuse16@{p}" for p in PATHS))
    m = scenarios.run(scenarios.Scenario(workload=spec, variants=variants, requests=32, repeats=1, warmup=2, slots=4, rounds=1))
    assert m.errors == {}
    table = m.variants(None).set_index("variant")
    for p in PATHS:
        row = table.loc[f"pooled+cached+reuse16@{p}"]
        assert (row["reuse"], row["reused_requests"], row["carried_over_requests"]) == (16, 30, 30), p
    plain = table.loc["pooled+cached"]
    assert (plain["reused_requests"], plain["carried_over_requests"]) == (0, 0)


@pytest.mark.parametrize("path", PATHS)
def test_what_component_reuse_does_not_serve_is_refused_in_one_line(tmp_path, path):
    w = load_workload(write_recipe(tmp_path, COUNTING, {"steps": [{"invoke": "next()"}, {"invoke": "next()"}]}, "two"))
    words = "is a component making several calls per request"
    assert words in (refusal(w, native=path == "native") or "")
    assert refusal(load_workload(str(write_command(tmp_path))), native=path == "native") is None  # a command is served
    with pytest.raises(ConfigError) as caught:
        with runtime(path, w, "pooled+cached+reuse4"):
            pass
    assert words in str(caught.value) and "\n" not in str(caught.value)
