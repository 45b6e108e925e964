"""The C driver fuzzed (wasmlab/native/, run under the sanitizers by ``make test-sanitize``): random well-typed component
values lowered into C value trees and compared there with the echo guest's answer (equal passes every request; one place
changed fails the first with a mismatch, and the answer lifted is the value sent); random recipe programs served natively
give what the lean path gives; random argv, environment and stdin reach a WASI command as on the lean path; and
malformed trees and raw program ops handed to the glue are refused with one error, never a crash or a sanitizer report."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import wasmtime
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.fuzz.echo import changes, echo_signatures, echo_wat
from tests.fuzz.programs import ECHO_COMMAND, ended, steps
from tests.fuzz.values import same, values
from tests.workloads.recipe_guests import LIBRARY, REACTOR, serving
from wasmlab import _native, capi
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.native import library
from wasmlab.host.callpaths.native_component import call_plan
from wasmlab.host.recipes import Outcome
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload

ECHO = bytes(wasmtime.wat2wasm(echo_wat()))
ECHO_SHA = hashlib.sha256(ECHO).digest()
SIGNATURES = echo_signatures(ECHO)
PAD = (0,) * 16
_serial = itertools.count()
VARIANT = "cached"  # a compiled-module cache, no pool: a runtime per example costs milliseconds on either path


@pytest.fixture(scope="module")
def driver():
    """One C driver on a default engine, its compiled-component cache holding the echo guest for every example."""
    engine = wasmtime.Engine()
    d = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=4)
    yield d
    d.close()


def serve(driver: _native.Driver, index: int, n: int) -> tuple[list[int], str]:
    """``n`` requests of workload ``index`` in one block: each one's outcome, and the block's first message."""
    records = np.zeros((n, _native.RECORD_WORDS), dtype=np.int64)
    _, message = driver.run(np.full(n, index, dtype=np.int32), records, None, None, None)
    return records[:, 1].tolist(), message or ""


def echo_plan(name: str, value: object, expected: boundary.ComponentValue | None) -> boundary.ComponentPlan:
    """A request calling export ``name`` with ``value``, its answer checked against ``expected`` (None: the first request's)."""
    signature = SIGNATURES[name]
    call = call_plan(name, signature, (value, PAD), None)
    check = _native.CHECK_FIRST if expected is None else _native.CHECK_EXPECTED
    return boundary.ComponentPlan(ECHO, ECHO_SHA, (boundary.ComponentCallPlan(call.entry, call.args, True, check, expected),))


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_a_random_value_echoed_passes_its_own_tree_and_fails_every_tree_changed_in_one_place(driver, name):
    signature = SIGNATURES[name]
    shape = signature.params[0][1]

    @fuzz(25)
    @given(value=values(shape))
    def echoed(value):
        tree = call_plan(name, signature, (value, PAD), value).expected
        assert tree is not None
        assert serve(driver, driver.add_component(echo_plan(name, value, tree)), 3)[0] == [_native.OUT_OK] * 3
        assert serve(driver, driver.add_component(echo_plan(name, value, None)), 3)[0] == [_native.OUT_OK] * 3
        tried = 0
        for where, changed in changes(tree):
            index = driver.add_component(echo_plan(name, value, changed))
            outcomes, message = serve(driver, index, 2)
            assert outcomes == [_native.OUT_MISMATCH, -1], (where, outcomes, message)
            address, call, request = driver.differing(index)
            assert (call, request) == (0, 1)  # the first request's only call
            answer = signature.result.lift(ctypes.cast(address, ctypes.POINTER(capi.component_val_t)).contents)
            assert same(answer, value), (where, answer)  # the value went through C and the guest and came back whole
            tried += 1
        assert tried > 0

    echoed()


@pytest.fixture(scope="module")
def guests(tmp_path_factory) -> Path:
    """The recipe tests' library and reactor, written once; every example's recipe is a new file beside them."""
    root = tmp_path_factory.mktemp("programs")
    (root / "library.wat").write_text(LIBRARY)
    (root / "reactor.wat").write_text(REACTOR)
    return root


def recipe_workload(folder: Path, body: dict[str, Any]) -> Workload:
    path = folder / f"r{next(_serial)}.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False))
    return load_workload(str(path))


def served(workload: Workload, call_path: str, requests: int = 2) -> tuple[list[tuple[Any, ...]], Any]:
    """How each of ``requests`` requests of ``workload`` ended on ``call_path`` (a request that stops the lean path's
    variant ends them), and what the first returned (or raised)."""
    with serving([workload], call_path, VARIANT) as runtime:
        out, first = [], []

        def request() -> Any:
            try:
                result = runtime.handle(0)
            except BaseException as exc:
                first.append(exc)
                raise
            first.append(result)
            return result

        for _ in range(requests):
            out.append(ended(request))
            if out[-1][0] in ("mismatch", "step") and call_path == "lean":
                break  # the lab's own error: the lean path's variant stops here
        return out, first[0]


def expecting(body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """``body`` expecting what the lean path's request produced: its result (0 when the last call returned nothing, which
    no result equals; none without a call) and the SHA-256 of every read."""
    expect: dict[str, Any] = {}
    if any("call" in step for step in body["steps"]):
        expect["result"] = 0 if outcome.result is None else outcome.result
    if outcome.reads:
        expect["bytes"] = {name: {"sha256": hashlib.sha256(data).hexdigest()} for name, data in outcome.reads.items()}
    return {**body, "expect": expect} if expect else body


@fuzz(120)
@given(guest=st.sampled_from(["library", "reactor"]), data=st.data())
def test_a_random_recipe_program_ends_on_the_native_path_as_on_the_lean_path(guests, guest, data):
    body = {"module": f"{guest}.wat", "steps": data.draw(steps(guest), label="steps")}
    workload = recipe_workload(guests, body)
    lean, first = served(workload, "lean")
    event(f"lean: {lean[0][0]}")
    if not isinstance(first, Outcome):
        # A failed request: the native path's fails the same way (a trap, or the same step past the memory's end).
        native, _ = served(workload, "native")
        assert native[:len(lean)] == lean, (body, lean, native)
        return
    # Served: the native path must meet every expectation the lean path's outcome sets (the result and every read's
    # bytes, compared in C on every request), or fail with a mismatch exactly when the lean path does (the result of a
    # last call that returns nothing).
    expected = recipe_workload(guests, expecting(body, first))
    (lean_expected, _), (native_expected, _) = served(expected, "lean"), served(expected, "native")
    assert native_expected[:len(lean_expected)] == lean_expected, (body, first, lean_expected, native_expected)
    if first.result is not None:
        assert native_expected == [("ok", first.result)] * 2, (body, native_expected)


WASI_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=12)


@fuzz(60)
@given(argv=st.lists(WASI_TEXT, max_size=5), env=st.dictionaries(WASI_TEXT.filter(lambda k: "=" not in k and k != ""), WASI_TEXT, max_size=4),
       stdin=st.none() | st.binary(max_size=3000) | WASI_TEXT.map(str.encode), changed=st.integers(0, 1 << 16))
@example(argv=["\x85", "\u2028"], env={"a": "\r"}, stdin=b"\r\n", changed=0)
def test_random_argv_environment_and_stdin_reach_a_wasi_command_on_the_native_path_as_on_the_lean_path(guests, argv, env, stdin, changed):
    """The echo command's stdout is exactly its argv, environment and stdin on both paths (checked against the first
    request's in C on every later one), matched on its bytes; the expectation changed in one byte fails both."""
    name = f"w{next(_serial)}"
    (guests / f"{name}.wat").write_text(ECHO_COMMAND)
    wasi: dict[str, Any] = {"argv": argv, "env": env}
    if stdin is not None:
        (guests / f"{name}.in").write_bytes(stdin)
        wasi["stdin"] = f"{name}.in"
    given_argv = argv or [name]  # a command run with no argv gets its name as argv[0], on every path
    out = b"".join(a.encode() + b"\0" for a in given_argv) + b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()) + (stdin or b"")
    at = changed % (len(out) + 1)
    wrong = out[:at] + bytes([out[at] ^ 1]) + out[at + 1:] if at < len(out) else out + b"\x01"  # one byte, surely another
    for expected, outcome in ((out, ("ok", None)), (wrong, ("mismatch",))):
        # Patterns are matched on the stream's bytes: every byte written as a \xHH escape matches it, UTF-8 or not.
        pattern = "".join(f"\\x{byte:02x}" for byte in expected)
        body = {"name": name, "module": f"{name}.wat", "wasi": wasi, "expect": {"stdout_match": rf"\A{pattern}\Z"}}
        path = guests / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))  # ASCII, escapes for the rest: "\x85" is a YAML line break raw
        workload = load_workload(str(path))
        assert workload.recipe is not None and list(workload.recipe.argv) == argv and dict(workload.recipe.env) == env
        lean, _ = served(workload, "lean")
        native, _ = served(workload, "native")
        assert lean[0] == outcome and native[:len(lean)] == lean, (body, lean, native)


