"""The one Expectation: built once per workload, read by every call path, checked on every request (not only the first).

The guests here change their answer between requests through state outside the instance (every request has a fresh
one): a core WASI guest returns the first byte of a file the test rewrites between requests, and a component returns
the monotonic clock through WASI preview 2.  Each is served for real on every Python call path (and the core guest
on the native path too)."""

from __future__ import annotations

import dataclasses

import pytest
import wasmtime

from tests.workloads.recipe_guests import EXIT_CODE, serving, write_recipe
from wasmlab.errors import ResultMismatch
from wasmlab.workloads import load_workload, model
from wasmlab.workloads.components import component_workload
from wasmlab.workloads.expectation import FirstResult
from wasmlab.workloads.files import from_path
from wasmlab.workloads.model import wasi_command

CORE_PATHS = ["lean", "api", "native"]
COMPONENT_PATHS = ["lean", "api"]

# run() -> i32: the first byte of the file "n" in the first preopened directory (-1 when it cannot be opened).
FILE_BYTE = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "n")
  (func (export "run") (result i32)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 0)
                         (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0))
      (then (return (i32.const -1))))
    (i32.store (i32.const 8) (i32.const 64)) (i32.store (i32.const 12) (i32.const 1))
    (drop (call $fd_read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16)))
    (drop (call $fd_close (i32.load (i32.const 0))))
    (i32.load8_u (i32.const 64))))"""

# A component whose now() is the monotonic clock's low 32 bits (different on every request) and run() is always 7.
CLOCK = """(component
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock (export "now" (func (result u64)))))
  (core func $now (canon lower (func $clock "now")))
  (core module $m
    (import "c" "now" (func $now (result i64)))
    (func (export "now") (result i32) (i32.wrap_i64 (call $now)))
    (func (export "run") (result i32) (i32.const 7)))
  (core instance $ci (instantiate $m (with "c" (instance (export "now" (func $now))))))
  (func (export "now") (result u32) (canon lift (core func $ci "now")))
  (func (export "run") (result u32) (canon lift (core func $ci "run"))))"""


def file_guest(tmp_path, expected=None):
    """The FILE_BYTE guest reading ``tmp_path/data/n`` (holding "*", 42), expecting ``expected`` (None: its first result)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "n").write_text("*")
    (tmp_path / "guest.wat").write_text(FILE_BYTE)
    return from_path(tmp_path / "guest.wat", "run", expected=expected, preopens=((str(data), "/data"),)), data / "n"


def test_a_workload_builds_its_expectation_once_and_every_request_reads_that_one(monkeypatch, tmp_path):
    built = []
    real = model.expectation_of

    def counted(workload):
        built.append(workload.name)
        return real(workload)

    monkeypatch.setattr(model, "expectation_of", counted)
    workload, _ = file_guest(tmp_path, expected=42)
    first = workload.expectation
    for call_path in CORE_PATHS:
        with serving([workload], call_path) as runtime:
            for _ in range(3):
                assert runtime.handle(0) == 42
    assert built == ["guest.wat"] and workload.expectation is first
    # A copy with other fields gets the expectation of its own fields, not the original's.
    unchecked = dataclasses.replace(workload, check="none")
    assert unchecked.expectation.compared_with() is None and workload.expectation.compared_with() == 42


def test_the_expectation_gathers_what_a_request_is_checked_against():
    seed = load_workload("seed").expectation
    assert (seed.result.value, seed.exit, seed.same_as_first, seed.compared_with()) == (42, 0, False, 42)
    assert seed.exit_ok(None) and seed.exit_ok(0) and not seed.exit_ok(3)
    clock = component_workload("clock", bytes(wasmtime.wat2wasm(CLOCK)), "now").expectation
    assert clock.same_as_first and isinstance(clock.compared_with(), FirstResult)
    assert clock.compared_with() is not clock.compared_with()  # each call path learns into its own


@pytest.mark.parametrize("call_path", CORE_PATHS)
def test_a_wrong_expectation_fails_the_first_request(call_path, tmp_path):
    workload, _ = file_guest(tmp_path, expected=43)
    with serving([workload], call_path) as runtime, pytest.raises(ResultMismatch, match="returned 42, expected 43"):
        runtime.handle(0)


