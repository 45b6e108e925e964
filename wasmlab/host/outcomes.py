"""How a request ended: a typed outcome, counted in the results, never a crash of the lab."""

from __future__ import annotations

import wasmtime

from wasmlab import _native
from wasmlab.errors import CommandExit, NativeFailure, PoolExhausted
from wasmlab.workloads.model import WASM_PAGE

OK = "ok"
# Fixed kinds counted in their own columns; exit codes are reported as ``exit(N)``.
KINDS = ("ok", "trap", "timeout", "fuel", "oom", "stack", "exit", "pool_exhausted", "error", "crash")
# The C driver's error codes (a request that failed without a trap or an exit), as outcome kinds.  wasmtime's words
# for a pool with no free slot or a memory limit are read in one place, the C driver's failures.c: its request loop
# counts them at C speed, and ``failure_kind`` asks it (``_native.error_kind_of``) for the Python paths' failures.
NATIVE_ERROR_KINDS = {_native.ERROR_POOL_EXHAUSTED: "pool_exhausted", _native.ERROR_MEMORY_LIMIT: "oom", _native.ERROR_OTHER: "error"}

_TRAP_KINDS = {
    wasmtime.TrapCode.STACK_OVERFLOW: "stack",
    wasmtime.TrapCode.INTERRUPT: "timeout",
    wasmtime.TrapCode.OUT_OF_FUEL: "fuel",
}


# What a request may end with without stopping its variant: wasmtime's traps and errors (named by
# ``classify``).  The lab's own errors (a module that does not compile, a missing export, a wrong
# result) stop the variant instead.
REQUEST_FAILURES = (wasmtime.Trap, wasmtime.WasmtimeError)


def _native_outcome(exc: NativeFailure, memory_limit: int | None) -> str:
    if exc.kind != "trap":
        return exc.kind
    code = None
    if exc.trap_code is not None:
        try:
            code = wasmtime.TrapCode(exc.trap_code)
        except ValueError:
            code = None
    kind = _TRAP_KINDS.get(code) if code is not None else None
    if kind:
        return kind
    if exc.memory_bytes is not None and memory_limit is not None and exc.memory_bytes + WASM_PAGE > memory_limit:
        return "oom"
    return "trap"


def classify(exc: BaseException, memory_limit: int | None = None) -> str:
    """The outcome of a request that raised ``exc``.

    A trap is ``oom`` when the guest's exported memory had reached ``memory_limit`` (a guest
    whose ``memory.grow`` fails usually traps by itself); wasmtime's own code names stack
    overflow, epoch interruption (``timeout``) and running out of fuel.
    """
    if isinstance(exc, NativeFailure):
        return _native_outcome(exc, memory_limit)
    if isinstance(exc, (wasmtime.ExitTrap, CommandExit)):
        return OK if exc.code == 0 else f"exit({exc.code})"
    if isinstance(exc, wasmtime.Trap):
        kind = _TRAP_KINDS.get(exc.trap_code) if exc.trap_code is not None else None
        if kind:
            return kind
        memory = getattr(exc, "wasmlab_memory_bytes", None)
        if memory is not None and memory_limit is not None and memory + WASM_PAGE > memory_limit:
            return "oom"
        return "trap"
    kind = failure_kind(exc)
    if kind == "error" and ("wasm trap" in str(exc) or "unreachable" in str(exc)):
        return "trap"
    return kind


def failure_kind(failure: BaseException | str | int) -> str:
    """``pool_exhausted``, ``oom`` or ``error`` for a failure that is neither a trap nor an exit: an exception,
    wasmtime's message, or the C driver's error code.  The one place that recognises pool exhaustion."""
    if isinstance(failure, int):
        return NATIVE_ERROR_KINDS.get(failure, "error")
    if isinstance(failure, PoolExhausted):
        return "pool_exhausted"
    return NATIVE_ERROR_KINDS.get(_native.error_kind_of(str(failure)), "error")


def kind_of(outcome: str) -> str:
    """``exit(3)`` -> ``exit``; every other outcome is its own kind."""
    return "exit" if outcome.startswith("exit(") else outcome


def first_line(exc: BaseException) -> str:
    """One line for a failure: wasmtime's cause ("wasm trap: ..."), not its backtrace header."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if "Caused by:" in lines:
        return f"{type(exc).__name__}: {lines[-1]}"
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
