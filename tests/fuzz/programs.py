"""Random recipe programs for the fuzzing of the native path against the lean one: steps a real guest (the recipe tests'
library and reactor) can run, with names set before they are used, and integers where the bounds are (the memory's
last byte, one past it, negative, 64-bit extremes), nested calls, loads and pointer arrays; and how a request of either
path ended, in words both paths share."""

from __future__ import annotations

import re
from typing import Any

import wasmtime
from hypothesis import strategies as st

from wasmlab.errors import NativeFailure, RecipeError, ResultMismatch

MEMORY = 65536  # both guests' memory: one page
EDGES = [0, 1, 4, 4096, 32768, MEMORY - 4, MEMORY - 3, MEMORY - 1, MEMORY, MEMORY + 1, -1, -4, (1 << 31) - 1, 1 << 31,
         (1 << 32) - 1, (1 << 63) - 1, -(1 << 63)]
LITERALS = st.sampled_from(EDGES) | st.integers(-8, 70000)
# Each guest's exports: name -> (the parameters, whether it returns a value).
EXPORTS = {
    "library": {"get_buffer": (0, True), "get_output": (0, True), "transform": (1, True)},
    "reactor": {"_initialize": (0, False), "malloc": (1, True), "init_argv": (2, True), "argv_total": (0, True)},
}


def _expressions(names: list[str], exports: dict[str, tuple[int, bool]], depth: int = 1) -> st.SearchStrategy[Any]:
    """An integer expression: a literal, NAME+N or NAME-N of a name already set, a nested call returning a value, a load."""
    options = [LITERALS]
    if names:
        options.append(st.builds(lambda n, k: f"{n}{'+' if k >= 0 else '-'}{abs(k)}", st.sampled_from(names),
                                 st.sampled_from([0, 1, 4, MEMORY, MEMORY - 4096, (1 << 63) - 1]) | st.integers(-8, 8)))
    if depth > 0:
        returning = sorted(e for e, (params, returns) in exports.items() if returns)
        inner = _expressions(names, exports, depth - 1)
        options.append(st.sampled_from(returning).flatmap(
            lambda e: st.lists(inner, min_size=exports[e][0], max_size=exports[e][0]).map(lambda a, e=e: {"call": e, "args": a})))
        options.append(inner.map(lambda at: {"load": at}))
    return st.one_of(*options)


@st.composite
def steps(draw: st.DrawFn, guest: str) -> list[dict[str, Any]]:
    """A guest's steps: calls (named or not, pointer arrays among a reactor's arguments), writes, reads (two names, so a
    name is sometimes read twice)."""
    exports = EXPORTS[guest]
    names: list[str] = []
    out: list[dict[str, Any]] = []
    if guest == "reactor" and draw(st.integers(0, 9)) > 0:
        out.append({"call": "_initialize"})  # mostly: without it every other call traps
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["call", "call", "write", "read"]))
        if kind == "call":
            export = draw(st.sampled_from(sorted(exports)))
            params, returns = exports[export]
            args = [draw(_expressions(names, exports)) for _ in range(params)]
            if export == "init_argv":
                args[1] = {"ptr_array": draw(st.lists(_expressions(names, exports, 0), min_size=1, max_size=3))}
            step: dict[str, Any] = {"call": export, "args": args}
            if returns and draw(st.booleans()):
                step["as"] = name = f"v{len(names)}"
                names.append(name)
            out.append(step)
        elif kind == "write":
            data = draw(st.sampled_from([{"text": "hello"}, {"hex": "00ff"}, {"text": ""}, {"repeat": {"byte": 97, "count": 300}}]))
            out.append({"write": {"at": draw(_expressions(names, exports)), **data}})
        else:
            out.append({"read": {"at": draw(_expressions(names, exports)), "length": draw(_expressions(names, exports, 0)),
                                 "as": draw(st.sampled_from(["r0", "r1"]))}})
    return out


def ended(request: Any) -> tuple[Any, ...]:
    """How one request of a served recipe ended, in words both paths share: ("ok", result: the lean path's Outcome's or
    the native path's int), ("trap",), ("step", N, what): step N could not run (a memory access past the end), or
    ("mismatch",).  ``request`` is the runtime's handle, called here."""
    try:
        outcome = request()
    except ResultMismatch:
        return ("mismatch",)
    except RecipeError as exc:
        return ("step", *_step_of(str(exc)))
    except NativeFailure as exc:
        if exc.kind == "error":  # the native path's failed memory step: an error, never a pool's or a memory limit's
            return ("step", *_step_of(str(exc)))
        return (exc.kind,)
    except (wasmtime.Trap, wasmtime.WasmtimeError):
        return ("trap",)
    return ("ok", outcome.result if hasattr(outcome, "result") else outcome)


def _step_of(message: str) -> tuple[int, str]:
    match = re.search(r"steps\[(\d+)\]", message)
    assert match and "past the memory's end" in message, message
    return int(match[1]), "past the end"


# A WASI command that writes to stdout what it was given: its argv strings (each ending in NUL), its environment's
# NAME=VALUE strings (each ending in NUL), then all of stdin.
ECHO_COMMAND = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 4)
  (func $out (param $at i32) (param $n i32)
    (i32.store (i32.const 16) (local.get $at)) (i32.store (i32.const 20) (local.get $n))
    (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)) (then (call $proc_exit (i32.const 71)))))
  (func (export "_start") (local $n i32)
    (if (call $args_sizes (i32.const 0) (i32.const 4)) (then (call $proc_exit (i32.const 72))))
    (if (call $args (i32.const 1024) (i32.const 65536)) (then (call $proc_exit (i32.const 73))))
    (call $out (i32.const 65536) (i32.load (i32.const 4)))
    (if (call $env_sizes (i32.const 0) (i32.const 4)) (then (call $proc_exit (i32.const 74))))
    (if (call $env (i32.const 1024) (i32.const 65536)) (then (call $proc_exit (i32.const 75))))
    (call $out (i32.const 65536) (i32.load (i32.const 4)))
    (block (loop
      (i32.store (i32.const 16) (i32.const 131072)) (i32.store (i32.const 20) (i32.const 65536))
      (if (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)) (then (call $proc_exit (i32.const 76))))
      (local.set $n (i32.load (i32.const 24)))
      (br_if 1 (i32.eqz (local.get $n)))
      (call $out (i32.const 131072) (local.get $n))
      (br 0)))))"""
