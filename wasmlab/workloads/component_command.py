"""Component commands: a component exporting ``wasi:cli/run@VERSION`` (``run: func() -> result``) run as a WASI command.

The one place that recognises a component as a command (:func:`run_entry`) and builds its workload
(:func:`command_workload`): a request calls ``wasi:cli/run@VERSION#run`` in a store whose WASI p2 context has the
command's argv, environment, stdin, stdio files and directories (the same ``wasmtime_context_set_wasi`` config a core
command gets: measured, wasmtime 50's WASI p2 reads argv, environment, stdout, stderr and preopens from it), and ends with
an exit status: ``run`` returning ``ok`` is status 0 and ``err`` status 1 (as ``wasmtime run`` reports them), and
``wasi:cli/exit#exit`` ends it with its status as a core command's ``proc_exit`` does.  Every call path checks that status
with ``Expectation.exit_ok`` and the outputs as a core command's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import wasmtime.component

from wasmlab.errors import ConfigError
from wasmlab.workloads import introspect
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe.model import Recipe
from wasmlab.workloads.signature import Signature

# The exported interface a command runs, before its version: ``wasi:cli/run@0.2.6``.
RUN_INTERFACE = "wasi:cli/run@"
RUN_FUNCTION = "run"


def run_entry(exports: Mapping[str, Any]) -> str | None:
    """The full name of the ``run`` function of the ``wasi:cli/run@*`` interface among a component's ``exports``
    (``wasi:cli/run@0.2.6#run``), or ``None`` when the component is not a command."""
    for name, item in exports.items():
        ty = getattr(item, "ty", None)
        if name.startswith(RUN_INTERFACE) and isinstance(ty, wasmtime.component.ComponentInstanceType):
            inner = getattr(ty.exports(introspect.engine()).get(RUN_FUNCTION), "ty", None)
            if isinstance(inner, wasmtime.component.FuncType):
                return f"{name}{introspect.SEPARATOR}{RUN_FUNCTION}"
    return None


def run_function(exports: Mapping[str, Any]) -> wasmtime.component.FuncType:
    """The type of the command's ``run`` (a component :func:`run_entry` names)."""
    entry = run_entry(exports)
    assert entry is not None
    return introspect.functions_of(exports, introspect.engine())[entry]


def exit_status(result: object) -> int:
    """The exit status ``run``'s result means: ``ok`` 0, ``err`` 1 (wasmtime-py's value or the lab's ``Case``)."""
    return 0 if getattr(result, "tag", None) == "ok" else 1


def command_workload(name: str, wasm: bytes, exports: Mapping[str, Any], provenance: str, *, argv: tuple[str, ...] = (),
                     stdin: bytes | None = None, preopens: tuple[tuple[str, str], ...] = (), stdout_pattern: str | None = None,
                     recipe: Recipe | None = None) -> Workload:
    """The component command ``wasm`` (whose ``exports`` :func:`run_entry` recognises) as a workload: each request runs
    ``run`` with the WASI context given (argv, stdin, read-only ``preopens``; a recipe's environment and writable
    directories), checked by its exit status (the recipe's ``expect.exit``, default 0) and its outputs (``stdout_pattern``,
    the recipe's ``expect``); without any expectation, each request's outputs must equal the first request's."""
    entry = run_entry(exports)
    if entry is None:
        raise ConfigError(f"component {name} exports no {RUN_INTERFACE}VERSION interface with a run function; it is not a command")
    signature = Signature.of(run_function(exports))
    if signature.params:
        raise ConfigError(f"{entry} of component {name} takes parameters ({signature.wit}); allowed: run: func() -> result")
    stderr_pattern = recipe.expect.stderr_match if recipe is not None else None
    expected_exit = recipe.expect.exit if recipe is not None else None
    anything = bool(stdout_pattern) or bool(recipe is not None and recipe.expect.anything)
    return Workload(name=name, wasm=wasm, entry=entry, params=(), results=(signature.result.wit,) if signature.result else (),
                    args=(), expected=None, kind="component", provenance=provenance, wasi=True, argv=argv, stdin=stdin,
                    stdout_pattern=stdout_pattern, stderr_pattern=stderr_pattern, expected_exit=expected_exit or 0,
                    preopens=preopens, signature=signature, recipe=recipe, command=True,
                    check="expected" if anything else "first-result")


def recipe_command(recipe: Recipe, wasm: bytes, exports: Mapping[str, Any]) -> Workload:
    """A recipe naming a component command without ``invoke``: its ``wasi:`` section is the command's context, its
    ``expect`` (exit, stdout_match, stderr_match, files) what each request must end with."""
    expect = recipe.expect  # expect.result and expect.bytes need call and read steps: refused when the recipe is parsed
    preopens = tuple((d.host, d.guest) for d in recipe.dirs if d.host and not d.writable)
    return command_workload(recipe.name, wasm, exports, f"recipe {recipe.source}: {recipe.module}", argv=recipe.argv,
                            stdin=recipe.stdin, preopens=preopens, stdout_pattern=expect.stdout_match, recipe=recipe)