# ---- What the glue is handed: malformed trees and raw program ops are refused, never a crash ----

REFUSALS = (ValueError, TypeError, OverflowError, AttributeError)
JUNK = st.none() | st.text(max_size=3) | st.floats() | st.integers(-(1 << 70), 1 << 70)


def _tree(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A ComponentValue-like object with random attributes (now and then one missing, or of another type)."""
    fields = {"kind": st.integers(-2, 22) | JUNK, "number": st.integers(0, 1 << 64) | JUNK,
              "text": st.binary(max_size=4) | JUNK, "items": st.lists(children, max_size=3).map(tuple) | st.lists(children, max_size=2) | JUNK,
              "names": st.lists(st.binary(max_size=3) | JUNK, max_size=3).map(tuple) | JUNK,
              "version": st.just(boundary.BOUNDARY_VERSION) | st.sampled_from([0, boundary.BOUNDARY_VERSION + 1]) | JUNK}
    return st.fixed_dictionaries({k: v for k, v in fields.items() if k in ("kind", "version")},
                                 optional={k: v for k, v in fields.items() if k not in ("kind", "version")}).map(
        lambda attrs: SimpleNamespace(**attrs))


TREES = st.recursive(_tree(st.just(boundary.ComponentValue(0)) | JUNK), _tree, max_leaves=8)
WELL_FORMED = st.sampled_from(sorted(SIGNATURES)).flatmap(lambda n: values(SIGNATURES[n].result).map(
    lambda v, n=n: call_plan(n, SIGNATURES[n], (v, PAD), v).expected))


def refused_or_served(driver: Any, add: Any) -> int | None:
    """What the glue does with a plan: refused in one line (None), or added and served twice (the first outcome)."""
    try:
        index = add()
    except REFUSALS as exc:
        event(f"refused: {type(exc).__name__}")
        one_line_refusal(exc)
        return None
    outcomes, _ = serve(driver, index, 2)
    event(f"served: outcome {outcomes[0]}")
    return int(outcomes[0])


def one_line_refusal(exc: BaseException) -> None:
    assert isinstance(exc, REFUSALS), repr(exc)
    assert str(exc) and "\n" not in str(exc), repr(exc)


@fuzz(400)
@given(expected=TREES | WELL_FORMED, as_argument=st.booleans())
@example(expected=functools.reduce(lambda inner, _: boundary.ComponentValue(18, items=(inner,)), range(70), boundary.ComponentValue(0)),
         as_argument=False)
def test_a_malformed_value_tree_is_refused_or_compared_never_a_crash(driver, expected, as_argument):
    """As the expectation of a call, or as its argument (which wasmtime type-checks): refused in one line when added, or
    served, each request an outcome (a mismatch; a wrong argument's error, which the component loop counts as the call's
    failure, a trap), never a crash or a sanitizer report."""
    name = "take-level"
    call = call_plan(name, SIGNATURES[name], ("low", PAD), None)
    args = (expected, call.args[1]) if as_argument else call.args
    plan = boundary.ComponentPlan(ECHO, ECHO_SHA, (boundary.ComponentCallPlan(call.entry, args, True, _native.CHECK_EXPECTED,
                                                                              call.args[0] if as_argument else expected),))
    outcome = refused_or_served(driver, lambda: driver.add_component(plan))
    allowed = (_native.OUT_OK, _native.OUT_MISMATCH, *((_native.OUT_TRAP,) if as_argument else ()))
    assert outcome is None or outcome in allowed, outcome


LIBRARY_WASM = bytes(wasmtime.wat2wasm(LIBRARY))
SIZE = 65536  # the library's memory
OFFSETS = st.sampled_from([0, 1, 4, 32767, 32768, SIZE - 5, SIZE - 4, SIZE - 1, SIZE, SIZE + 1, -1, -SIZE, (1 << 63) - 1,
                           -(1 << 63), 1 << 63, 1 << 64, -(1 << 64) - 1]) | st.integers(-10, SIZE + 10)
AT = st.tuples(st.sampled_from([-1, 0]), OFFSETS.filter(lambda o: abs(o) < 1 << 63))  # a literal, or slot 0 (32768) plus
OPERANDS = st.tuples(st.integers(-3, 258) | st.sampled_from([-1, 0, 1]), OFFSETS) | JUNK | st.tuples(st.integers(), st.integers(), st.integers())
RAW_OPS = st.one_of(
    st.builds(boundary.CallOp, st.sampled_from([b"get_buffer", b"get_output", b"transform", b"", b"nope", b"memory"]) | JUNK,
              st.lists(OPERANDS, max_size=17).map(tuple) | JUNK, st.text("iIx", max_size=17) | JUNK,
              st.sampled_from(["", "i", "I", "x", "ii"]) | JUNK, st.integers(-3, 258) | JUNK, st.booleans()),
    st.builds(boundary.WriteOp, OPERANDS, st.binary(max_size=8) | JUNK),
    st.builds(boundary.ReadOp, OPERANDS, OPERANDS, st.integers(-2, 4) | JUNK),
    st.builds(boundary.LoadOp, OPERANDS, st.integers(-3, 258) | JUNK),
    st.builds(boundary.StoreOp, OPERANDS, OPERANDS),
    st.just(boundary.StepEnd()), JUNK.map(lambda j: SimpleNamespace(code=j)))
# Mostly well-formed programs around the bounds: get_output's 32768 into slot 0, then random memory ops on it.
SOUND_OPS = st.one_of(
    st.builds(lambda at, n: boundary.WriteOp(at, b"x" * n), AT, st.integers(0, 8)),
    st.builds(lambda at, n: boundary.ReadOp(at, n, 0), AT, st.tuples(st.just(-1), st.integers(-2, 8)) | AT),
    st.builds(lambda at: boundary.LoadOp(at, 1), AT),
    st.builds(lambda at: boundary.StoreOp(at, (-1, 7)), AT))
GET_OUTPUT = boundary.CallOp(b"get_output", (), "", "i", 0, True)


def numbered(ops: list[Any]) -> list[Any]:
    """The read ops numbered 0, 1, ... in order."""
    reads = itertools.count()
    return [dataclasses.replace(op, read=next(reads)) if isinstance(op, boundary.ReadOp) else op for op in ops]


def program_plan(ops: tuple[Any, ...], nreads: Any, mode: int = 0, memory: bytes = b"memory") -> boundary.RequestPlan:
    check = boundary.ResultCheck(mode, 32768)
    return boundary.RequestPlan(LIBRARY_WASM, hashlib.sha256(LIBRARY_WASM).digest(), check, result_kind="i",
                                program=boundary.RecipeProgram(ops, memory, nreads))


@fuzz(400)
@given(program=st.tuples(st.lists(RAW_OPS, max_size=6).map(tuple), st.integers(-1, 3) | JUNK)
       | st.lists(SOUND_OPS, max_size=6).map(lambda o: ((GET_OUTPUT, *(numbered(o))), sum(isinstance(op, boundary.ReadOp) for op in o))),
       mode=st.integers(0, 2), memory=st.sampled_from([b"memory", b"memory", b"mem", b""]))
def test_raw_program_ops_are_refused_or_run_never_a_crash(driver, program, mode, memory):
    """Random ops (any field of any type, slots out of range or unwritten, integers past 64 bits) are refused in one line;
    well-formed ones around the memory's end (at it, one past it, negative, 64-bit extremes, slot 0 + an offset that
    overflows) run, each request an outcome."""
    ops, nreads = program
    outcome = refused_or_served(driver, lambda: driver.add(program_plan(ops, nreads, mode, memory)))
    assert outcome is None or outcome in range(0, 7), outcome


def memory_op(kind: str, at: tuple[int, int], n: int) -> tuple[Any, ...]:
    """An access of ``n`` bytes (4 for a load or a store) at operand ``at``, after get_output's 32768 into slot 0."""
    op = {"write": lambda: boundary.WriteOp(at, b"w" * n), "read": lambda: boundary.ReadOp(at, (-1, n), 0),
          "load": lambda: boundary.LoadOp(at, 1), "store": lambda: boundary.StoreOp(at, (-1, 7))}[kind]()
    return (GET_OUTPUT, op)


