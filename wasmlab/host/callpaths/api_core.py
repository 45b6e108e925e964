"""The api call path for core modules: wasmtime-py's high-level objects, what a Python host writes naturally.

``wasmtime.Store``, ``wasmtime.Instance`` (or ``Linker.instantiate``, or ``InstancePre.instantiate``),
``instance.exports(store)[entry](store, *args)``.  ``Func.__call__`` reflects on the function's
type and converts every argument on every call: the figure includes the binding's cost.  Library-style
modules (a request driver from :mod:`wasmlab.workloads.hostfuncs`) are served here only.
"""

from __future__ import annotations

from collections.abc import Sequence

import wasmtime

from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.callpaths.base import Handlers, RequestParts, api_handlers, learned_or_mismatch, mismatch
from wasmlab.host.modules import Compiled
from wasmlab.host.output_check import byte_pattern
from wasmlab.host.recipes import ApiTarget, Outcome, checker, run_steps
from wasmlab.host.store import WasiIO
from wasmlab.workloads.hostfuncs import driver
from wasmlab.workloads.model import Workload


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:  # noqa: C901 - one closure per request shape, chosen once at bind time so a request branches on nothing
    """Handlers for the core modules among ``workloads``."""
    get = parts.modules.get
    retry = parts.waiting.retry
    engine = parts.engine
    workloads = list(workloads)
    pre = parts.pre
    linker = parts.linkers.core
    ios = {i: WasiIO(w) for i, w in enumerate(workloads) if w.captures_output and not w.component}
    parts.cleanup.extend(io.close for io in ios.values())
    new_store = parts.store.api_store
    drivers = {w.driver: driver(w.driver) for w in workloads if w.driver}
    # A guest expected to exit with a status other than 0 fails when it returns normally.
    returning_fails = {i: not w.expectation.exit_ok(None) for i, w in enumerate(workloads)}

    def instantiate(store: wasmtime.Store, compiled: Compiled, w: Workload) -> wasmtime.Instance:
        def attempt() -> wasmtime.Instance:
            if pre and compiled.pre is not None:
                return compiled.pre.instantiate(store)
            if w.linked:
                if linker is None:
                    raise ConfigError(f"workload {w.name!r} imports WASI or host functions, but no core linker was built")
                return linker.instantiate(store, compiled.core)
            return wasmtime.Instance(store, compiled.core, ())
        try:
            return attempt()
        except wasmtime.WasmtimeError as exc:
            box: list[wasmtime.Instance] = []
            retry(lambda: box.append(attempt()), exc)
            return box[0]

    def lookup(store: wasmtime.Store, instance: wasmtime.Instance, w: Workload) -> wasmtime.Func | None:
        if w.driver or w.steps:
            return None  # a driver, or a recipe's steps, look up what they call themselves
        func = instance.exports(store)[w.entry]
        if not isinstance(func, wasmtime.Func):
            raise ConfigError(f"workload {w.name!r}: export {w.entry!r} is not a function")
        return func

    def call(store: wasmtime.Store, instance: wasmtime.Instance, func: wasmtime.Func | None, index: int,
             stamps: list[int] | None = None) -> object:
        w = workloads[index]
        if w.steps:
            return run_steps(w.recipe, ApiTarget(store, instance, w.recipe), stamps)
        if func is None:
            output = drivers[w.driver](store, instance, w.driver_input)
            pattern = w.expectation.stdout_match
            if pattern and not byte_pattern(pattern).search(output):  # on bytes, as OutputCheck matches streams
                raise ResultMismatch(f"workload {w.name!r}: output does not match {pattern!r}: {output[:80]!r}")
            return None
        try:
            result = func(store, *w.args)
        except wasmtime.ExitTrap as exc:
            if w.expectation.exit_ok(exc.code):
                return None
            raise
        except wasmtime.Trap as exc:
            memory = instance.exports(store).get("memory")
            # read by outcomes.classify: a trap at the memory limit is an out-of-memory
            exc.wasmlab_memory_bytes = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else None  # type: ignore[attr-defined]
            raise
        if returning_fails[index]:
            raise mismatch(w.name, "exit 0", f"exit {w.expectation.exit}")
        return result

    expected = {i: w.expectation.compared_with() for i, w in enumerate(workloads) if not w.component}
    recipe_checks = {i: checker(w) for i, w in enumerate(workloads) if w.steps}

    def check(index: int, w: Workload, result: object) -> None:
        if index in recipe_checks:
            assert isinstance(result, Outcome)
            recipe_checks[index](result)
            return
        if expected[index] is not None and result != expected[index]:
            expected[index] = learned_or_mismatch(w.name, result, expected[index], w.expectation.same_as_first)

    step_stamps = {i: parts.step_stamps.setdefault(i, []) for i, w in enumerate(workloads) if w.steps}
    return api_handlers(workloads, get, lambda index, w: new_store(engine, w, ios.get(index)), instantiate, lookup, call, check,
                        parts, {i: io.check for i, io in ios.items()}, step_stamps)
