"""A recipe bound to its module: its steps checked against the module's own types (exports, arity, memory, imports),
then the :class:`~wasmlab.workloads.model.Workload` that serves it.  A component's steps are calls in WAVE, typed by
each export's shapes; a core module's ``invoke`` becomes a call step with integer arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.model import COMPONENT_VERSION, ComponentCall, Workload
from wasmlab.workloads.recipe.fields import integer
from wasmlab.workloads.recipe.model import DEFAULT_INIT, Call, Expr, Invoke, Recipe


def component_invocations(recipe: Recipe) -> list[Invoke]:
    """The calls in WAVE a component's request makes, in order (``invoke:``, or the ``invoke`` steps)."""
    others = [s for s in recipe.steps if not isinstance(s, Invoke)]
    if others:
        raise ConfigError(f"recipe {others[0].where}: {recipe.module} is a component, whose steps are calls in WAVE; "
                          f"allowed: invoke: 'export(args)' steps")
    if recipe.invoke is not None:
        return [Invoke(recipe.invoke, None, "invoke")]
    if recipe.steps:
        return [s for s in recipe.steps if isinstance(s, Invoke)]
    raise ConfigError(f"recipe invoke: missing; {recipe.module} is a component: allowed: invoke: 'export(args in WAVE)' "
                      f"or invoke: steps")


def typed_invocation(recipe: Recipe, step: Invoke, last: bool, types: introspect.ComponentTypes) -> ComponentCall:
    """One call in WAVE typed by its function's shapes (a top-level export or one inside an exported interface, by the
    full name it resolves to): its arguments, and what it must return (its own ``expect``, or for the last call
    without one the recipe's ``expect.result``; ``None``: the first request's result)."""
    from wasmlab.workloads.signature import Signature
    from wasmlab.workloads.wave import parse_call, parse_value, typed, typed_args

    where = f"recipe {step.where}"
    name, trees = parse_call(step.text, f"{where}.invoke" if step.where != "invoke" else where)
    name = types.resolve(name, f"{where}: {recipe.module}")
    signature = Signature.of(types.functions[name])
    args = typed_args(trees, signature.params, name, where)
    wave, key = (recipe.expect.result, "expect.result") if last and step.expect is None else (step.expect, f"{step.where}.expect")
    expected = None
    if wave is not None:
        if signature.result is None:
            raise ConfigError(f"recipe {key}: {name} returns nothing")
        expected = typed(parse_value(str(wave), f"recipe {key}"), signature.result, f"recipe {key}")
    return ComponentCall(name, signature, tuple(args), expected)


def component_recipe_workload(recipe: Recipe, wasm: bytes) -> Workload:
    """A component driven by ``invoke`` or by ``invoke:`` steps (WAVE): the calls of one request, in order, in one
    instance, their arguments and expected results typed by each export's own types.  The last call is the
    workload's entry; the calls before it are its ``before`` calls.  A component command (``wasi:cli/run``) named
    without either runs as a command (:mod:`wasmlab.workloads.component_command`)."""
    from wasmlab.workloads.component_command import recipe_command, run_entry
    from wasmlab.workloads.components import component_workload
    from wasmlab.workloads.recipe.component_imports import component_stubs

    types = introspect.component_types(wasm)
    stubs = component_stubs(recipe, types)
    if recipe.invoke is None and not recipe.steps and run_entry(types.exports) is not None:
        return dataclasses.replace(recipe_command(recipe, wasm, types.exports), stubs=stubs)
    steps = component_invocations(recipe)
    calls = [typed_invocation(recipe, step, k == len(steps) - 1, types) for k, step in enumerate(steps)]
    last = calls[-1]
    workload = component_workload(recipe.name, wasm, last.entry, last.args, last.expected, provenance=f"recipe {recipe.source}: {recipe.module}")
    workload = dataclasses.replace(workload, before=tuple(calls[:-1]), stubs=stubs)
    if last.expected is None and last.signature.result is not None:
        return dataclasses.replace(workload, check="first-result")
    return workload


def invoked_call(text: str) -> Call:
    """``name(1, 2)`` in WAVE, for a core module: one call step with integer arguments."""
    from wasmlab.workloads.wave import parse_call

    name, trees = parse_call(text, "recipe invoke")
    args = []
    for i, tree in enumerate(trees):
        if getattr(tree, "data", None) != "number":
            raise ConfigError(f"recipe invoke argument {i}: a core export takes integers; allowed: e.g. {name}(1, 2)")
        args.append(Expr(offset=int(str(tree.children[0]), 0)))
    return Call(name, tuple(args), None, "invoke")


