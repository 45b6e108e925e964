"""A recipe's steps for the V8 driver: the parsed steps as plain JSON (``steps.mjs`` interprets them), what V8 cannot
serve of a recipe, its ``imports:`` stubs, and the first request's outcome checked by the lab's own checker.

The driver checks each request inside its time as the native path does in C: the exit status a WASI guest's steps
must end with and the expected result (``expect.result``) on every request; each read ``expect.bytes`` names (every read, and the last call's result, under first-result
checking) against the first request's; the first request's outcome is checked here, once per variant, by
:func:`wasmlab.host.recipes.checker`, so a digest, hex, text or regex is judged by the lab's code, not a copy of it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import wasmtime

from wasmlab.host.hosted import KINDS
from wasmlab.host.recipes import Outcome, checker
from wasmlab.workloads import introspect
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe import Call, Expr, PtrArray, Read, Step, Write


def unserved_kind(workload: Workload) -> str | None:
    """What a core module a recipe drives (without WASI) is when V8 cannot serve it, or ``None``: steps (calls, writes
    and reads), or without steps the plain call of ``run`` / ``_start`` taking and returning i32/i64, its imports the
    recipe's stubs, ending ok or in a trap."""
    if workload.host_imports:
        return "a module importing host functions"
    if workload.expected_outcome not in ("ok", "trap"):
        return f"a guest expected to end in {workload.expected_outcome!r} (what needs wasmtime's limits)"
    if not workload.expectation.exit_ok(None):  # a guest without WASI cannot exit: on wasmtime returning fails it
        return f"a recipe expecting exit {workload.expectation.exit} of a module without WASI (allowed: expect.exit 0 or none)"
    if not workload.steps and (any(k not in KINDS for k in (*workload.params, *workload.results)) or len(workload.results) > 1):
        return f"an export {workload.entry!r} taking {list(workload.params)} and returning {list(workload.results)}"
    return None


def _expression(e: Expr) -> dict[str, Any]:
    return {"name": e.name, "offset": str(e.offset), "call": None if e.call is None else _call(e.call),
            "load": None if e.load is None else _expression(e.load)}


def _argument(a: Expr | PtrArray) -> dict[str, Any]:
    if isinstance(a, PtrArray):
        return {"ptr_array": [_expression(item) for item in a.items], "at": None if a.at is None else _expression(a.at)}
    return _expression(a)


def _call(c: Call) -> dict[str, Any]:
    return {"export": c.export, "args": [_argument(a) for a in c.args], "as": c.name, "where": c.where}


def _step(step: Step) -> dict[str, Any]:
    if isinstance(step, Call):
        return {"kind": "call", **_call(step)}
    if isinstance(step, Write):
        return {"kind": "write", "at": _expression(step.at), "data": base64.b64encode(step.data).decode(), "where": step.where}
    if isinstance(step, Read):
        return {"kind": "read", "at": _expression(step.at), "length": _expression(step.length), "name": step.name, "where": step.where}
    raise AssertionError(f"recipe {step.where}: an invoke step left unconverted")  # to_workload turns a core module's into calls


def described(workload: Workload) -> dict[str, Any]:
    """The recipe of ``workload`` as the driver reads it (see ``steps.mjs``): its steps, the types of what they call,
    and what each request is compared with (the expected result; the reads, and the result, compared with the first's)."""
    recipe, expectation = workload.recipe, workload.expectation
    expected = expectation.result.value
    same = expectation.same_as_first
    reads = list(dict.fromkeys(s.name for s in recipe.steps if isinstance(s, Read)))
    return {"memory": recipe.memory, "allocator": recipe.allocator,
            "signatures": {name: [list(params), list(results)] for name, (params, results) in recipe.signatures.items()},
            "steps": [_step(s) for s in recipe.steps],
            # Only an integer is compared in node; anything else fails the first request in the lab's checker, as on lean.
            "expected": str(expected) if isinstance(expected, int) and not isinstance(expected, bool) else None,
            "same_as_first": same, "compared": [name for name in reads if same or name in expectation.reads],
            "exit": expectation.exit}


def stubs(workload: Workload) -> dict[str, list[str | None]]:
    """A recipe's ``imports:`` stubs as the driver makes them: ``"module.name"`` -> [the constant, as a decimal string;
    the kind of the import's result, or None when it returns nothing] (from the module's own import types)."""
    imports = workload.recipe.imports if workload.recipe is not None else {}
    if not imports:
        return {}
    found: dict[str, list[str | None]] = {}
    for item in introspect.core_module(workload.wasm).imports:
        key = f"{item.module}.{item.name}"
        if key in imports and isinstance(item.type, wasmtime.FuncType):
            results = [str(r) for r in item.type.results]
            found[key] = [str(int(imports[key])), results[0] if results else None]
    return found


def check_first(workload: Workload, outcome: Mapping[str, Any]) -> None:
    """The first request's outcome (as the driver reports it: the result as a decimal string, reads in base64) checked
    as the lab checks a request's outcome: ResultMismatch with the lab's own message when it is wrong."""
    result = outcome["result"]
    reads = {name: base64.b64decode(data) for name, data in outcome["reads"].items()}
    checker(workload)(Outcome(exit=outcome["exit"], result=None if result is None else int(result), reads=reads))
