"""The lean call path for core modules: the C calls wasmtime-py makes, issued directly.

Bare ctypes function objects (``capi``'s fast functions) with buffers prepared once per workload,
and ``wasmtime_func_call_unchecked`` (the export's type is checked once, when its module is first
compiled).  A request: get the compiled module, ``wasmtime_store_new``, instantiate
(``wasmtime_instance_new``, ``wasmtime_linker_instantiate`` for WASI or host imports, or
``wasmtime_instance_pre_instantiate``), ``wasmtime_instance_export_get``, the call, the result
check, ``wasmtime_store_delete``.  What it measures is the runtime, not the binding's conversions.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence

import wasmtime

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import Handlers, RequestParts, mismatch
from wasmlab.host.modules import Compiled
from wasmlab.host.store import WasiIO
from wasmlab.workloads.model import Workload

# The number of C calls one plain lean request makes; with the calibrated cost of one crossing it
# estimates how much of a request is dispatch rather than wasmtime.
CROSSINGS_PER_REQUEST = 6
_MEMORY = b"memory"
_MEMORY_NAME_LEN = ctypes.c_size_t(len(_MEMORY))


class LeanSlots:
    """Per-workload buffers for the lean path, allocated once."""

    def __init__(self, workload: Workload) -> None:
        self.key = workload.sha256
        self.name = workload.entry.encode()
        self.name_len = ctypes.c_size_t(len(self.name))
        slots = max(len(workload.params), len(workload.results), 1)
        self.raw = (capi.val_raw_t * slots)()
        self.nraw = ctypes.c_size_t(slots)
        # Integer views of the 16-byte raw values: assigning an item is much cheaper
        # than building a union object per argument.
        self.words64 = (ctypes.c_int64 * (2 * slots)).from_buffer(self.raw)
        self.words32 = (ctypes.c_int32 * (4 * slots)).from_buffer(self.raw)
        # (word index, value) pairs; the call overwrites arguments with results, so they
        # are stored again before every call.
        self.arg_words = tuple((2 * i, value) for i, value in enumerate(workload.args))
        self.has_result = bool(workload.results)
        self.result_words = self.words64 if workload.results[:1] == ("i64",) else self.words32
        self.expected = workload.expected
        self.workload_name = workload.name
        self.wasi = workload.wasi
        self.linked = workload.linked
        self.io = WasiIO(workload) if workload.captures_output else None
        self.expected_exit = workload.expected_exit
        # A plain request needs nothing but instantiate and call: no WASI context to set up.
        self.plain = not workload.linked


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for the core modules among ``workloads`` (indices of components are not served)."""
    drivers = sorted({w.driver for w in workloads if w.driver})
    if drivers:
        raise ConfigError(f"library-style workloads ({', '.join(drivers)}) are driven through wasmtime-py's objects; "
                          f"allowed call path: api")
    clock = time.perf_counter_ns
    engine_ptr = parts.engine.ptr()
    get = parts.modules.get
    cache_get, compile_ = parts.modules.cache.get, parts.modules.compile
    retry = parts.waiting.retry
    workloads = list(workloads)
    slots = {i: LeanSlots(w) for i, w in enumerate(workloads) if not w.component}
    parts.cleanup.extend(s.io.close for s in slots.values() if s.io is not None)
    pre = parts.pre
    linker_ptr = parts.linkers.core.ptr() if parts.linkers.core is not None else None
    setup = parts.store.raw()
    store_new, store_context, store_delete = capi.store_new, capi.store_context, capi.store_delete
    instance_new, pre_instantiate, linker_instantiate = capi.instance_new, capi.instance_pre_instantiate, capi.linker_instantiate
    export_get, call_unchecked, raise_failure = capi.instance_export_get, capi.func_call_unchecked, capi.raise_failure
    instance = capi.instance_t()
    instance_ref = ctypes.byref(instance)
    extern = capi.extern_t()
    extern_ref = ctypes.byref(extern)
    func_ref = ctypes.byref(extern, capi.EXTERN_OF_OFFSET)
    memory_extern = capi.extern_t()
    trap = capi.trap_slot()
    trap_ref = ctypes.byref(trap)
    no_imports = ctypes.c_size_t(0)

    def try_instantiate(compiled: Compiled, context: capi.Ptr, s: LeanSlots) -> None:
        if pre:
            err = pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
        elif s.linked:
            err = linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref, trap_ref)
        else:
            err = instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
        if err or trap:
            raise_failure(err, trap)

    def instantiate_slow(compiled: Compiled, context: capi.Ptr, s: LeanSlots, err: capi.Ptr | None) -> None:
        """Everything but the plain instantiate: WASI, limits, failures and waiting for a slot."""
        try:
            raise_failure(err, trap)
        except wasmtime.WasmtimeError as exc:
            retry(lambda: try_instantiate(compiled, context, s), exc)

    def instantiate_checked(compiled: Compiled, context: capi.Ptr, s: LeanSlots) -> None:
        try:
            try_instantiate(compiled, context, s)
        except wasmtime.WasmtimeError as exc:
            retry(lambda: try_instantiate(compiled, context, s), exc)

    def memory_bytes(context: capi.Ptr) -> int | None:
        if (export_get(context, instance_ref, _MEMORY, _MEMORY_NAME_LEN, ctypes.byref(memory_extern))
                and memory_extern.kind == capi.EXTERN_MEMORY):
            return int(capi.memory_data_size(context, ctypes.byref(memory_extern, capi.EXTERN_OF_OFFSET)))
        return None

    def call_failed(context: capi.Ptr, err: capi.Ptr | None, expected_exit: int = 0) -> None:
        """A call that trapped or exited: the expected exit is a normal end, anything else is raised."""
        try:
            raise_failure(err, trap)
        except wasmtime.ExitTrap as exc:
            if exc.code == expected_exit:
                return None
            raise
        except wasmtime.Trap as exc:
            exc.wasmlab_memory_bytes = memory_bytes(context)  # type: ignore[attr-defined]  # read by outcomes.classify
            raise

    def call(context: capi.Ptr, s: LeanSlots) -> object:
        if not export_get(context, instance_ref, s.name, s.name_len, extern_ref):
            raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
        words = s.words64
        for i, value in s.arg_words:
            words[i] = value
        err = call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
        if err or trap:
            call_failed(context, err, s.expected_exit)
            return None
        if s.expected_exit:
            raise mismatch(s.workload_name, "exit 0", f"exit {s.expected_exit}")
        return s.result_words[0] if s.has_result else None

    def new_store(s: LeanSlots) -> tuple[capi.Ptr, capi.Ptr]:
        store = store_new(engine_ptr, None, None)
        context = store_context(store)
        try:
            if setup is not None:
                setup(store, context)
            if s.wasi:
                err = capi.context_set_wasi(context, s.io.config()._consume() if s.io is not None else capi.wasi_config_new())
                if err:
                    raise_failure(err, trap)
        except BaseException:
            store_delete(store)
            raise
        return store, context

    def handle(index: int) -> object:
        s = slots[index]
        compiled = cache_get(s.key, compile_, workloads[index])
        result: object
        if s.plain and setup is None:
            # The common case, kept flat: every call here is one crossing into wasmtime.  The
            # lookup-and-call below repeats ``call`` on purpose: a Python call more per request
            # is ~0.1 µs, over 2% of a pooled+cached request.
            store = store_new(engine_ptr, None, None)
            try:
                context = store_context(store)
                if pre:
                    err = pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
                else:
                    err = instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
                if err or trap:
                    instantiate_slow(compiled, context, s, err)
                if not export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                    raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
                words = s.words64
                for i, value in s.arg_words:
                    words[i] = value
                err = call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
                if err or trap:
                    call_failed(context, err)
                    result = None
                else:
                    result = s.result_words[0] if s.has_result else None
            finally:
                store_delete(store)
        else:
            store, context = new_store(s)
            try:
                instantiate_checked(compiled, context, s)
                result = call(context, s)
            finally:
                store_delete(store)
            if s.io is not None:
                s.io.check()
        if s.expected is not None and result != s.expected:
            raise mismatch(s.workload_name, result, s.expected)
        return result

    def handle_phased(index: int, stamps: list[int]) -> object:
        s = slots[index]
        stamps[0] = clock()
        compiled = get(workloads[index])
        stamps[1] = clock()
        store, context = new_store(s)
        stamps[2] = clock()
        try:
            instantiate_checked(compiled, context, s)
            stamps[3] = clock()
            if not export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
            stamps[4] = clock()
            result = call(context, s)  # looks the export up again: a cheap, known cost
            stamps[5] = clock()
        finally:
            store_delete(store)
        stamps[6] = clock()
        if s.io is not None:
            s.io.check()
        stamps[7] = clock()
        if s.expected is not None and result != s.expected:
            raise mismatch(s.workload_name, result, s.expected)
        return result

    return handle, handle_phased