def check_calls(recipe: Recipe, functions: Mapping[str, wasmtime.FuncType]) -> None:
    """Every export the steps call (and the allocator a pointer array needs) exists, takes the arguments the step
    gives, and has integers only and at most one result."""
    exported = sorted(functions) or ["(no function exports)"]
    calls = recipe.calls
    if recipe.needs_allocator:
        calls = [*calls, Call(recipe.allocator, (Expr(offset=0),), None, f"allocator {recipe.allocator!r} (for ptr_array without at)")]
    for call in calls:
        if call.export not in functions:
            raise allowed(call.export, f"recipe {call.where or 'steps'}: export", exported)
        t = functions[call.export]
        params, results = [str(p) for p in t.params], [str(r) for r in t.results]
        if len(params) != len(call.args):
            raise ConfigError(f"recipe {call.where}: export {call.export!r} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), "
                              f"the step gives {len(call.args)}")
        for kind in params + results:
            if kind not in ("i32", "i64"):
                raise ConfigError(f"recipe {call.where}: export {call.export!r} has a {kind} value; allowed: i32 and i64")
        if len(results) > 1:
            raise ConfigError(f"recipe {call.where}: export {call.export!r} returns {len(results)} values; allowed: at most 1")
        if call.name is not None and not results:
            raise ConfigError(f"recipe {call.where}.as: export {call.export!r} returns nothing to name")


def check_imports(recipe: Recipe, imports: list[tuple[str, str]]) -> None:
    """The module imports nothing but WASI and the recipe's stubs, and every stub is of an import and an integer."""
    for key, value in recipe.imports.items():
        if "." not in key:
            raise ConfigError(f"recipe imports: {key!r} is not MODULE.NAME (e.g. env.host_interrupt)")
        integer(value, f"imports.{key}")
    unknown = [(m, n) for m, n in imports if m != "wasi_snapshot_preview1" and f"{m}.{n}" not in recipe.imports]
    if unknown:
        m, n = unknown[0]
        raise ConfigError(f"recipe module: {recipe.module} imports {m}.{n}, which nothing defines; allowed: wasi_snapshot_preview1 "
                          f"imports, or a stub under the recipe's imports: (e.g. imports: {{{m}.{n}: 0}})")
    for key in recipe.imports:
        if key not in {f"{m}.{n}" for m, n in imports}:
            raise allowed(key, f"recipe imports: import of {recipe.module}", sorted(f"{m}.{n}" for m, n in imports if m != "wasi_snapshot_preview1")
                          or ["(none but WASI)"])


def check_module(recipe: Recipe, wasm: bytes) -> wasmtime.Module:
    """Every export the steps call exists with the arity they call it with (integers only, at most one result);
    the memory and the allocator they need exist; the module imports nothing but WASI."""
    module = introspect.core_module(wasm)
    functions = introspect.function_exports(module)
    memories = introspect.memory_exports(module)
    check_calls(recipe, functions)
    if recipe.uses_memory and recipe.memory not in memories:
        raise allowed(recipe.memory, "recipe memory: exported memory", sorted(memories) or ["(no memory exports)"])
    check_imports(recipe, introspect.core_imports(module))
    if not recipe.steps and not recipe.driver and not ({"_start", "run"} & set(functions)):
        raise ConfigError(f"recipe steps: missing, and {recipe.module} exports neither _start nor run; allowed: steps that "
                          f"call its exports ({', '.join(sorted(functions) or ['(no function exports)'])})")
    return module


def core_steps(recipe: Recipe) -> Recipe:
    """A core module's recipe with its calls in WAVE (``invoke:`` steps, or ``invoke``) turned into call steps with
    integer arguments, checked through ``expect.result`` (the last call's)."""
    invoked = [s for s in recipe.steps if isinstance(s, Invoke)]
    if invoked:
        with_expect = [s for s in invoked if s.expect is not None]
        if with_expect:
            raise ConfigError(f"recipe {with_expect[0].where}.expect: a core module's calls are checked through expect.result "
                              f"(the last call's) and expect.bytes; allowed: those")
        recipe = dataclasses.replace(recipe, steps=tuple(dataclasses.replace(invoked_call(s.text), where=s.where) if isinstance(s, Invoke)
                                                         else s for s in recipe.steps))
    if recipe.invoke is not None:
        result = recipe.expect.result
        if isinstance(result, str):
            try:
                result = int(result, 0)
            except ValueError:
                raise ConfigError(f"recipe expect.result: {result!r} is not an integer; a core export returns one") from None
        recipe = dataclasses.replace(recipe, steps=(invoked_call(recipe.invoke),), invoke=None,
                                     expect=dataclasses.replace(recipe.expect, result=result))
    return recipe


