"""A request handler composed from three choices (allocator x cache x instantiation) and a call path.

Every request does the full job: get the compiled module (compile, or cache hit),
new store, instantiate, look the export up, call it, drop the store; and the guest's
return value is checked against the workload's expected value.

Call paths:

``api``
    wasmtime-py's high-level objects, what a Python host writes naturally.
    ``Func.__call__`` reflects on the function type on every call.
``lean``
    The same C calls made directly over ``wasmtime._bindings``' library with
    arguments prepared once, and ``wasmtime_func_call_unchecked`` (the export's type is
    checked once, when its module is first compiled).  What it measures is the
    runtime, not the binding's conversions.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Callable, Sequence

import wasmtime
from wasmtime import _bindings as ffi
from wasmtime._ffi import dll

from wasmlab.cache import ModuleCache
from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.engine import build_engine
from wasmlab.errors import ConfigError, ResultMismatch, allowed
from wasmlab.workloads import Workload

CALL_PATHS = ("lean", "api")
INSTANTIATION_STYLES = ("instance", "pre")
NAMED_VARIANTS = ("baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre")
_VARIANT_TOKENS = ("pooled", "cached", "pre")

# Timestamps a phased request records: start, then the end of each phase.
PHASES = ("get_module", "new_store", "instantiate", "export_lookup", "call", "drop_store")


def check_call_path(call_path: str) -> str:
    if call_path not in CALL_PATHS:
        raise allowed(call_path, "call path", CALL_PATHS)
    return call_path


@dataclass(frozen=True)
class Variant:
    """One composition of the three independent choices, optionally pinned to a call path.

    ``pooled+cached@api`` is ``pooled+cached`` served through the api path whatever the
    run's default path is, so both paths can be measured side by side in one run.
    """

    name: str
    pooled: bool
    cached: bool
    pre: bool
    call_path: str | None = None

    @property
    def allocator(self) -> str:
        return "pooling" if self.pooled else "on-demand"

    @property
    def instantiation(self) -> str:
        return "pre" if self.pre else "instance"


def parse_variant(name: str) -> Variant:
    """``baseline`` or a ``+``-joined combination of ``pooled``, ``cached`` and ``pre``,
    optionally followed by ``@lean`` or ``@api``."""
    composition, at, path = name.partition("@")
    if at:
        check_call_path(path)
    suffix = f"@{path}" if at else ""
    if composition == "baseline":
        return Variant("baseline" + suffix, False, False, False, path or None)
    tokens = composition.split("+")
    if not composition or any(t not in _VARIANT_TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
        raise allowed(name, "variant", NAMED_VARIANTS + ("any '+'-joined combination of pooled, cached, pre, optionally @lean or @api",))
    canonical = "+".join(t for t in _VARIANT_TOKENS if t in tokens)
    return Variant(canonical + suffix, "pooled" in tokens, "cached" in tokens, "pre" in tokens, path or None)


@dataclass
class Compiled:
    """A compiled module, with its ``InstancePre`` when the variant pre-instantiates."""

    module: wasmtime.Module
    pre: wasmtime.InstancePre | None

    def __post_init__(self) -> None:
        # Raw pointers are taken once so the lean path does not call .ptr() per request.
        self.module_ptr = self.module.ptr()
        self.pre_ptr = self.pre.ptr() if self.pre is not None else None


def _check_export(module: wasmtime.Module, workload: Workload) -> None:
    """The unchecked call is only sound if the export's type is what the workload declares."""
    for export in module.exports:
        if export.name == workload.entry:
            ty = export.type
            if not isinstance(ty, wasmtime.FuncType):
                raise ConfigError(f"workload {workload.name!r}: export {workload.entry!r} is not a function")
            params = tuple(str(t) for t in ty.params)
            results = tuple(str(t) for t in ty.results)
            if params != workload.params or results != workload.results:
                raise ConfigError(
                    f"workload {workload.name!r}: export {workload.entry!r} has type {params} -> {results}, "
                    f"declared {workload.params} -> {workload.results}"
                )
            return
    names = [e.name for e in module.exports]
    raise allowed(workload.entry, f"workload {workload.name!r} export", names)


class _Ptr(ctypes.c_void_p):
    """Restype that keeps a returned pointer a ctypes object: a plain ``c_void_p`` restype
    returns an ``int``, which a call without ``argtypes`` would truncate to a C ``int``."""


def _raw(name: str, restype: object) -> Callable[..., object]:
    # dll[name] makes a new function object without argtypes: one crossing then costs
    # ~0.15 us instead of ~0.27 us through _bindings' converting function objects.
    function = dll[name]
    function.restype = restype
    return function  # type: ignore[no-any-return]


_store_new = _raw("wasmtime_store_new", _Ptr)
_store_context = _raw("wasmtime_store_context", _Ptr)
_store_delete = _raw("wasmtime_store_delete", None)
_instance_new = _raw("wasmtime_instance_new", _Ptr)
_instance_pre_instantiate = _raw("wasmtime_instance_pre_instantiate", _Ptr)
_export_get = _raw("wasmtime_instance_export_get", ctypes.c_bool)
_call_unchecked = _raw("wasmtime_func_call_unchecked", _Ptr)
_engine_is_pulley = _raw("wasmtime_engine_is_pulley", ctypes.c_bool)

