"""The api call path for components: wasmtime-py's component ``Linker``, ``Instance`` and ``Func``.

``Func.__call__`` reads the function type back and converts every value in Python, element by
element, on every call: what a Python host pays through wasmtime-py.  Values are given to it in
wasmtime-py's own representation, converted from the workload's plain values once (:func:`api_args`).
A request of several calls (a recipe's ``invoke`` steps) makes its earlier calls in the same instance first, each
result checked as the entry's is.  A function inside an exported interface (``INTERFACE#FUNCTION``) is found through
the interface's export index, per request, as every function is looked up here (:func:`api_func`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import FirstResult, Handlers, RequestParts, api_handlers, judge_command, learned_or_mismatch
from wasmlab.host.modules import Compiled
from wasmlab.host.store import WasiIO
from wasmlab.workloads.introspect import SEPARATOR
from wasmlab.workloads.model import Workload


def api_args(w: Workload) -> tuple[Any, ...]:
    """The workload's arguments as wasmtime-py's component API takes them."""
    if not w.component or w.signature is None:
        return w.args
    return tuple(shape.to_api(value) for (_, shape), value in zip(w.signature.params, w.args))


def api_expected(w: Workload) -> tuple[bool, Any]:
    """Whether the result is checked, and the expectation as wasmtime-py returns values (or a ``FirstResult``)."""
    value = w.expectation.compared_with()
    if value is None:
        return False, None
    if isinstance(value, FirstResult) or w.signature is None or w.signature.result is None:
        return True, value
    return True, w.signature.result.to_api(value)


def api_func(store: wasmtime.Store, instance: wasmtime.component.Instance, entry: str) -> wasmtime.component.Func | None:
    """The function full-named ``entry`` in ``instance``, looked up per request as a host does it through wasmtime-py:
    by name, an interface's export index the parent of the next name's (``INTERFACE#FUNCTION``); ``None`` when absent."""
    index: wasmtime.component.ExportIndex | None = None
    for part in entry.split(SEPARATOR):
        index = instance.get_export_index(store, part, index)
        if index is None:
            return None
    return instance.get_func(store, index) if index is not None else None


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:  # noqa: C901 - one closure per request shape, chosen once at bind time so a request branches on nothing
    """Handlers for the components among ``workloads``."""
    if parts.pre:
        raise ConfigError(f"variant {parts.label!r} pre-instantiates, but wasmtime-py 50 has no InstancePre for components; "
                          f"allowed: a variant without 'pre'")
    linker = parts.linkers.component
    if linker is None:
        raise ConfigError("components need a component linker")
    get = parts.modules.get
    retry = parts.waiting.retry
    engine = parts.engine
    workloads = list(workloads)
    new_store = parts.store.api_store
    args = {i: api_args(w) for i, w in enumerate(workloads) if w.component}
    expected = {i: api_expected(w) for i, w in enumerate(workloads) if w.component}
    # Per workload, its earlier calls: (export, arguments as wasmtime-py takes them, [expectation], its shapes, whether
    # it is the first request's result, the call's name).
    earlier = {i: [(c.entry, tuple(shape.to_api(v) for (_, shape), v in zip(c.signature.params, c.args)),
                    [FirstResult() if e.same_as_first or c.signature.result is None else c.signature.result.to_api(e.value)],
                    c.signature, e.same_as_first, e.name) for c, e in zip(w.before, w.expectation.before, strict=True)]
               for i, w in enumerate(workloads) if w.component and w.before}
    step_stamps = {i: parts.step_stamps.setdefault(i, []) for i in earlier}
    # Component commands: a WASI context per store (argv, environment, stdio files, directories), the outputs and the
    # exit status checked after each request.
    ios = {i: WasiIO(w) for i, w in enumerate(workloads) if w.command}
    parts.cleanup.extend(io.close for io in ios.values())

    def instantiate(store: wasmtime.Store, compiled: Compiled) -> wasmtime.component.Instance:
        try:
            return linker.instantiate(store, compiled.component)
        except wasmtime.WasmtimeError as exc:
            box: list[wasmtime.component.Instance] = []
            retry(lambda: box.append(linker.instantiate(store, compiled.component)), exc)
            return box[0]

    def lookup(store: wasmtime.Store, instance: wasmtime.component.Instance, w: Workload) -> wasmtime.component.Func:
        func = api_func(store, instance, w.entry)
        if func is None:
            raise ConfigError(f"workload {w.name!r}: component export {w.entry!r} is not a function")
        return func

    def check(index: int, w: Workload, result: object) -> None:
        io = ios.get(index)
        if io is not None:  # a command: its exit status (wasi:cli/exit's trap, or run's result); its outputs in ``checks``
            exited = result if isinstance(result, wasmtime.ExitTrap) else None
            judge_command(w.name, w.expectation, None if exited else result, exited)
            return
        has_expected, value = expected[index]
        if has_expected and result != value:
            if isinstance(value, FirstResult):
                expected[index] = (True, result)
                return
            plain = w.signature.result.from_api if w.signature is not None and w.signature.result is not None else (lambda v: v)
            learned_or_mismatch(w.name, plain(result), plain(value), w.expectation.same_as_first)

    def call(store: wasmtime.Store, instance: wasmtime.component.Instance, func: wasmtime.component.Func, index: int,
             stamps: list[int] | None = None) -> object:
        if index in earlier:
            if stamps is not None:
                stamps.clear()
                stamps.append(time.perf_counter_ns())
            for entry, values, box, signature, learned, name in earlier[index]:
                target = api_func(store, instance, entry)
                if target is None:
                    raise ConfigError(f"workload {workloads[index].name!r}: component export {entry!r} is not a function")
                result = target(store, *values)
                if signature.result is not None and result != box[0]:
                    plain = signature.result.from_api
                    box[0] = (result if isinstance(box[0], FirstResult)
                              else learned_or_mismatch(name, plain(result), plain(box[0]), learned))
                if stamps is not None:
                    stamps.append(time.perf_counter_ns())
        try:
            result = func(store, *args[index])
        except wasmtime.ExitTrap as exc:
            if index not in ios:
                raise
            result = exc  # a command's wasi:cli/exit: judged in check, once the store is gone
        if stamps is not None and index in earlier:
            stamps.append(time.perf_counter_ns())
        return result

    return api_handlers(workloads, get, lambda index, w: new_store(engine, w, ios.get(index)), lambda store, compiled, w: instantiate(store, compiled),
                        lookup, call, check, parts, {i: io.check for i, io in ios.items()}, step_stamps)
