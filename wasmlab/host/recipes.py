"""Running a recipe's steps on an instance, through either call path's objects, and checking what a request produced.

:func:`run_steps` is the one interpreter of :mod:`wasmlab.workloads.recipe`'s steps; it reaches the instance
through a :class:`StepTarget`: :class:`ApiTarget` (wasmtime-py's ``Func`` and ``Memory`` objects, the api
path) or :class:`RawTarget` (the C API through :mod:`wasmlab.capi`, raw values and a pointer to the memory's
bytes, the lean path).  A request's outcome (its exit code, the last call's result, a digest per read) is
checked against the workload's :class:`~wasmlab.workloads.expectation.Expectation` (the recipe's ``expect`` or,
without one, the first request's).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import wasmtime

from wasmlab import capi
from wasmlab.errors import RecipeError, ResultMismatch
from wasmlab.workloads import introspect
from wasmlab.workloads.expectation import Expectation
from wasmlab.workloads.recipe import Call, Expr, PtrArray, Read, Recipe, Write


class StepTarget(Protocol):
    def call(self, export: str, args: list[int]) -> int | None: ...

    def memory_size(self) -> int: ...

    def write(self, at: int, data: bytes) -> None: ...

    def read(self, at: int, length: int) -> bytes: ...


@dataclass
class Outcome:
    """What one request of a recipe produced."""

    exit: int | None = None
    result: int | None = None
    reads: dict[str, bytes] = field(default_factory=dict)

    def fingerprint(self) -> tuple[Any, ...]:
        """The outcome in a form two requests can be compared by (digests, not bytes)."""
        return (self.exit, self.result, tuple(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in self.reads.items())))


def run_steps(recipe: Recipe, target: StepTarget, stamps: list[int] | None = None) -> Outcome:  # noqa: C901 - the step interpreter: one branch per recipe op, kept in one loop because it runs inside the timed call
    """Every step of ``recipe`` on ``target``, in order; a WASI exit ends the request (its code is the outcome's).

    With ``stamps`` (phased requests only), it is refilled with a ``perf_counter_ns`` stamp before the first step
    and after each step that ran, so that ``--phases`` can time every step; without, nothing is stamped."""
    values: dict[str, int] = {}
    outcome = Outcome()
    running = ["steps"]  # the step running, for a load past the memory's end to name it as any other step's problem does

    def value(expr: Expr) -> int:
        if expr.load is not None:
            at = value(expr.load)
            bounded(at, 4, f"{running[0]}.load")
            return int(struct.unpack("<I", target.read(at, 4))[0]) + expr.offset
        if expr.call is not None:
            result = call(expr.call)
            if result is None:
                raise RecipeError(f"recipe {expr.call.where}: export {expr.call.export!r} returns nothing, so it has no value")
            return result + expr.offset
        return (values[expr.name] if expr.name is not None else 0) + expr.offset

    def argument(arg: Expr | PtrArray, where: str) -> int:
        if isinstance(arg, Expr):
            return value(arg)
        items = [value(item) & 0xFFFFFFFF for item in arg.items]
        data = struct.pack(f"<{len(items)}I", *items)
        at = value(arg.at) if arg.at is not None else target.call(recipe.allocator, [len(data)])
        if at is None:
            raise RecipeError(f"recipe {where}: allocator {recipe.allocator!r} returned nothing")
        bounded(at, len(data), where)
        target.write(at, data)
        return at

    def call(step: Call) -> int | None:
        return target.call(step.export, [argument(a, f"{step.where}.args[{i}]") for i, a in enumerate(step.args)])

    def bounded(at: int, length: int, where: str) -> None:
        size = target.memory_size()
        if at < 0 or length < 0 or at + length > size:
            raise RecipeError(f"recipe {where}: {length} bytes at {at} run past the memory's end ({size} bytes); "
                              f"allowed: 0 <= at and at + length <= {size}")

    if stamps is not None:
        stamps.clear()
        stamps.append(time.perf_counter_ns())
    try:
        for step in recipe.steps:
            running[0] = step.where
            if isinstance(step, Call):
                result = call(step)
                if step.name is not None:
                    if result is None:
                        raise RecipeError(f"recipe {step.where}.as: export {step.export!r} returns nothing to name")
                    values[step.name] = result
                outcome.result = result
            elif isinstance(step, Write):
                at = value(step.at)
                bounded(at, len(step.data), step.where + ".write")
                target.write(at, step.data)
            elif isinstance(step, Read):
                at, length = value(step.at), value(step.length)
                bounded(at, length, step.where + ".read")
                outcome.reads[step.name] = target.read(at, length)
            if stamps is not None:
                stamps.append(time.perf_counter_ns())
    except wasmtime.ExitTrap as exc:
        outcome.exit = exc.code
        if stamps is not None:  # the step that exited ended the request
            stamps.append(time.perf_counter_ns())
    return outcome


class ApiTarget:
    """A recipe's instance through wasmtime-py's objects (the api path)."""

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance, recipe: Recipe) -> None:
        self.store, self.exports = store, instance.exports(store)
        memory = self.exports.get(recipe.memory) if recipe.uses_memory else None
        self.memory = memory if isinstance(memory, wasmtime.Memory) else None

    def call(self, export: str, args: list[int]) -> int | None:
        func = self.exports[export]
        assert isinstance(func, wasmtime.Func)
        result = func(self.store, *args)
        return result if isinstance(result, int) else None

    def _memory(self) -> wasmtime.Memory:
        if self.memory is None:
            raise RecipeError("recipe: the module exports no memory for the steps to write or read")
        return self.memory

    def memory_size(self) -> int:
        return self._memory().data_len(self.store)

    def write(self, at: int, data: bytes) -> None:
        self._memory().write(self.store, data, at)

    def read(self, at: int, length: int) -> bytes:
        return bytes(self._memory().read(self.store, at, at + length))


class RawTarget:
    """A recipe's instance through the C API (the lean path): exports looked up by name into a reused extern,
    calls with raw values, the memory's bytes through ``wasmtime_memory_data``."""

    def __init__(self, recipe: Recipe, arity: dict[str, tuple[int, bool]], returns: dict[str, bool]) -> None:
        self.recipe = recipe
        self.arity = arity  # export -> (parameters, returns an i64)
        self.results = returns  # export -> returns a value
        slots = max([max(p, 1) for p, _ in arity.values()] or [1])
        self.raw = (capi.val_raw_t * slots)()
        self.words64 = (ctypes.c_int64 * (2 * slots)).from_buffer(self.raw)
        self.words32 = (ctypes.c_int32 * (4 * slots)).from_buffer(self.raw)
        self.nraw = ctypes.c_size_t(slots)
        self.extern = capi.extern_t()
        self.memory_extern = capi.extern_t()
        self.trap = capi.trap_slot()
        self.names = {name: (name.encode(), ctypes.c_size_t(len(name.encode()))) for name in [*arity, recipe.memory]}
        self.context: Any = None
        self.instance_ref: Any = None

    def bind(self, context: Any, instance_ref: Any) -> RawTarget:
        self.context, self.instance_ref = context, instance_ref
        if self.recipe.uses_memory:
            name, size = self.names[self.recipe.memory]
            if not (capi.instance_export_get(context, instance_ref, name, size, ctypes.byref(self.memory_extern))
                    and self.memory_extern.kind == capi.EXTERN_MEMORY):  # type: ignore[comparison-overlap]  # ctypes reads a c_uint8 field as int
                raise RecipeError(f"recipe memory: the module exports no memory named {self.recipe.memory!r}")
        return self

    def call(self, export: str, args: list[int]) -> int | None:
        name, size = self.names[export]
        if not capi.instance_export_get(self.context, self.instance_ref, name, size, ctypes.byref(self.extern)):
            raise RecipeError(f"recipe: export {export!r} not found")
        words = self.words64
        for i, arg in enumerate(args):
            words[2 * i] = arg
        err = capi.func_call_unchecked(self.context, ctypes.byref(self.extern, capi.EXTERN_OF_OFFSET), self.raw, self.nraw,
                                       ctypes.byref(self.trap))
        if err or self.trap:
            capi.raise_failure(err, self.trap)
        if not self.results[export]:
            return None
        return int(self.words64[0]) if self.arity[export][1] else int(self.words32[0])

    def _pointer(self) -> tuple[int, int]:
        memory = ctypes.byref(self.memory_extern, capi.EXTERN_OF_OFFSET)
        return int(capi.memory_data(self.context, memory).value or 0), int(capi.memory_data_size(self.context, memory))

    def memory_size(self) -> int:
        return self._pointer()[1]

    def write(self, at: int, data: bytes) -> None:
        ctypes.memmove(self._pointer()[0] + at, data, len(data))

    def read(self, at: int, length: int) -> bytes:
        return ctypes.string_at(self._pointer()[0] + at, length)


def arities(recipe: Recipe) -> tuple[dict[str, tuple[int, bool]], dict[str, bool]]:
    """For every export the recipe calls: (its parameter count, whether it returns an i64), and whether it returns a
    value (from the types read when the recipe was checked against its module)."""
    out = {name: (len(params), results == ("i64",)) for name, (params, results) in recipe.signatures.items()}
    return out, {name: bool(results) for name, (_, results) in recipe.signatures.items()}


def checker(workload: Any) -> Callable[[Outcome], None]:
    """Checks one request's outcome of a recipe's steps against the workload's expectation: the recipe's ``expect``
    where it has one, else the first request's outcome."""
    expectation: Expectation = workload.expectation
    label = f"recipe {workload.recipe.name!r}"
    expected_result = expectation.result.value
    first: list[tuple[Any, ...]] = []

    def check(outcome: Outcome) -> None:
        if not expectation.exit_ok(outcome.exit):
            raise ResultMismatch(f"{label}: exit {outcome.exit or 0}, expected exit {expectation.exit}")
        if expected_result is not None and outcome.result != expected_result:
            raise ResultMismatch(f"{label}: result {outcome.result}, expected {expected_result}")
        for name, (kind, value) in expectation.reads.items():
            data = outcome.reads.get(name, b"")
            got = hashlib.sha256(data).hexdigest() if kind == "sha256" else data.hex() if kind == "hex" else data.decode(errors="replace")
            if kind == "regex":
                if not re.search(value, got):
                    raise ResultMismatch(f"{label}: bytes {name!r} do not match {value!r}: {got[:64]!r}")
            elif got != (value.lower() if kind in ("sha256", "hex") else value):
                raise ResultMismatch(f"{label}: bytes {name!r} {kind} {got[:64]!r}, expected {value[:64]!r}")
        if expectation.same_as_first:
            seen = outcome.fingerprint()
            if not first:
                first.append(seen)
            elif seen != first[0]:
                raise ResultMismatch(f"{label}: outcome {seen} differs from the first request's {first[0]}")
    return check


def dry_run(workload: Any) -> None:
    """One request of a recipe with steps on a throwaway engine, before anything is measured: a step that cannot run
    as written (a write past the memory's end, an export returning nothing where a value is needed) is a
    :class:`RecipeError` now, in one line.  A result that differs from ``expect`` is left to the measurement, which
    reports it per variant."""
    from wasmlab.host.store import WasiIO

    if not workload.steps:
        return
    engine = introspect.engine()  # a default engine: the dry run needs none of a variant's settings
    store = wasmtime.Store(engine)
    io = WasiIO(workload) if workload.wasi else None
    try:
        if io is not None:
            store.set_wasi(io.config())
        linker = wasmtime.Linker(engine)
        if workload.wasi:
            linker.define_wasi()
        module = introspect.core_module(workload.wasm)
        if workload.recipe.imports:
            from wasmlab.host.linking import define_stubs

            define_stubs(linker, module, workload.recipe.imports)
        instance = linker.instantiate(store, module)
        run_steps(workload.recipe, ApiTarget(store, instance, workload.recipe))
    except RecipeError:
        raise
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise RecipeError(f"recipe {workload.recipe.source}: the first request failed: {str(exc).strip().splitlines()[0]}") from None
    finally:
        store.close()
        if io is not None:
            io.close()