@pytest.mark.parametrize("kind", ["write", "read", "load", "store"])
@pytest.mark.parametrize("slot", [-1, 0])
def test_an_access_ending_at_the_memory_size_runs_and_one_byte_further_is_refused(driver, kind, slot):
    n = 4 if kind in ("load", "store") else 5
    base = 0 if slot < 0 else 32768
    for end, outcome in ((SIZE, _native.OUT_OK), (SIZE + 1, _native.OUT_ERROR), (SIZE - 1, _native.OUT_OK)):
        index = driver.add(program_plan(memory_op(kind, (slot, end - n - base), n), 1))
        outcomes, message = serve(driver, index, 2)
        assert outcomes == [outcome] * 2, (kind, end, outcomes, message)
        if outcome == _native.OUT_ERROR:
            assert f"{n} bytes at {end - n} run past the memory's end ({SIZE} bytes)" in message, message
    if kind == "read":  # nothing read at the very end
        assert serve(driver, driver.add(program_plan(memory_op(kind, (slot, SIZE - base), 0), 1)), 2)[0] == [_native.OUT_OK] * 2


@pytest.mark.parametrize("at", [(-1, -1), (-1, -(1 << 63)), (-1, (1 << 63) - 1), (0, (1 << 63) - 1), (0, -(1 << 63)), (0, -32769)])
@pytest.mark.parametrize("kind", ["write", "read", "load", "store"])
def test_negative_huge_and_overflowing_addresses_are_refused_as_past_the_end(driver, kind, at):
    """Slot 0 holds 32768: plus 2**63 - 1 it overflows 64 bits (signed overflow in C, which UBSan reports), and is refused
    as the Python paths refuse the exact sum."""
    index = driver.add(program_plan(memory_op(kind, at, 4), 1))
    outcomes, message = serve(driver, index, 2)
    assert outcomes == [_native.OUT_ERROR] * 2 and "past the memory's end" in message, (outcomes, message)


@pytest.mark.parametrize("operand", [(-1, 1 << 63), (-1, -(1 << 63) - 1), (-1, 1 << 64), (0, 1 << 100), (1 << 31, 0), (-2, 0), (256, 0),
                                     (7, 0), [0, 0], (0,), "0"])
def test_an_operand_past_64_bits_out_of_range_unwritten_or_not_a_pair_is_refused_in_one_line(driver, operand):
    for ops in ((GET_OUTPUT, boundary.WriteOp(operand, b"x")), (boundary.CallOp(b"transform", (operand,), "i", "i", -1, True),)):
        with pytest.raises(REFUSALS) as refused:
            driver.add(program_plan(ops, 0))
        one_line_refusal(refused.value)
