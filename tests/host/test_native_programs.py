"""A recipe's program on the native path ends as on the lean path where the fuzzing of the C driver (tests/fuzz/
test_native_fuzz.py) found they differed: a name read twice, an expected result after a last call that returns nothing,
integers past 64 bits, the kind of a memory step's failure, a pattern over output holding a carriage return; and the glue
refuses ops that read a value slot nothing wrote."""

from __future__ import annotations

import hashlib

import pytest
import wasmtime

from tests.workloads.recipe_guests import LIBRARY, REACTOR, serving, write_recipe
from wasmlab import _native, capi
from wasmlab.errors import ConfigError, NativeFailure, RecipeError, ResultMismatch
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.native import library
from wasmlab.workloads import load_workload

PATHS = ["lean", "native"]


def requests(spec: str, call_path: str, n: int = 3) -> list[object]:
    with serving([load_workload(spec)], call_path, "cached") as runtime:
        return [runtime.handle(0) for _ in range(n)]


@pytest.mark.parametrize("call_path", PATHS)
def test_a_name_read_twice_keeps_its_later_read_on_every_request(tmp_path, call_path):
    # transform(3) writes "ZZZ" at 32768: the two reads of x differ ("ZZ", then "Z\0"), and x is the later.  The native
    # path numbered reads by name, so the second request compared the first read with the second's bytes: a mismatch.
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [
        {"call": "transform", "args": [3]}, {"read": {"at": 32768, "length": 2, "as": "x"}},
        {"read": {"at": 32770, "length": 2, "as": "x"}}], "expect": {"bytes": {"x": {"hex": "5a00"}}}})
    assert len(requests(spec, call_path)) == 3


@pytest.mark.parametrize("call_path", PATHS)
def test_an_expected_result_when_the_last_call_returns_nothing_is_a_mismatch(tmp_path, call_path):
    # malloc returns 1024, then _initialize returns nothing: the request's result is None, which 1024 is not (the native
    # path compared the earlier call's result, or nothing at all, and passed).
    spec = write_recipe(tmp_path, REACTOR, {"steps": [{"call": "_initialize"}, {"call": "malloc", "args": [8]}, {"call": "_initialize"}],
                                            "expect": {"result": 1024}})
    with pytest.raises(ResultMismatch, match="None"):
        requests(spec, call_path)


@pytest.mark.parametrize("call_path", PATHS)
def test_the_result_of_a_recipe_whose_last_call_returns_nothing_is_none(tmp_path, call_path):
    spec = write_recipe(tmp_path, REACTOR, {"steps": [{"call": "_initialize"}, {"call": "malloc", "args": [8]}, {"call": "_initialize"}]})
    results = requests(spec, call_path)
    assert [getattr(r, "result", r) for r in results] == [None] * 3


@pytest.mark.parametrize("where", [{"call": "transform", "args": [1 << 64]}, {"call": "transform", "args": ["0x10000000000000000"]},
                                   {"write": {"at": -(1 << 63) - 1, "text": "x"}}])
def test_an_integer_past_64_bits_is_refused_in_one_line(tmp_path, where):
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [{"call": "get_buffer", "as": "b"}, where]})
    with pytest.raises(ConfigError, match=r"^recipe steps\[1\].*does not fit in 64 bits; allowed: -9223372036854775808\.\.9223372036854775807$"):
        load_workload(spec)
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [{"call": "get_buffer"}], "expect": {"result": 1 << 64}})
    with pytest.raises(ConfigError, match="^recipe expect.result: 18446744073709551616 does not fit in 64 bits"):
        load_workload(spec)


@pytest.mark.parametrize("call_path", PATHS)
def test_a_name_plus_an_offset_past_64_bits_is_past_the_memory_s_end(tmp_path, call_path):
    # b (4096) + 2**63 - 1 overflows 64 bits: signed overflow in C (a UBSan report), exact and too large in Python.
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [{"call": "get_buffer", "as": "b"}, {"write": {"at": f"b+{(1 << 63) - 1}", "text": "x"}}]})
    with pytest.raises((RecipeError, NativeFailure), match=r"steps\[1\].*past the memory's end"):
        requests(spec, call_path, 1)


