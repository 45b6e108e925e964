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
import math
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Sequence

import wasmtime
import wasmtime.component
from wasmtime import _bindings as ffi
from wasmtime._ffi import dll

from wasmlab.artifacts import ArtifactStore
from wasmlab.artifacts import default_folder as default_artifact_folder
from wasmlab.cache import ModuleCache
from wasmlab.config import CacheConfig, EngineConfig, Limits
from wasmlab.engine import build_engine
from wasmlab.errors import ConfigError, ResultMismatch, WasmlabError, allowed
from wasmlab.hostfuncs import DRIVERS
from wasmlab.hostfuncs import define as define_host_functions
from wasmlab.outcomes import PoolExhausted, classify
from wasmlab.workloads import Workload

CALL_PATHS = ("lean", "api")
INSTANTIATION_STYLES = ("instance", "pre")
NAMED_VARIANTS = ("baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre")
# pooled: pooling allocator; cached: compiled modules kept in memory; pre: InstancePre once per module;
# disk: compiled artifacts on disk (lab's tier); wtcache: wasmtime's own compilation cache.
_VARIANT_TOKENS = ("pooled", "cached", "disk", "wtcache", "pre")

# Timestamps a phased request records: start, then the end of each phase.
PHASES = ("get_module", "new_store", "instantiate", "export_lookup", "call", "drop_store", "read_output")


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
    disk: bool = False
    wasmtime_cache: bool = False

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
        raise allowed(name, "variant", NAMED_VARIANTS + ("any '+'-joined combination of pooled, cached, disk, wtcache, pre, optionally @lean or @api",))
    if "disk" in tokens and "wtcache" in tokens:
        raise ConfigError(f"variant {name!r} combines two disk caches; allowed: disk (the lab's artifacts) or wtcache (wasmtime's), not both")
    canonical = "+".join(t for t in _VARIANT_TOKENS if t in tokens)
    return Variant(canonical + suffix, "pooled" in tokens, "cached" in tokens, "pre" in tokens, path or None,
                   "disk" in tokens, "wtcache" in tokens)


@dataclass
class Compiled:
    """A compiled module (or component), with its ``InstancePre`` when the variant pre-instantiates."""

    module: wasmtime.Module | wasmtime.component.Component
    pre: wasmtime.InstancePre | None

    def __post_init__(self) -> None:
        # Raw pointers are taken once so the lean path does not call .ptr() per request.
        self.module_ptr = self.module.ptr()
        self.pre_ptr = self.pre.ptr() if self.pre is not None else None
        self._export_indexes: dict[str, wasmtime.component.ExportIndex] = {}
        self._export_pointers: dict[str, object] = {}

    def export_index(self, name: str) -> object:
        """A component export's index (valid in every store of the engine), looked up once."""
        pointer = self._export_pointers.get(name)
        if pointer is None:
            index = self.module.get_export_index(name)  # type: ignore[union-attr]
            if index is None:
                raise ConfigError(f"component has no export {name!r}")
            self._export_indexes[name] = index  # keeps the pointer valid
            pointer = self._export_pointers[name] = index.ptr()
        return pointer


def _check_component_export(component: wasmtime.component.Component, engine: wasmtime.Engine, workload: Workload) -> None:
    """The prebuilt argument trees are only right if the export's type is the workload's signature."""
    from wasmlab.component_values import Signature

    ty = getattr(component.type.exports(engine).get(workload.entry), "ty", None)
    if not isinstance(ty, wasmtime.component.FuncType):
        raise ConfigError(f"workload {workload.name!r}: component has no function export {workload.entry!r}")
    actual = Signature.of(ty).wit
    if workload.signature is not None and actual != workload.signature.wit:
        raise ConfigError(f"workload {workload.name!r}: export {workload.entry!r} is {actual}, declared {workload.signature.wit}")


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
_linker_instantiate = _raw("wasmtime_linker_instantiate", _Ptr)
_store_limiter = _raw("wasmtime_store_limiter", None)
_set_fuel = _raw("wasmtime_context_set_fuel", _Ptr)
_set_epoch_deadline = _raw("wasmtime_context_set_epoch_deadline", None)
_set_wasi = _raw("wasmtime_context_set_wasi", _Ptr)
_wasi_config_new = _raw("wasi_config_new", _Ptr)
_memory_data_size = _raw("wasmtime_memory_data_size", ctypes.c_size_t)
_component_instantiate = _raw("wasmtime_component_linker_instantiate", _Ptr)
_component_get_func = _raw("wasmtime_component_instance_get_func", ctypes.c_bool)
_component_call = _raw("wasmtime_component_func_call", _Ptr)
_MEMORY_NAME_LEN = ctypes.c_size_t(len(b"memory"))
_EXTERN_MEMORY = 3  # WASMTIME_EXTERN_MEMORY

