"""How a kept component instance is made, called and dropped on the lean and api paths (instance reuse, :mod:`.reuse`):
the same C calls, or wasmtime-py objects, as each path's own component request makes (:mod:`.lean_component`,
:mod:`.api_component`), split at the instance's life.  ``open``: the compiled component, a store with its limits (and
a WASI context: a command's own, with its stdio files), instantiation through the component linker (the ``wait``
policy's retries), the entry looked up once for the instance's life; ``call``: the entry called, ``post_return``, its
result lifted to the plain value every path compares (a command's exit judged, its result then ``None``: its outputs
are compared by :mod:`.reuse_outputs`); ``close``: the store dropped.

A component command that exits through ``wasi:cli/exit`` traps its instance (wasmtime poisons a component instance
after a trap), so the instance is dropped after that request, as after a failed one.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence

import wasmtime
import wasmtime.component

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.api_component import api_args, api_func
from wasmlab.host.callpaths.base import RequestParts, judge_command
from wasmlab.host.callpaths.lean_component import ComponentSlots, Reused, call, get_func, refuse, store_steps
from wasmlab.host.callpaths.reuse_pieces import Kept, Pieces
from wasmlab.host.store import WasiIO
from wasmlab.workloads.expectation import Expectation
from wasmlab.workloads.model import Workload


class KeptComponent(Kept):
    """A live component instance: its store (and context) and its entry's function, looked up when it was made."""

    __slots__ = ()


def _ended(kept: Kept, name: str, expectation: Expectation, exited: wasmtime.ExitTrap | None, result: object) -> None:
    """A command's end judged (exit status, or run's result); an exit leaves the instance trapped: dropped after it."""
    judge_command(name, expectation, None if exited else result, exited)
    if exited is not None:
        kept.served = 1 << 30  # no further request on a trapped instance (ReuseServer drops it after this one)


def lean_component_pieces(parts: RequestParts, workloads: Sequence[Workload], ios: Mapping[int, WasiIO]) -> Pieces:
    """The lean path's open, call and close of a kept component instance, through ``capi``'s function objects."""
    refuse(parts)
    cache_get, compile_ = parts.modules.cache.get, parts.modules.compile
    slots = {i: ComponentSlots(w) for i, w in enumerate(workloads) if w.component}
    for i, c in slots.items():
        if c.io is not None:
            c.io.close()  # its own files, made with the slots: the reuse server's are the ones it reads
        c.io = ios.get(i)  # the reuse server's WASI files: their offsets are what a reused request's output is read from
    reused = Reused()
    new_store, instantiate = store_steps(parts, reused)
    trap = reused.trap

    def open_(index: int) -> Kept:
        c = slots[index]
        compiled = cache_get(c.key, compile_, workloads[index])
        store, context = new_store(c)
        try:
            instantiate(compiled, context)
            func = capi.component_func_t()
            get_func(reused.instance_ref, context, compiled, c.workload_name, c.entry, ctypes.byref(func))
        except BaseException:
            capi.store_delete(store)
            raise
        return KeptComponent((store, context), (func, ctypes.byref(func)))

    def call_(kept: Kept, index: int) -> object:
        c = slots[index]
        context, func_ref = kept.store[1], kept.instance[1]
        call(func_ref, context, c, trap)
        result = c.result.take()
        exited, c.exited = c.exited, None
        if exited is None:
            err = capi.component_func_post_return(func_ref, context)
            if err:
                capi.raise_failure(err, trap)
        if c.io is None:
            return result
        _ended(kept, c.workload_name, c.expectation, exited, result)
        return None

    def close(kept: Kept) -> None:
        capi.store_delete(kept.store[0])
    return open_, call_, close


def api_component_pieces(parts: RequestParts, workloads: Sequence[Workload], ios: Mapping[int, WasiIO]) -> Pieces:
    """The api path's open, call and close of a kept component instance: wasmtime-py's component ``Linker``,
    ``Instance`` and ``Func`` (``Func.__call__`` then ``post_return``), as api_component makes them."""
    refuse(parts)
    get, engine, retry, linker = parts.modules.get, parts.engine, parts.waiting.retry, parts.linkers.component
    assert linker is not None  # refused before
    new_store = parts.store.api_store
    args = {i: api_args(w) for i, w in enumerate(workloads) if w.component}
    lift = {i: w.signature.result.from_api for i, w in enumerate(workloads)
            if w.component and w.signature is not None and w.signature.result is not None}

    def open_(index: int) -> Kept:
        w = workloads[index]
        compiled = get(w)
        store = new_store(engine, w, ios.get(index))
        try:
            try:
                instance = linker.instantiate(store, compiled.component)
            except wasmtime.WasmtimeError as exc:
                box: list[wasmtime.component.Instance] = []
                retry(lambda: box.append(linker.instantiate(store, compiled.component)), exc)
                instance = box[0]
            func = api_func(store, instance, w.entry)
            if func is None:
                raise ConfigError(f"workload {w.name!r}: component export {w.entry!r} is not a function")
        except BaseException:
            store.close()
            raise
        return KeptComponent(store, func)

    def call_(kept: Kept, index: int) -> object:
        func = kept.instance
        try:
            result = func(kept.store, *args[index])
        except wasmtime.ExitTrap as exc:
            if index not in ios:
                raise
            _ended(kept, workloads[index].name, workloads[index].expectation, exc, None)
            return None
        func.post_return(kept.store)
        if index in ios:
            _ended(kept, workloads[index].name, workloads[index].expectation, None, result)
            return None
        return lift[index](result) if index in lift else result

    def close(kept: Kept) -> None:
        kept.store.close()
    return open_, call_, close