def with_init(recipe: Recipe, functions: Mapping[str, wasmtime.FuncType]) -> Recipe:
    """``recipe`` with its start-up call as its first step: the export ``init:`` names, else ``wizer.initialize`` when the
    module exports it (else no start-up).  A recipe without steps gets its plain call (``_start`` or ``run``) as the step
    after it.  The start-up takes nothing and returns nothing: what it leaves is in the instance's memory and globals,
    which is what a snapshot keeps."""
    name = recipe.init
    if name is None and DEFAULT_INIT not in functions:
        return recipe
    name = name or DEFAULT_INIT
    if recipe.driver:
        if recipe.init is None:
            return recipe
        raise ConfigError("recipe init: a driver runs the whole request; allowed: init with steps or a plain call, not a driver")
    if name not in functions:
        raise allowed(name, "recipe init: export", sorted(functions) or ["(no function exports)"])
    t = functions[name]
    if t.params or t.results:
        raise ConfigError(f"recipe init: export {name!r} takes {len(t.params)} argument(s) and returns {len(t.results)} value(s); "
                          f"allowed: a start-up function that takes no arguments and returns nothing")
    steps = recipe.steps
    if not steps:
        entry = "_start" if "_start" in functions else "run"
        steps = (Call(entry, tuple(Expr(offset=0) for _ in functions[entry].params), None, entry),)
    return dataclasses.replace(recipe, init=name, steps=(Call(name, (), None, "init"), *steps))


def to_workload(recipe: Recipe, wasm: bytes) -> Workload:
    """The workload that serves ``recipe`` with its module ``wasm`` (checked against the module first; the registry,
    :func:`wasmlab.workloads.recipe_workload`, resolves a catalog name or a path to ``wasm``)."""
    if wasm[4:8] == COMPONENT_VERSION:
        if recipe.init is not None:
            raise ConfigError(f"recipe init: {recipe.module} is a component; allowed: init for a core module (Wizer snapshots core modules)")
        return component_recipe_workload(recipe, wasm)
    recipe = core_steps(recipe)
    module = check_module(recipe, wasm)
    functions = introspect.function_exports(module)
    recipe = with_init(recipe, functions)
    called = {c.export for c in recipe.calls} | ({recipe.allocator} if recipe.needs_allocator else set())
    recipe = dataclasses.replace(recipe, signatures={name: (tuple(str(p) for p in functions[name].params),
                                                            tuple(str(r) for r in functions[name].results)) for name in called})
    wasi = recipe.wasi or any(m == "wasi_snapshot_preview1" for m, _ in introspect.core_imports(module))
    return dataclasses.replace(core_workload(recipe, wasm, functions, wasi), init=recipe.init or "")


def core_workload(recipe: Recipe, wasm: bytes, functions: Mapping[str, wasmtime.FuncType], wasi: bool) -> Workload:
    """The core module's workload: a plugin driver's request, the recipe's steps, or one call of ``_start`` / ``run``."""
    expect = recipe.expect
    provenance = f"recipe {recipe.source}: {recipe.module}"
    if recipe.driver:
        return Workload(name=recipe.name, wasm=wasm, entry=recipe.driver, params=(), results=(), args=(), expected=None,
                        kind="wasi-library", provenance=f"{provenance}, driver {recipe.driver}", wasi=wasi,
                        stdout_pattern=expect.stdout_match, driver=recipe.driver, driver_input=recipe.input, recipe=recipe)
    preopens = tuple((d.host, d.guest) for d in recipe.dirs if d.host and not d.writable)
    if recipe.steps:
        return Workload(name=recipe.name, wasm=wasm, entry=", ".join(dict.fromkeys(c.export for c in recipe.calls)), params=(),
                        results=(), args=(), expected=None, kind="recipe", provenance=provenance,
                        wasi=wasi, argv=recipe.argv, stdin=recipe.stdin, stdout_pattern=expect.stdout_match,
                        stderr_pattern=expect.stderr_match, expected_exit=expect.exit or 0, recipe=recipe, preopens=preopens,
                        check="expected" if expect.anything else "first-result")
    entry = "_start" if "_start" in functions else "run"
    t = functions[entry]
    results = tuple(str(r) for r in t.results)
    return Workload(name=recipe.name, wasm=wasm, entry=entry, params=tuple(str(p) for p in t.params), results=results,
                    args=(0,) * len(t.params), expected=expect.result if results else None,
                    kind="wasi-command" if wasi else "core", provenance=provenance, wasi=wasi,
                    argv=recipe.argv, stdin=recipe.stdin, stdout_pattern=expect.stdout_match, stderr_pattern=expect.stderr_match,
                    expected_exit=expect.exit or 0, preopens=preopens,
                    recipe=recipe, check="expected" if expect.anything else "first-result" if results or wasi else "none")