# The number of C calls one lean request makes; with the calibrated cost of one
# crossing it estimates how much of a request is dispatch rather than wasmtime.
LEAN_CROSSINGS_PER_REQUEST = 6


class _WasiIO:
    """A WASI command's context for each request: its argv, stdin from a file written once, and
    stdout/stderr captured to files that are checked after the store is dropped."""

    def __init__(self, workload: Workload) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wasmlab-wasi-"))
        self.argv = list(workload.argv) or [workload.name]
        self.stdin: str | None = None
        if workload.stdin is not None:
            self.stdin = str(self.folder / "stdin")
            Path(self.stdin).write_bytes(workload.stdin)
        self.stdout, self.stderr = str(self.folder / "stdout"), str(self.folder / "stderr")
        self.patterns = [(name, path, re.compile(p)) for name, path, p in
                         (("stdout", self.stdout, workload.stdout_pattern), ("stderr", self.stderr, workload.stderr_pattern)) if p]
        self.name = workload.name
        self.preopens = workload.preopens

    def config(self) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = self.argv
        if self.stdin is not None:
            wasi.stdin_file = self.stdin
        wasi.stdout_file = self.stdout
        wasi.stderr_file = self.stderr
        for host, guest in self.preopens:
            wasi.preopen_dir(host, guest, fs_mutable=False)
        return wasi

    def check(self) -> None:
        for name, path, pattern in self.patterns:
            text = Path(path).read_text(errors="replace")
            if not pattern.search(text):
                raise ResultMismatch(f"workload {self.name!r}: {name} does not match {pattern.pattern!r}: "
                                     f"{text.strip().splitlines()[:1]}")

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class _LeanSlots:
    """Per-workload buffers for the lean path, allocated once."""

    def __init__(self, workload: Workload) -> None:
        self.key = workload.sha256
        self.name = workload.entry.encode()
        self.name_len = ctypes.c_size_t(len(self.name))
        slots = max(len(workload.params), len(workload.results), 1)
        self.raw = (ffi.wasmtime_val_raw_t * slots)()
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
        self.io = _WasiIO(workload) if workload.captures_output else None
        self.expected_exit = workload.expected_exit
        # A plain request needs nothing but instantiate and call: no WASI context to set up.
        self.plain = not workload.linked


class _ComponentSlots:
    """Per-workload values for the lean component path: the request's argument trees, built
    once and borrowed by every call, and a zeroed slot for the result."""

    def __init__(self, workload: Workload) -> None:
        from wasmlab.component_values import PreparedArgs, ResultSlot

        if workload.signature is None:
            raise ConfigError(f"workload {workload.name!r} is a component without a signature")
        self.key = workload.sha256
        self.entry = workload.entry
        self.wasi = workload.wasi
        self.args = PreparedArgs(workload.signature, workload.args)
        self.result = ResultSlot(workload.signature.result)
        self.expected = workload.expected
        self.checked = workload.expected is not None
        self.workload_name = workload.name


def _raise_failure(err: _Ptr | None, trap: ctypes._Pointer) -> None:  # type: ignore[type-arg]
    """Turn a C error or trap into wasmtime-py's exception (an exit is an ``ExitTrap``), resetting the trap slot."""
    if err:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
    owned = ctypes.cast(ctypes.c_void_p(ctypes.cast(trap, ctypes.c_void_p).value), ctypes.POINTER(ffi.wasm_trap_t))
    ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
    raise wasmtime.Trap._from_ptr(owned)


def _mismatch(name: str, got: object, expected: object) -> ResultMismatch:
    return ResultMismatch(f"workload {name!r} returned {got!r}, expected {expected!r}: the request did not do its work")


class CompileError(WasmlabError):
    """A module could not be compiled for this runtime's engine: the variant cannot run at all."""


