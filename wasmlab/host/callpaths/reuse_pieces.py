"""How a kept instance is made, called and dropped on the lean and api paths (instance reuse, :mod:`.reuse`): the same
C calls, or wasmtime-py objects, as each path's own request makes, split at the instance's life: ``open`` (module,
store with its limits and WASI context, instantiation, the ``wait`` policy's retries), ``call`` (export lookup and call,
or a recipe's steps through the path's own step target; a command's expected exit is its normal end) and ``close`` (the
store dropped)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import wasmtime

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import RequestParts, mismatch
from wasmlab.host.callpaths.reuse_outputs import OutputOffsets
from wasmlab.host.recipes import ApiTarget, RawTarget, arities, run_steps
from wasmlab.host.store import WasiIO
from wasmlab.workloads.model import Workload


class Kept:
    """A live instance: the path's own handles (``store``, ``instance``), how many requests it served and, for a WASI
    command, where its output files ended after its last checked request."""

    __slots__ = ("instance", "offsets", "served", "store")

    def __init__(self, store: Any, instance: Any) -> None:
        self.store, self.instance, self.served = store, instance, 0
        self.offsets = OutputOffsets()


Pieces = tuple[Callable[[int], Kept], Callable[[Kept, int], object], Callable[[Kept], None]]


def ended_by_exit(w: Workload, exc: wasmtime.ExitTrap) -> None:
    """A command's exit: its normal end when the status is the expected one, else raised."""
    if not w.expectation.exit_ok(exc.code):
        raise exc


def lean_pieces(parts: RequestParts, workloads: Sequence[Workload], ios: Mapping[int, WasiIO]) -> Pieces:  # noqa: C901 - closures over buffers made once, as lean_core binds them
    """The lean path's open, call and close: the C calls through ``capi``'s function objects, as lean_core makes them."""
    from wasmlab.host.callpaths.lean_core import LeanSlots

    engine_ptr = parts.engine.ptr()
    cache_get, compile_ = parts.modules.cache.get, parts.modules.compile
    slots = {i: LeanSlots(w) for i, w in enumerate(workloads) if not w.component}
    targets = {i: RawTarget(w.recipe, *arities(w.recipe)) for i, w in enumerate(workloads) if w.steps and not w.component}
    setup, retry, pre = parts.store.raw(), parts.waiting.retry, parts.pre
    linker_ptr = parts.linkers.core.ptr() if parts.linkers.core is not None else None
    extern = capi.extern_t()
    extern_ref, func_ref = ctypes.byref(extern), ctypes.byref(extern, capi.EXTERN_OF_OFFSET)
    trap = capi.trap_slot()
    trap_ref = ctypes.byref(trap)
    no_imports = ctypes.c_size_t(0)

    def ready(index: int, store: capi.Ptr, context: capi.Ptr) -> None:
        if setup is not None:
            setup(store, context)
        if workloads[index].wasi:
            io = ios.get(index)
            err = capi.context_set_wasi(context, io.config()._consume() if io is not None else capi.wasi_config_new())
            if err:
                capi.raise_failure(err, trap)

    def open_(index: int) -> Kept:
        compiled = cache_get(slots[index].key, compile_, workloads[index])
        store = capi.store_new(engine_ptr, None, None)
        context = capi.store_context(store)
        instance = capi.instance_t()
        instance_ref = ctypes.byref(instance)

        def attempt() -> None:
            err = (capi.instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref) if pre else
                   capi.linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref, trap_ref) if workloads[index].linked
                   else capi.instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref))
            if err or trap:
                capi.raise_failure(err, trap)
        try:
            ready(index, store, context)
            try:
                attempt()
            except wasmtime.WasmtimeError as exc:
                retry(attempt, exc)
        except BaseException:
            capi.store_delete(store)
            raise
        return Kept((store, context), instance)

    def call(kept: Kept, index: int) -> object:
        s = slots[index]
        context = kept.store[1]
        if index in targets:  # a recipe: its steps look up what they call
            return run_steps(workloads[index].recipe, targets[index].bind(context, ctypes.byref(kept.instance)))
        if not capi.instance_export_get(context, ctypes.byref(kept.instance), s.name, s.name_len, extern_ref):
            raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
        words = s.words64
        for i, value in s.arg_words:
            words[i] = value
        err = capi.func_call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
        if err or trap:
            try:
                capi.raise_failure(err, trap)
            except wasmtime.ExitTrap as exc:
                ended_by_exit(workloads[index], exc)
                return None
        if s.returning_fails:
            raise mismatch(s.workload_name, "exit 0", f"exit {s.expected_exit}")
        return s.result_words[0] if s.has_result else None

    def close(kept: Kept) -> None:
        capi.store_delete(kept.store[0])
    return open_, call, close


def api_pieces(parts: RequestParts, workloads: Sequence[Workload], ios: Mapping[int, WasiIO]) -> Pieces:
    """The api path's open, call and close: ``wasmtime.Store``, ``Instance`` (``Linker.instantiate`` for WASI or host
    imports, ``InstancePre.instantiate``) and ``Func.__call__``, as api_core makes them."""
    get, engine, retry, pre, linker = parts.modules.get, parts.engine, parts.waiting.retry, parts.pre, parts.linkers.core
    new_store = parts.store.api_store

    def open_(index: int) -> Kept:
        w = workloads[index]
        compiled = get(w)
        store = new_store(engine, w, ios.get(index))

        def attempt() -> wasmtime.Instance:
            if pre and compiled.pre is not None:
                return compiled.pre.instantiate(store)
            if w.linked and linker is not None:
                return linker.instantiate(store, compiled.core)
            return wasmtime.Instance(store, compiled.core, ())
        try:
            try:
                instance = attempt()
            except wasmtime.WasmtimeError as exc:
                box: list[wasmtime.Instance] = []
                retry(lambda: box.append(attempt()), exc)
                instance = box[0]
        except BaseException:
            store.close()
            raise
        return Kept(store, instance)

    def call(kept: Kept, index: int) -> object:
        w = workloads[index]
        if w.steps:
            return run_steps(w.recipe, ApiTarget(kept.store, kept.instance, w.recipe))
        func = kept.instance.exports(kept.store)[w.entry]
        if not isinstance(func, wasmtime.Func):
            raise ConfigError(f"workload {w.name!r}: export {w.entry!r} is not a function")
        try:
            result = func(kept.store, *w.args)
        except wasmtime.ExitTrap as exc:
            ended_by_exit(w, exc)
            return None
        if not w.expectation.exit_ok(None):
            raise mismatch(w.name, "exit 0", f"exit {w.expectation.exit}")
        return result

    def close(kept: Kept) -> None:
        kept.store.close()
    return open_, call, close