@pytest.mark.parametrize("call_path", CORE_PATHS)
def test_a_guest_right_only_on_the_first_request_is_caught_on_the_second(call_path, tmp_path):
    workload, source = file_guest(tmp_path, expected=42)
    with serving([workload], call_path) as runtime:
        assert runtime.handle(0) == 42
        source.write_text("+")
        with pytest.raises(ResultMismatch, match="returned 43, expected 42"):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", CORE_PATHS)
def test_without_an_expectation_a_result_that_changes_is_caught_on_the_second_request(call_path, tmp_path):
    workload, source = file_guest(tmp_path)
    assert workload.expectation.same_as_first
    with serving([workload], call_path) as runtime:
        assert runtime.handle(0) == 42
        source.write_text("+")
        with pytest.raises(ResultMismatch, match="returned 43, but its first request returned 42"):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_a_recipes_expected_result_is_checked_on_every_request(call_path, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "n").write_text("*")
    path = write_recipe(tmp_path, FILE_BYTE, {"wasi": {"dirs": [{"host": "data", "guest": "/data"}]}, "steps": [{"call": "run"}],
                                              "expect": {"result": 42}})
    workload = load_workload(path)
    assert workload.expectation.steps and workload.expectation.result.value == 42
    with serving([workload], call_path) as runtime:
        runtime.handle(0)
        (data / "n").write_text("+")
        with pytest.raises(ResultMismatch, match="recipe 'guest': result 43, expected 42"):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", COMPONENT_PATHS)
def test_a_component_with_a_wrong_expectation_fails_the_first_request(call_path):
    workload = dataclasses.replace(load_workload("component-seed"), expected=43)
    with serving([workload], call_path) as runtime, pytest.raises(ResultMismatch, match="returned 42, expected 43"):
        runtime.handle(0)


@pytest.mark.parametrize("call_path", COMPONENT_PATHS)
def test_a_component_result_that_changes_is_caught_on_the_second_request(call_path):
    workload = component_workload("clock", bytes(wasmtime.wat2wasm(CLOCK)), "now")
    with serving([workload], call_path) as runtime:
        runtime.handle(0)
        with pytest.raises(ResultMismatch, match="but its first request returned"):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", COMPONENT_PATHS)
def test_an_earlier_calls_result_that_changes_is_caught_on_the_second_request(call_path, tmp_path):
    (tmp_path / "clock.wat").write_text(CLOCK)
    (tmp_path / "clock.yaml").write_text("module: clock.wat\nsteps:\n  - invoke: now()\n  - invoke: run()\nexpect:\n  result: 7\n")
    workload = load_workload(str(tmp_path / "clock.yaml"))
    assert [e.same_as_first for e in workload.expectation.before] == [True] and workload.expectation.result.value == 7
    with serving([workload], call_path) as runtime:
        assert runtime.handle(0) == 7
        with pytest.raises(ResultMismatch, match=r"workload 'clock \(call now\)' returned .* but its first request returned"):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_the_exit_status_is_checked_by_the_expectation_on_every_path(call_path):
    wasm = bytes(wasmtime.wat2wasm(EXIT_CODE))
    exits_10 = wasi_command("sat", wasm, ("sat",), stdout="sat", expected_exit=10)
    assert exits_10.expectation.exit == 10 and exits_10.expectation.exit_ok(10) and not exits_10.expectation.exit_ok(None)
    wrong = wasi_command("sat", wasm, ("sat",), expected_exit=3)
    with serving([exits_10, wrong], call_path) as runtime:
        for _ in range(2):
            assert runtime.handle(0) is None
        with pytest.raises(wasmtime.ExitTrap, match="exit status 10"):
            runtime.handle(1)
    returns = dataclasses.replace(load_workload("seed"), expected_exit=10)  # run returns 42 normally
    with serving([returns], call_path) as runtime, pytest.raises(ResultMismatch, match="returned 'exit 0', expected 'exit 10'"):
        runtime.handle(0)