# The number of C calls one lean request makes; with the calibrated cost of one
# crossing it estimates how much of a request is dispatch rather than wasmtime.
LEAN_CROSSINGS_PER_REQUEST = 6


class _LeanSlots:
    """Per-workload buffers for the lean path, allocated once."""

    def __init__(self, workload: Workload) -> None:
        self.key = workload.sha256
        self.name = workload.entry.encode()
        self.name_len = ctypes.c_size_t(len(self.name))
        slots = max(len(workload.params), len(workload.results))
        self.raw = (ffi.wasmtime_val_raw_t * slots)()
        self.nraw = ctypes.c_size_t(slots)
        # Integer views of the 16-byte raw values: assigning an item is much cheaper
        # than building a union object per argument.
        self.words64 = (ctypes.c_int64 * (2 * slots)).from_buffer(self.raw)
        self.words32 = (ctypes.c_int32 * (4 * slots)).from_buffer(self.raw)
        # (word index, value) pairs; the call overwrites arguments with results, so they
        # are stored again before every call.
        self.arg_words = tuple((2 * i, value) for i, value in enumerate(workload.args))
        self.result_words = self.words64 if workload.results[0] == "i64" else self.words32
        self.expected = workload.expected
        self.workload_name = workload.name


def _raise_failure(err: _Ptr | None, trap: ctypes._Pointer) -> None:  # type: ignore[type-arg]
    """Turn a C error or trap into wasmtime-py's exception, resetting the trap slot."""
    if err:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
    owned = ctypes.cast(ctypes.c_void_p(ctypes.cast(trap, ctypes.c_void_p).value), ctypes.POINTER(ffi.wasm_trap_t))
    ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
    raise wasmtime.Trap._from_ptr(owned)


def _mismatch(name: str, got: object, expected: object) -> ResultMismatch:
    return ResultMismatch(f"workload {name!r} returned {got!r}, expected {expected!r}: the request did not do its work")