class Runtime:
    """Serves requests for ``workloads`` as ``variant`` does, through ``call_path``.

    ``handle(i)`` runs one full request of workload ``i`` and returns the guest's result;
    ``handle_phased(i, stamps)`` does the same and writes one ``perf_counter_ns`` stamp
    at the start and after each of ``PHASES`` into ``stamps``.  A request that fails raises
    wasmtime's trap or error (``outcomes.classify`` names it); the store is dropped and its
    pool slot returned either way.
    """

    def __init__(
        self,
        variant: Variant,
        engine: wasmtime.Engine,
        cache: CacheConfig,
        workloads: Sequence[Workload],
        call_path: str = "lean",
        shared_cache: ModuleCache[Compiled] | None = None,
        limits: Limits = Limits(),
        memory_limit: int | None = None,
        artifacts: "ArtifactStore | None" = None,
    ) -> None:
        self.variant = variant
        self.engine = engine
        self.call_path = check_call_path(call_path)
        self.limits = limits
        # The memory size at which a guest's growth fails: store limiter, pool, or wasm32's 4 GiB.
        bounds = [b for b in (limits.memory_bytes, memory_limit) if b is not None]
        self.memory_limit = min(bounds) if bounds else 4 << 30
        if variant.cached and cache.policy == "none":
            raise ConfigError(f"variant {variant.name!r} caches, but cache policy is 'none'; choose another policy or a variant without 'cached'")
        if shared_cache is not None and variant.cached:
            # Shared between runtimes (threads) of one engine: compiled modules belong to an engine.
            self.cache: ModuleCache[Compiled] = shared_cache
        else:
            self.cache = ModuleCache(cache if variant.cached else CacheConfig(policy="none"))
        self.workloads = list(workloads)
        self.artifacts = artifacts if variant.disk else None
        if variant.disk and artifacts is None:
            raise ConfigError(f"variant {variant.name!r} needs an artifact store (the folder for compiled artifacts)")
        self._checked: set[str] = set()
        self.wasi = any(w.wasi for w in self.workloads)
        linked = any(w.linked for w in self.workloads)
        drivers = sorted({w.driver for w in self.workloads if w.driver})
        if drivers and self.call_path == "lean":
            raise ConfigError(f"library-style workloads ({', '.join(drivers)}) are driven through wasmtime-py's objects; "
                              f"allowed call path: api")
        components = [w.name for w in self.workloads if w.component]
        if components and variant.pre:
            raise ConfigError(f"variant {variant.name!r} pre-instantiates, but wasmtime-py 50 has no InstancePre for components; "
                              f"allowed: a variant without 'pre'")
        self._component_linker = wasmtime.component.Linker(engine) if components else None
        if any(w.component and w.wasi for w in self.workloads):
            self._component_linker.add_wasip2()  # type: ignore[union-attr]
        self._linker = wasmtime.Linker(engine) if (variant.pre or linked) else None
        if any(w.wasi and not w.component for w in self.workloads):
            self._linker.define_wasi()  # type: ignore[union-attr]
        for name in sorted({w.host_imports for w in self.workloads if w.host_imports}):
            define_host_functions(self._linker, name)  # type: ignore[arg-type]
        self.pool_waits = 0
        self.pool_wait_ns = 0
        self._io: dict[int, _WasiIO] = {}
        self._ticker = EpochTicker.start_for(engine, limits.epoch_tick_ms) if limits.deadline_ms is not None else None
        self._deadline_ticks = math.ceil(limits.deadline_ms / limits.epoch_tick_ms) + 1 if limits.deadline_ms else 0
        if call_path == "lean" and components:
            self.handle, self.handle_phased = self._lean_mixed_handlers()
        elif call_path == "lean":
            self.handle, self.handle_phased = self._lean_handlers()
        else:
            self.handle, self.handle_phased = self._api_handlers()

    def close(self) -> None:
        """Stop the epoch ticker this runtime started, if any, and remove WASI output files."""
        if self._ticker is not None:
            self._ticker.release()
            self._ticker = None
        for io in self._io.values():
            io.close()

    def compile(self, workload: Workload) -> Compiled:
        """Compile ``workload`` on this runtime's engine (and pre-instantiate it if the variant does)."""
        try:
            if self.artifacts is not None:
                module = self.artifacts.load_or_compile(workload)
            elif workload.component:
                module = wasmtime.component.Component(self.engine, workload.wasm)
            else:
                module = wasmtime.Module(self.engine, workload.wasm)
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"workload {workload.name!r} does not compile for variant {self.variant.name!r}: "
                               + " ".join(str(exc).split())) from None
        if workload.sha256 not in self._checked:
            if workload.component:
                _check_component_export(module, self.engine, workload)  # type: ignore[arg-type]
                self._check_component_imports(module, workload)  # type: ignore[arg-type]
            else:
                _check_export(module, workload)
            self._checked.add(workload.sha256)
        pre = self._linker.instantiate_pre(module) if self.variant.pre else None  # type: ignore[union-attr]
        return Compiled(module, pre)

    def _check_component_imports(self, component: wasmtime.component.Component, workload: Workload) -> None:
        """Instantiate once in a scratch store: wasmtime names the first import the linker cannot satisfy."""
        store = wasmtime.Store(self.engine)
        if workload.wasi:
            store.set_wasi(wasmtime.WasiConfig())
        try:
            self._component_linker.instantiate(store, component)  # type: ignore[union-attr]
        except wasmtime.WasmtimeError as exc:
            text = " ".join(str(exc).split())
            if "import" in text:
                raise ConfigError(f"component {workload.name!r} has an import the lab cannot satisfy: {text}") from None
            raise
        finally:
            store.close()

    def _getter(self) -> Callable[[Workload], Compiled]:
        cache_get = self.cache.get
        compile_ = self.compile
        return lambda w: cache_get(w.sha256, compile_, w)

    def _waiting(self, attempt: Callable[[], None], first_error: BaseException) -> None:
        """The ``wait`` exhaustion policy: retry ``attempt`` until a pool slot frees or time runs out."""
        if classify(first_error) != "pool_exhausted":
            raise first_error
        if self.limits.exhaustion != "wait":
            raise PoolExhausted(str(first_error).splitlines()[0])
        start = time.perf_counter_ns()
        deadline = start + int(self.limits.wait_timeout_ms * 1e6)
        pause = 20e-6
        self.pool_waits += 1
        while True:
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)
            try:
                attempt()
                self.pool_wait_ns += time.perf_counter_ns() - start
                return
            except wasmtime.WasmtimeError as exc:
                if classify(exc) != "pool_exhausted":
                    raise
                if time.perf_counter_ns() >= deadline:
                    waited = time.perf_counter_ns() - start
                    self.pool_wait_ns += waited
                    raise PoolExhausted(f"no pool slot freed within {self.limits.wait_timeout_ms} ms", waited) from None

    # -- lean path ---------------------------------------------------------------------------

    def _lean_store_setup(self) -> Callable[[_Ptr, _Ptr], None] | None:
        """Per-store limits (store limiter, fuel, epoch deadline), or ``None`` when there are none."""
        limits = self.limits
        steps: list[Callable[[_Ptr, _Ptr], object]] = []
        if limits.store_limited:
            values = [ctypes.c_int64(-1 if v is None else v) for v in
                      (limits.memory_bytes, limits.table_elements, limits.instances, limits.tables, limits.memories)]
            steps.append(lambda store, context: _store_limiter(store, *values))
        if limits.fuel is not None:
            fuel = ctypes.c_uint64(limits.fuel)

            def set_fuel(store: _Ptr, context: _Ptr) -> None:
                err = _set_fuel(context, fuel)
                if err:
                    raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
            steps.append(set_fuel)
        if self._deadline_ticks:
            ticks = ctypes.c_uint64(self._deadline_ticks)
            steps.append(lambda store, context: _set_epoch_deadline(context, ticks))
        if not steps:
            return None

        def setup(store: _Ptr, context: _Ptr) -> None:
            for step in steps:
                step(store, context)
        return setup

    def _lean_handlers(self) -> tuple[Callable[[int], int | None], Callable[[int, list[int]], int | None]]:
        clock = time.perf_counter_ns
        engine_ptr = self.engine.ptr()
        get = self._getter()
        cache_get, compile_ = self.cache.get, self.compile
        workloads = self.workloads
        slots = [_LeanSlots(w) for w in workloads]
        self._io = {i: s.io for i, s in enumerate(slots) if s.io is not None}
        pre = self.variant.pre
        linker_ptr = self._linker.ptr() if self._linker is not None else None
        setup = self._lean_store_setup()
        instance = ffi.wasmtime_instance_t()
        instance_ref = ctypes.byref(instance)
        extern = ffi.wasmtime_extern_t()
        extern_ref = ctypes.byref(extern)
        func_ref = ctypes.byref(extern, ffi.wasmtime_extern_t.of.offset)
        memory_extern = ffi.wasmtime_extern_t()
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        trap_ref = ctypes.byref(trap)
        no_imports = ctypes.c_size_t(0)

        def try_instantiate(compiled: Compiled, context: _Ptr, s: _LeanSlots) -> None:
            if pre:
                err = _instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
            elif s.linked:
                err = _linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref, trap_ref)
            else:
                err = _instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
            if err or trap:
                _raise_failure(err, trap)

        def instantiate_slow(compiled: Compiled, context: _Ptr, s: _LeanSlots, err: _Ptr | None) -> None:
            """Everything but the plain instantiate: WASI, limits, failures and waiting for a slot."""
            try:
                _raise_failure(err, trap)
            except wasmtime.WasmtimeError as exc:
                self._waiting(lambda: try_instantiate(compiled, context, s), exc)

        def memory_bytes(context: _Ptr) -> int | None:
            if _export_get(context, instance_ref, b"memory", _MEMORY_NAME_LEN, ctypes.byref(memory_extern)) and memory_extern.kind == _EXTERN_MEMORY:
                return int(_memory_data_size(context, ctypes.byref(memory_extern, ffi.wasmtime_extern_t.of.offset)))
            return None

        def call(context: _Ptr, s: _LeanSlots) -> int | None:
            if not _export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
            words = s.words64
            for i, value in s.arg_words:
                words[i] = value
            err = _call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
            if err or trap:
                return call_failed(context, err, s.expected_exit)
            if s.expected_exit:
                raise _mismatch(s.workload_name, "exit 0", f"exit {s.expected_exit}")
            return s.result_words[0] if s.has_result else None

        def call_failed(context: _Ptr, err: _Ptr | None, expected_exit: int = 0) -> None:
            """A call that trapped or exited: the expected exit is a normal end, anything else is raised."""
            try:
                _raise_failure(err, trap)
            except wasmtime.ExitTrap as exc:
                if exc.code == expected_exit:
                    return None
                raise
            except wasmtime.Trap as exc:
                exc.wasmlab_memory_bytes = memory_bytes(context)  # type: ignore[attr-defined]
                raise

        def new_store(s: _LeanSlots) -> tuple[_Ptr, _Ptr]:
            store = _store_new(engine_ptr, None, None)
            context = _store_context(store)
            try:
                if setup is not None:
                    setup(store, context)
                if s.wasi:
                    err = _set_wasi(context, s.io.config()._consume() if s.io is not None else _wasi_config_new())
                    if err:
                        _raise_failure(err, trap)
            except BaseException:
                _store_delete(store)
                raise
            return store, context

        def handle(index: int) -> int | None:
            s = slots[index]
            compiled = cache_get(s.key, compile_, workloads[index])
            if s.plain and setup is None:
                # The common case, kept flat: every call here is one crossing into wasmtime.  The
                # lookup-and-call below repeats ``call`` on purpose: a Python call more per request
                # is ~0.1 µs, over 2% of a pooled+cached request.
                store = _store_new(engine_ptr, None, None)
                try:
                    context = _store_context(store)
                    if pre:
                        err = _instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref)
                    else:
                        err = _instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref)
                    if err or trap:
                        instantiate_slow(compiled, context, s, err)
                    if not _export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                        raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
                    words = s.words64
                    for i, value in s.arg_words:
                        words[i] = value
                    err = _call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
                    if err or trap:
                        result = call_failed(context, err)
                    else:
                        result = s.result_words[0] if s.has_result else None
                finally:
                    _store_delete(store)
            else:
                store, context = new_store(s)
                try:
                    try_instantiate_checked(compiled, context, s)
                    result = call(context, s)
                finally:
                    _store_delete(store)
                if s.io is not None:
                    s.io.check()
            if s.expected is not None and result != s.expected:
                raise _mismatch(s.workload_name, result, s.expected)
            return result

        def try_instantiate_checked(compiled: Compiled, context: _Ptr, s: _LeanSlots) -> None:
            try:
                try_instantiate(compiled, context, s)
            except wasmtime.WasmtimeError as exc:
                self._waiting(lambda: try_instantiate(compiled, context, s), exc)

        def handle_phased(index: int, stamps: list[int]) -> int | None:
            s = slots[index]
            stamps[0] = clock()
            compiled = get(workloads[index])
            stamps[1] = clock()
            store, context = new_store(s)
            stamps[2] = clock()
            try:
                try_instantiate_checked(compiled, context, s)
                stamps[3] = clock()
                if not _export_get(context, instance_ref, s.name, s.name_len, extern_ref):
                    raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
                stamps[4] = clock()
                result = call(context, s)  # looks the export up again: a cheap, known cost
                stamps[5] = clock()
            finally:
                _store_delete(store)
            stamps[6] = clock()
            if s.io is not None:
                s.io.check()
            stamps[7] = clock()
            if s.expected is not None and result != s.expected:
                raise _mismatch(s.workload_name, result, s.expected)
            return result

        return handle, handle_phased

    def _lean_mixed_handlers(self) -> tuple[Callable[[int], object], Callable[[int, list[int]], object]]:
        """Components through the lean component path; core modules, if any, through the lean core path."""
        component_handle, component_phased = self._lean_component_handlers()
        if all(w.component for w in self.workloads):
            return component_handle, component_phased
        core_handle, core_phased = self._lean_handlers()
        is_component = [w.component for w in self.workloads]

        def handle(index: int) -> object:
            return (component_handle if is_component[index] else core_handle)(index)

        def handle_phased(index: int, stamps: list[int]) -> object:
            return (component_phased if is_component[index] else core_phased)(index, stamps)
        return handle, handle_phased

    def _lean_component_handlers(self) -> tuple[Callable[[int], object], Callable[[int, list[int]], object]]:
        """Components called with ``wasmtime_component_func_call`` and argument trees built once per
        request (``component_values.PreparedArgs``); only the result is converted per call."""
        clock = time.perf_counter_ns
        engine_ptr = self.engine.ptr()
        cache_get, compile_ = self.cache.get, self.compile
        workloads = self.workloads
        slots = {i: _ComponentSlots(w) for i, w in enumerate(workloads) if w.component}
        linker_ptr = self._component_linker.ptr()  # type: ignore[union-attr]
        setup = self._lean_store_setup()
        instance = ffi.wasmtime_component_instance_t()
        instance_ref = ctypes.byref(instance)
        func = ffi.wasmtime_component_func_t()
        func_ref = ctypes.byref(func)
        trap = ctypes.POINTER(ffi.wasm_trap_t)()

        def try_instantiate(compiled: Compiled, context: _Ptr) -> None:
            err = _component_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref)
            if err:
                _raise_failure(err, trap)

        def instantiate(compiled: Compiled, context: _Ptr) -> None:
            try:
                try_instantiate(compiled, context)
            except wasmtime.WasmtimeError as exc:
                self._waiting(lambda: try_instantiate(compiled, context), exc)

        def new_store(c: _ComponentSlots) -> tuple[_Ptr, _Ptr]:
            store = _store_new(engine_ptr, None, None)
            context = _store_context(store)
            try:
                if setup is not None:
                    setup(store, context)
                if c.wasi:
                    # Without a WASI context wasmtime aborts the process at the guest's first WASI call.
                    err = _set_wasi(context, _wasi_config_new())
                    if err:
                        _raise_failure(err, trap)
            except BaseException:
                _store_delete(store)
                raise
            return store, context

        def lookup(compiled: Compiled, context: _Ptr, c: _ComponentSlots) -> None:
            if not _component_get_func(instance_ref, context, compiled.export_index(c.entry), func_ref):
                raise ConfigError(f"workload {c.workload_name!r}: component export {c.entry!r} is not a function")

        def call(context: _Ptr, c: _ComponentSlots) -> None:
            args, result = c.args, c.result
            err = _component_call(func_ref, context, args.array, args.size, result.ref, result.count)
            if err:
                _raise_failure(err, trap)

        def checked(c: _ComponentSlots) -> object:
            # The result is the caller's copy, independent of the store: read after the store is gone.
            result = c.result.take()
            if c.checked and result != c.expected:
                raise _mismatch(c.workload_name, result, c.expected)
            return result

        def handle(index: int) -> object:
            c = slots[index]
            compiled = cache_get(c.key, compile_, workloads[index])
            store, context = new_store(c)
            try:
                instantiate(compiled, context)
                lookup(compiled, context, c)
                call(context, c)
            finally:
                _store_delete(store)
            return checked(c)

        def handle_phased(index: int, stamps: list[int]) -> object:
            c = slots[index]
            stamps[0] = clock()
            compiled = cache_get(c.key, compile_, workloads[index])
            stamps[1] = clock()
            store, context = new_store(c)
            stamps[2] = clock()
            try:
                instantiate(compiled, context)
                stamps[3] = clock()
                lookup(compiled, context, c)
                stamps[4] = clock()
                call(context, c)
                stamps[5] = clock()
            finally:
                _store_delete(store)
            stamps[6] = clock()
            result = checked(c)
            stamps[7] = clock()
            return result

        return handle, handle_phased

    # -- api path ----------------------------------------------------------------------------

    def _api_store(self, workload: Workload, io: _WasiIO | None) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        limits = self.limits
        if limits.store_limited:
            store.set_limits(*(-1 if v is None else v for v in
                               (limits.memory_bytes, limits.table_elements, limits.instances, limits.tables, limits.memories)))
        if limits.fuel is not None:
            store.set_fuel(limits.fuel)
        if self._deadline_ticks:
            store.set_epoch_deadline(self._deadline_ticks)
        if workload.wasi:
            store.set_wasi(io.config() if io is not None else wasmtime.WasiConfig())
        return store

    def _api_handlers(self) -> tuple[Callable[[int], int | None], Callable[[int, list[int]], int | None]]:
        clock = time.perf_counter_ns
        get = self._getter()
        workloads = self.workloads
        pre = self.variant.pre
        linker = self._linker
        component_linker = self._component_linker
        self._io = {i: _WasiIO(w) for i, w in enumerate(workloads) if w.captures_output}
        ios = [self._io.get(i) for i in range(len(workloads))]
        new_store = self._api_store
        # Component values in wasmtime-py's representation, converted from the plain ones once;
        # wasmtime-py then converts them to C values (and the result back) on every call.
        api_args = [_api_args(w) for w in workloads]
        expected = [_api_expected(w) for w in workloads]

        def check(index: int, result: object) -> None:
            has_expected, value = expected[index]
            if has_expected and result != value:
                w = workloads[index]
                shown = w.signature.result.from_api(result) if w.component and w.signature.result is not None else result
                raise _mismatch(w.name, shown, w.expected)

        def instantiate(store: wasmtime.Store, compiled: Compiled, w: Workload) -> wasmtime.Instance:
            def attempt() -> wasmtime.Instance:
                if w.component:
                    return component_linker.instantiate(store, compiled.module)  # type: ignore[union-attr, return-value]
                if pre:
                    return compiled.pre.instantiate(store)  # type: ignore[union-attr]
                if w.linked:
                    return linker.instantiate(store, compiled.module)  # type: ignore[union-attr]
                return wasmtime.Instance(store, compiled.module, ())
            try:
                return attempt()
            except wasmtime.WasmtimeError as exc:
                box: list[wasmtime.Instance] = []
                self._waiting(lambda: box.append(attempt()), exc)
                return box[0]

        def call(store: wasmtime.Store, instance: wasmtime.Instance, index: int) -> int | None:
            w = workloads[index]
            if w.component:
                return instance.get_func(store, w.entry)(store, *api_args[index])  # type: ignore[attr-defined, misc, no-any-return]
            if w.driver:
                output = DRIVERS[w.driver](store, instance, w.driver_input)
                if w.stdout_pattern and not re.search(w.stdout_pattern, output.decode(errors="replace")):
                    raise ResultMismatch(f"workload {w.name!r}: output does not match {w.stdout_pattern!r}: {output[:80]!r}")
                return None
            exports = instance.exports(store)
            try:
                result = exports[w.entry](store, *w.args)
            except wasmtime.ExitTrap as exc:
                if exc.code == w.expected_exit:
                    return None
                raise
            except wasmtime.Trap as exc:
                memory = exports.get("memory")
                exc.wasmlab_memory_bytes = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else None  # type: ignore[attr-defined]
                raise
            if w.expected_exit:
                raise _mismatch(w.name, "exit 0", f"exit {w.expected_exit}")
            return result  # type: ignore[no-any-return]

        def handle(index: int) -> int | None:
            w = workloads[index]
            compiled = get(w)
            store = new_store(w, ios[index])
            try:
                result = call(store, instantiate(store, compiled, w), index)
            finally:
                store.close()
            io = ios[index]
            if io is not None:
                io.check()
            check(index, result)
            return result

        def handle_phased(index: int, stamps: list[int]) -> int | None:
            w = workloads[index]
            stamps[0] = clock()
            compiled = get(w)
            stamps[1] = clock()
            store = new_store(w, ios[index])
            stamps[2] = clock()
            try:
                instance = instantiate(store, compiled, w)
                stamps[3] = clock()
                if w.component:
                    instance.get_func(store, w.entry)  # type: ignore[attr-defined]
                elif not w.driver:
                    instance.exports(store)[w.entry]
                stamps[4] = clock()
                result = call(store, instance, index)
                stamps[5] = clock()
            finally:
                store.close()
            stamps[6] = clock()
            io = ios[index]
            if io is not None:
                io.check()
            check(index, result)
            stamps[7] = clock()
            return result

        return handle, handle_phased


