"""Instance reuse (``+reuseN``) of recipes on every core path, and of WASI commands and host-importing modules on the
native path too: what a reused request checks is compared with a fresh instance's, and a difference is counted as
carried over, never a failure; without reuse, every request is a fresh instance and passes.

Cheats each test is built to catch (each planted once and seen to fail, see the branch's report):
- a native loop that never drops its kept instance: the fresh instances are not at 0, 16, 32, 48
  (``test_a_stateful_*``);
- a reused WASI request's output not compared (native: check_outputs without the reused flag; lean/api: the output
  check skipped): the counting command and the appending writer show nothing carried over
  (``test_a_wasi_command_that_prints_its_state_*``, ``test_a_wasi_command_that_appends_to_its_file_*``);
- a recipe's read step left out of the reused request's comparison (native: program_run without ``differed``; Python:
  comparing the last result only): the counter recipe, whose result never changes, shows nothing carried over
  (``test_a_stateful_recipe_*``).
"""

from __future__ import annotations

import hashlib

import pytest
import wasmtime

from tests.host.test_reuse import COUNTING, PATHS, carries_nothing_over, every_16th_fresh_and_the_rest_carried, runtime
from tests.workloads.recipe_guests import APPENDER, LIBRARY, write_recipe
from tests.workloads.test_drivers import installed_plugin  # noqa: F401 - a fixture, used by name
from tests.workloads.test_drivers import recipe as library_recipe
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.reuse import refusal
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import wasi_command

# Counts its requests in memory and returns 7 whatever the count: only the recipe's read of the count shows the state.
COUNTER = """(module
  (memory (export "memory") 1)
  (func (export "bump") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.const 7)))"""
COUNTER_RECIPE = {"steps": [{"call": "bump"}, {"read": {"at": 0, "length": 4, "as": "count"}}],
                  "expect": {"result": 7, "bytes": {"count": {"hex": "01000000"}}}}

# Pure: the input written, transformed, the output read; nothing survives a request that the next one sees.
TRANSFORMED = bytes(b ^ 0x5A for b in b"a" * 300)
LIBRARY_RECIPE = {"steps": [{"call": "get_buffer", "as": "input"}, {"write": {"at": "input", "repeat": {"byte": 97, "count": 300}}},
                            {"call": "transform", "args": [300]},
                            {"read": {"at": {"call": "get_output"}, "length": 300, "as": "digest"}}],
                  "expect": {"result": 300, "bytes": {"digest": {"sha256": hashlib.sha256(TRANSFORMED).hexdigest()}}}}

# Imports a host function (a recipe's stub returning 41) and adds how many times its instance ran: 42 on a fresh one.
HOOKED = """(module
  (import "env" "host_hook" (func $hook (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $runs (mut i32) (i32.const 0))
  (func (export "run") (result i32)
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (i32.add (call $hook (global.get $runs)) (global.get $runs))))"""
HOOKED_RECIPE = {"imports": {"env.host_hook": 41}, "steps": [{"call": "run"}], "expect": {"result": 42}}

# COUNTING printing a letter per run ("A" on a fresh instance, then B, C, ...), never the same one twice in 26 runs.
LETTERS = COUNTING.replace("(i32.add (i32.const 48) (i32.rem_u (global.get $runs) (i32.const 10)))",
                           "(i32.add (i32.const 64) (global.get $runs))")

APPENDED = {"wasi": {"dirs": [{"guest": "/out", "writable": True}]},
            "expect": {"files": {"/out/result.txt": {"sha256": hashlib.sha256(b"rendered\n").hexdigest()}}}}


def fresh_every_time(rt, n: int = 32) -> None:
    """Without reuse: no ledger (nothing can be carried over) and every request of the stateful guest passes its check."""
    assert rt.parts.reuse == 1 and rt.parts.ledger is None
    if rt.block is not None:
        failures: list = []
        rt.block([0] * n, [0] * n, failures)
        assert failures == []
    for _ in range(3):
        rt.handle(0)


def carried_with_reuse_and_fresh_without(path: str, stateful) -> None:
    """A stateful guest: with +reuse16 every 16th request fresh and the rest carried over; without reuse, all pass."""
    with runtime(path, stateful) as rt:
        every_16th_fresh_and_the_rest_carried(rt)
    with runtime(path, stateful, "pooled+cached") as rt:
        fresh_every_time(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_stateful_recipe_shows_its_count_on_every_reused_request(tmp_path, path):
    """Its result never changes: only its read of memory tells a reused instance, and it is compared, not ignored."""
    counter = load_workload(write_recipe(tmp_path, COUNTER, COUNTER_RECIPE))
    carried_with_reuse_and_fresh_without(path, counter)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_pure_recipe_carries_nothing_over(tmp_path, path):
    with runtime(path, load_workload(write_recipe(tmp_path, LIBRARY, LIBRARY_RECIPE))) as rt:
        carries_nothing_over(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_stateful_module_importing_a_host_function_is_reused(tmp_path, path):
    hooked = load_workload(write_recipe(tmp_path, HOOKED, HOOKED_RECIPE))
    assert hooked.linked and refusal(hooked, native=True) is None
    carried_with_reuse_and_fresh_without(path, hooked)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_wasi_command_that_prints_its_state_shows_it_on_every_reused_request(path):
    letters = wasi_command("letters", bytes(wasmtime.wat2wasm(LETTERS)), ("letters",), stdout="^A\n$")
    with runtime(path, letters) as rt:
        every_16th_fresh_and_the_rest_carried(rt)
        assert rt.parts.output_checks == 64  # every request's output checked, fresh and reused
    with runtime(path, letters, "pooled+cached") as rt:
        fresh_every_time(rt)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_wasi_command_that_appends_to_its_file_shows_it_on_every_reused_request(tmp_path, path):
    """The kept instance keeps its writable directory: the file it appends to grows, a fresh instance's holds one line."""
    appender = load_workload(write_recipe(tmp_path, APPENDER, APPENDED))
    carried_with_reuse_and_fresh_without(path, appender)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_pure_wasi_command_carries_nothing_over(path):
    with runtime(path, load_workload("hello")) as rt:
        carries_nothing_over(rt)
        assert rt.parts.output_checks == 40


def test_a_library_style_workload_is_still_refused_in_one_line(installed_plugin):  # noqa: F811 - the fixture imported above
    workload = load_workload(library_recipe(installed_plugin, {"driver": "xor", "input": "hi", "expect": {"stdout_match": "^hi$"}}))
    with pytest.raises(ConfigError) as refused:
        with runtime("api", workload, "pooled+cached+reuse4"):
            pass
    message = str(refused.value)
    assert "\n" not in message and "library-style" in message and "allowed: +reuse1" in message