class Runtime:
    """Serves requests for ``workloads`` as ``variant`` does, through ``call_path``.

    ``handle(i)`` runs one full request of workload ``i`` and returns the guest's result;
    ``handle_phased(i, stamps)`` does the same and writes one ``perf_counter_ns`` stamp
    at the start and after each of ``PHASES`` into ``stamps``.
    """

    def __init__(
        self,
        variant: Variant,
        engine: wasmtime.Engine,
        cache: CacheConfig,
        workloads: Sequence[Workload],
        call_path: str = "lean",
        shared_cache: ModuleCache[Compiled] | None = None,
    ) -> None:
        self.variant = variant
        self.engine = engine
        self.call_path = check_call_path(call_path)
        if variant.cached and cache.policy == "none":
            raise ConfigError(f"variant {variant.name!r} caches, but cache policy is 'none'; choose another policy or a variant without 'cached'")
        if shared_cache is not None and variant.cached:
            # Shared between runtimes (threads) of one engine: compiled modules belong to an engine.
            self.cache: ModuleCache[Compiled] = shared_cache
        else:
            self.cache = ModuleCache(cache if variant.cached else CacheConfig(policy="none"))
        self.workloads = list(workloads)
        self._checked: set[str] = set()
        self._linker = wasmtime.Linker(engine) if variant.pre else None
        if call_path == "lean":
            self.handle, self.handle_phased = self._lean_handlers()
        else:
            self.handle, self.handle_phased = self._api_handlers()

    def compile(self, workload: Workload) -> Compiled:
        """Compile ``workload`` on this runtime's engine (and pre-instantiate it if the variant does)."""
        module = wasmtime.Module(self.engine, workload.wasm)
        if workload.sha256 not in self._checked:
            _check_export(module, workload)
            self._checked.add(workload.sha256)
        pre = self._linker.instantiate_pre(module) if self._linker is not None else None
        return Compiled(module, pre)

    def _getter(self) -> Callable[[Workload], Compiled]:
        cache_get = self.cache.get
        compile_ = self.compile
        return lambda w: cache_get(w.sha256, compile_, w)

    # -- lean path ---------------------------------------------------------------------------

    def _lean_handlers(self) -> tuple[Callable[[int], int], Callable[[int, list[int]], int]]:
        import time

        clock = time.perf_counter_ns
        engine_ptr = self.engine.ptr()
        get = self._getter()
        cache_get, compile_ = self.cache.get, self.compile
        workloads = self.workloads
        slots = [_LeanSlots(w) for w in workloads]
        pre = self.variant.pre
        instance = ffi.wasmtime_instance_t()
        instance_ref = ctypes.byref(instance)
        extern = ffi.wasmtime_extern_t()
        extern_ref = ctypes.byref(extern)
        func_ref = ctypes.byref(extern, ffi.wasmtime_extern_t.of.offset)
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        trap_ref = ctypes.byref(trap)
        no_imports = ctypes.c_size_t(0)

        def instantiate(compiled: Compiled, context: _Ptr) -> None:
            if pre:
                err = _instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
            else:
                err = _instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
            if err or trap:
                _raise_failure(err, trap)

        def handle(index: int) -> int:
            s = slots[index]
            compiled = cache_get(s.key, compile_, workloads[index])
            store = _store_new(engine_ptr, None, None)
            try:
                context = _store_context(store)
                if pre:
                    err = _instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
                else:
                    err = _instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
                if err or trap:
                    _raise_failure(err, trap)
                if not _export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                    raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
                words = s.words64
                for i, value in s.arg_words:
                    words[i] = value
                err = _call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
                if err or trap:
                    _raise_failure(err, trap)
                result = s.result_words[0]
            finally:
                _store_delete(store)
            if result != s.expected:
                raise _mismatch(s.workload_name, result, s.expected)
            return result

        def handle_phased(index: int, stamps: list[int]) -> int:
            s = slots[index]
            stamps[0] = clock()
            compiled = get(workloads[index])
            stamps[1] = clock()
            store = _store_new(engine_ptr, None, None)
            context = _store_context(store)
            stamps[2] = clock()
            try:
                instantiate(compiled, context)
                stamps[3] = clock()
                if not _export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                    raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
                stamps[4] = clock()
                words = s.words64
                for i, value in s.arg_words:
                    words[i] = value
                err = _call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
                if err or trap:
                    _raise_failure(err, trap)
                result = s.result_words[0]
                stamps[5] = clock()
            finally:
                _store_delete(store)
            stamps[6] = clock()
            if result != s.expected:
                raise _mismatch(s.workload_name, result, s.expected)
            return result

        return handle, handle_phased

    # -- api path ----------------------------------------------------------------------------

    def _api_handlers(self) -> tuple[Callable[[int], int], Callable[[int, list[int]], int]]:
        import time

        clock = time.perf_counter_ns
        engine = self.engine
        get = self._getter()
        workloads = self.workloads
        pre = self.variant.pre
        Store, Instance = wasmtime.Store, wasmtime.Instance

        def handle(index: int) -> int:
            w = workloads[index]
            compiled = get(w)
            store = Store(engine)
            try:
                instance = compiled.pre.instantiate(store) if pre else Instance(store, compiled.module, ())  # type: ignore[union-attr]
                result = instance.exports(store)[w.entry](store, *w.args)
            finally:
                store.close()
            if result != w.expected:
                raise _mismatch(w.name, result, w.expected)
            return result  # type: ignore[no-any-return]

        def handle_phased(index: int, stamps: list[int]) -> int:
            w = workloads[index]
            stamps[0] = clock()
            compiled = get(w)
            stamps[1] = clock()
            store = Store(engine)
            stamps[2] = clock()
            try:
                instance = compiled.pre.instantiate(store) if pre else Instance(store, compiled.module, ())  # type: ignore[union-attr]
                stamps[3] = clock()
                func = instance.exports(store)[w.entry]
                stamps[4] = clock()
                result = func(store, *w.args)
                stamps[5] = clock()
            finally:
                store.close()
            stamps[6] = clock()
            if result != w.expected:
                raise _mismatch(w.name, result, w.expected)
            return result  # type: ignore[no-any-return]

        return handle, handle_phased


def crossing_probe(engine: wasmtime.Engine) -> Callable[[], object]:
    """A no-op C call made the way the lean path makes its calls, for calibrating one crossing."""
    ptr = engine.ptr()
    return lambda: _engine_is_pulley(ptr)


class EnginePool:
    """Builds each distinct ``EngineConfig``'s engine once, so variants that share a configuration share an engine."""

    def __init__(self) -> None:
        self._engines: dict[EngineConfig, wasmtime.Engine] = {}

    def get(self, config: EngineConfig) -> wasmtime.Engine:
        if config not in self._engines:
            self._engines[config] = build_engine(config)
        return self._engines[config]


def engine_config_for(variant: Variant, base: EngineConfig) -> EngineConfig:
    """``base`` with the allocator the variant asks for."""
    return base.replace(allocator=variant.allocator)


def build_runtimes(
    variants: Sequence[str],
    engine: EngineConfig,
    cache: CacheConfig,
    workloads: Sequence[Workload],
    call_path: str = "lean",
    engines: EnginePool | None = None,
) -> dict[str, Runtime]:
    """One ``Runtime`` per variant name, validated before any engine is built."""
    parsed = [parse_variant(v) for v in variants]
    check_call_path(call_path)
    if not parsed:
        raise ConfigError("no variants given; allowed: " + ", ".join(NAMED_VARIANTS))
    names = [v.name for v in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"variant list {list(variants)} names a variant twice")
    engines = engines or EnginePool()
    return {
        v.name: Runtime(v, engines.get(engine_config_for(v, engine)), cache, workloads, v.call_path or call_path)
        for v in parsed
    }