def _api_args(w: Workload) -> tuple[object, ...]:
    if not w.component:
        return w.args
    return tuple(shape.to_api(value) for (_, shape), value in zip(w.signature.params, w.args))


def _api_expected(w: Workload) -> tuple[bool, object]:
    """Whether the result is checked, and the expected value as wasmtime-py returns it."""
    if w.component and w.signature.result is not None:
        return w.expected is not None, (w.signature.result.to_api(w.expected) if w.expected is not None else None)
    return w.expected is not None, w.expected


class EpochTicker:
    """One background thread per engine that advances its epoch every ``tick_ms``, so a store's
    epoch deadline is a wall-time budget.  Shared by the runtimes of an engine, reference-counted."""

    _running: dict[int, "EpochTicker"] = {}
    _lock = threading.Lock()

    def __init__(self, engine: wasmtime.Engine, tick_ms: float) -> None:
        self.engine = engine
        self.tick_s = tick_ms / 1000
        self.users = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasmlab-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        increment = self.engine.increment_epoch
        while not self._stop.wait(self.tick_s):
            increment()

    @classmethod
    def start_for(cls, engine: wasmtime.Engine, tick_ms: float) -> "EpochTicker":
        with cls._lock:
            ticker = cls._running.get(id(engine))
            if ticker is None:
                ticker = cls._running[id(engine)] = cls(engine, tick_ms)
            ticker.users += 1
            return ticker

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users == 0:
                self._stop.set()
                self._running.pop(id(self.engine), None)


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