@pytest.mark.parametrize("last", [1, 2, 4096])
def test_a_memory_step_past_the_end_is_an_error_not_the_last_call_s_result_read_as_a_kind(tmp_path, last):
    # The request's detail held transform's result (1, 2): Python read it as ERROR_POOL_EXHAUSTED or ERROR_MEMORY_LIMIT.
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [{"call": "transform", "args": [last]}, {"write": {"at": 65535, "text": "ab"}}]})
    with pytest.raises(NativeFailure) as failure:
        requests(spec, "native", 1)
    assert failure.value.kind == "error" and "2 bytes at 65535 run past the memory's end" in str(failure.value)


@pytest.mark.parametrize("call_path", PATHS)
def test_a_load_past_the_end_names_its_step(tmp_path, call_path):
    spec = write_recipe(tmp_path, LIBRARY, {"steps": [{"call": "get_buffer"}, {"read": {"at": {"load": 65533}, "length": 1, "as": "x"}}]})
    with pytest.raises((RecipeError, NativeFailure), match=r"steps\[1\].*4 bytes at 65533 run past the memory's end"):
        requests(spec, call_path, 1)


# A command that writes "a\r\nb" to stdout.
CARRIAGE_RETURN = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "a\\0d\\0ab")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


@pytest.mark.parametrize("call_path", PATHS)
@pytest.mark.parametrize(("pattern", "matches"), [("^a\r\nb$", True), ("^a\nb$", False)])
def test_a_stdout_pattern_sees_a_carriage_return_on_every_path(tmp_path, call_path, pattern, matches):
    # The lean path read stdout with universal newlines ("a\nb"), the native path as bytes ("a\r\nb").
    spec = write_recipe(tmp_path, CARRIAGE_RETURN, {"wasi": {"argv": ["cr"]}, "expect": {"stdout_match": pattern}})
    if matches:
        requests(spec, call_path, 2)
    else:
        with pytest.raises(ResultMismatch, match="stdout does not match"):
            requests(spec, call_path, 2)


def test_the_glue_refuses_an_op_reading_a_value_slot_no_earlier_op_writes():
    wasm = bytes(wasmtime.wat2wasm(LIBRARY))
    engine = wasmtime.Engine()
    driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=2)

    def add(ops: tuple[boundary.Op, ...], nreads: int = 0) -> int:
        program = boundary.RecipeProgram(ops, b"memory", nreads)
        return driver.add(boundary.RequestPlan(wasm, hashlib.sha256(wasm).digest(), boundary.ResultCheck(0), program=program))

    try:
        get_output = boundary.CallOp(b"get_output", (), "", "i", 3, True)
        add((get_output, boundary.WriteOp((3, 0), b"x")))  # slot 3 written first: accepted
        with pytest.raises(ValueError, match="^op 0 reads value slot 3, which no earlier op writes$"):
            add((boundary.WriteOp((3, 0), b"x"), get_output))
        with pytest.raises(ValueError, match="^op 1 reads value slot 4, which no earlier op writes$"):
            add((get_output, boundary.CallOp(b"transform", ((4, 0),), "i", "i", 4, True)))  # its own result is not yet written
        with pytest.raises(ValueError, match="value slot -2; allowed: -1"):
            add((boundary.WriteOp((-2, 0), b"x"),))
        with pytest.raises(TypeError, match="^an operand is list; allowed: a \\(slot, offset\\) tuple"):
            add((boundary.WriteOp([-1, 0], b"x"),))  # type: ignore[arg-type]
        for nreads in (-1, 2):
            with pytest.raises(ValueError, match=f"^RecipeProgram.nreads {nreads} of 1 ops; allowed: 0..1$"):
                add((boundary.ReadOp((-1, 0), (-1, 1), 0),), nreads)
    finally:
        driver.close()