def engine_config_for(variant: Variant, base: EngineConfig, limits: Limits = Limits()) -> EngineConfig:
    """``base`` with the allocator the variant asks for, and the engine features the limits need."""
    return base.replace(
        allocator=variant.allocator,
        compilation_cache=base.compilation_cache or variant.wasmtime_cache,
        consume_fuel=base.consume_fuel or limits.fuel is not None,
        epoch_interruption=base.epoch_interruption or limits.deadline_ms is not None,
        max_wasm_stack=limits.max_wasm_stack if limits.max_wasm_stack is not None else base.max_wasm_stack,
    )


def build_runtimes(
    variants: Sequence[str],
    engine: EngineConfig,
    cache: CacheConfig,
    workloads: Sequence[Workload],
    call_path: str = "lean",
    engines: EnginePool | None = None,
    limits: Limits = Limits(),
    artifact_dir: Path | None = None,
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
    runtimes = {}
    for v in parsed:
        config = engine_config_for(v, engine, limits)
        if config.pooled and any(w.component for w in workloads):
            from wasmlab.inspect_pool import size_pool_for_components

            config = config.replace(pool=size_pool_for_components(config.pool, list(workloads)))
        pool_limit = config.pool.max_memory_size if config.pooled else None
        engine_object = engines.get(config)
        artifacts = ArtifactStore(artifact_dir or default_artifact_folder(), engine_object, config) if v.disk else None
        runtimes[v.name] = Runtime(v, engine_object, cache, workloads, v.call_path or call_path,
                                   limits=limits, memory_limit=pool_limit, artifacts=artifacts)
    return runtimes
