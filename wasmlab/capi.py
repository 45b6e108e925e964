"""Every wasmtime C API function and struct the lab uses beyond wasmtime-py's objects, declared once.

wasmtime-py 50 ships the raw declarations in ``wasmtime._bindings`` (generated from wasmtime's C
headers).  The lab uses them in two ways, and both go through this module only:

* **Fast functions** (:func:`_fast`): a new function object from the library for each name, with our
  own ``restype`` and no ``argtypes``, so one crossing costs ~0.15 µs instead of ~0.27 µs through
  ``_bindings``' converting wrappers.  Without ``argtypes`` ctypes checks nothing, so each
  declaration also states the argument types the lab assumes; ``tests/host/test_capi.py`` checks
  them (and the result type) against ``_bindings``' own declaration, so a wasmtime upgrade that
  changes a signature fails one clear test instead of corrupting memory.
* **Typed functions** (:func:`_typed`): ``_bindings``' wrappers themselves, for calls off the hot
  path (pool configuration, component value allocation); they must exist, which the same test checks.

A returned pointer must stay a ctypes object: with a ``c_void_p`` restype ctypes returns a Python
``int``, and passing that to a function without ``argtypes`` truncates it to a C ``int``.  Hence
:class:`Ptr`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime import _bindings as ffi
from wasmtime import _ffi
from wasmtime._ffi import dll as dll  # re-exported: the advisor asks it which functions a library has


class Ptr(ctypes.c_void_p):
    """Restype that keeps a returned pointer a ctypes object (see the module docstring)."""


@dataclass(frozen=True)
class FastDeclaration:
    """What the lab assumes of one C function it calls without ``argtypes``."""

    name: str
    restype: Any
    argtypes: tuple[Any, ...]


FAST: dict[str, FastDeclaration] = {}
TYPED: set[str] = set()


def _fast(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    # dll[name] makes a new function object, so setting restype here does not touch _bindings' own.
    function = dll[name]
    function.restype = restype
    FAST[name] = FastDeclaration(name, restype, argtypes)
    return function


def _typed(name: str) -> Callable[..., Any]:
    TYPED.add(name)
    function: Callable[..., Any] = getattr(ffi, name)
    return function


P = ctypes.POINTER
_context = P(ffi.wasmtime_context_t)
_trap_out = P(P(ffi.wasm_trap_t))
_i64 = ctypes.c_int64

# -- structs (layouts from _bindings) ---------------------------------------------------------------
instance_t = ffi.wasmtime_instance_t
extern_t = ffi.wasmtime_extern_t
val_raw_t = ffi.wasmtime_val_raw_t
trap_t = ffi.wasm_trap_t
error_t = ffi.wasmtime_error_t
byte_t = ffi.wasm_byte_t
byte_vec_t = ffi.wasm_byte_vec_t
component_instance_t = ffi.wasmtime_component_instance_t
component_func_t = ffi.wasmtime_component_func_t
component_val_t = ffi.wasmtime_component_val_t
component_vallist_t = ffi.wasmtime_component_vallist_t
component_valtuple_t = ffi.wasmtime_component_valtuple_t
component_valrecord_t = ffi.wasmtime_component_valrecord_t
component_valrecord_entry_t = ffi.wasmtime_component_valrecord_entry_t
EXTERN_MEMORY = 3  # WASMTIME_EXTERN_MEMORY (extern.h)
EXTERN_OF_OFFSET = ffi.wasmtime_extern_t.of.offset


def component_kind(name: str) -> int:
    """A ``wasmtime_component_valkind_t`` constant (``U32``, ``STRING``, ...) from the binding."""
    return int(getattr(_ffi, f"WASMTIME_COMPONENT_{name}").value)


# -- fast functions: the request paths ------------------------------------------------------------------
store_new = _fast("wasmtime_store_new", Ptr, P(ffi.wasm_engine_t), ctypes.c_void_p, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
store_context = _fast("wasmtime_store_context", Ptr, P(ffi.wasmtime_store_t))
store_delete = _fast("wasmtime_store_delete", None, P(ffi.wasmtime_store_t))
store_limiter = _fast("wasmtime_store_limiter", None, P(ffi.wasmtime_store_t), _i64, _i64, _i64, _i64, _i64)
context_set_fuel = _fast("wasmtime_context_set_fuel", Ptr, _context, ctypes.c_uint64)
context_set_epoch_deadline = _fast("wasmtime_context_set_epoch_deadline", None, _context, ctypes.c_uint64)
context_set_wasi = _fast("wasmtime_context_set_wasi", Ptr, _context, P(ffi.wasi_config_t))
context_set_wasi_http = _fast("wasmtime_context_set_wasi_http", None, _context)
wasi_config_new = _fast("wasi_config_new", Ptr)
instance_new = _fast("wasmtime_instance_new", Ptr, _context, P(ffi.wasmtime_module_t), P(ffi.wasmtime_extern_t),
                     ctypes.c_size_t, P(ffi.wasmtime_instance_t), _trap_out)
instance_pre_instantiate = _fast("wasmtime_instance_pre_instantiate", Ptr, P(ffi.wasmtime_instance_pre_t), _context,
                                 P(ffi.wasmtime_instance_t), _trap_out)
linker_instantiate = _fast("wasmtime_linker_instantiate", Ptr, P(ffi.wasmtime_linker_t), _context, P(ffi.wasmtime_module_t),
                           P(ffi.wasmtime_instance_t), _trap_out)
instance_export_get = _fast("wasmtime_instance_export_get", ctypes.c_bool, _context, P(ffi.wasmtime_instance_t), P(ctypes.c_char),
                            ctypes.c_size_t, P(ffi.wasmtime_extern_t))
func_call_unchecked = _fast("wasmtime_func_call_unchecked", Ptr, _context, P(ffi.wasmtime_func_t), P(ffi.wasmtime_val_raw_t),
                            ctypes.c_size_t, _trap_out)
memory_data_size = _fast("wasmtime_memory_data_size", ctypes.c_size_t, _context, P(ffi.wasmtime_memory_t))
memory_data = _fast("wasmtime_memory_data", Ptr, _context, P(ffi.wasmtime_memory_t))
engine_is_pulley = _fast("wasmtime_engine_is_pulley", ctypes.c_bool, P(ffi.wasm_engine_t))
component_linker_instantiate = _fast("wasmtime_component_linker_instantiate", Ptr, P(ffi.wasmtime_component_linker_t), _context,
                                     P(ffi.wasmtime_component_t), P(ffi.wasmtime_component_instance_t))
component_instance_get_func = _fast("wasmtime_component_instance_get_func", ctypes.c_bool, P(ffi.wasmtime_component_instance_t),
                                    _context, P(ffi.wasmtime_component_export_index_t), P(ffi.wasmtime_component_func_t))
component_func_call = _fast("wasmtime_component_func_call", Ptr, P(ffi.wasmtime_component_func_t), _context,
                            P(ffi.wasmtime_component_val_t), ctypes.c_size_t, P(ffi.wasmtime_component_val_t), ctypes.c_size_t)
component_func_post_return = _fast("wasmtime_component_func_post_return", Ptr, P(ffi.wasmtime_component_func_t), _context)

# -- typed functions: configuration and component values, off the hot path -------------------------------
config_strategy_set = _typed("wasmtime_config_strategy_set")
pooling_config_new = _typed("wasmtime_pooling_allocation_config_new")
pooling_config_delete = _typed("wasmtime_pooling_allocation_config_delete")
pooling_strategy_set = _typed("wasmtime_pooling_allocation_strategy_set")
POOLING_SETTERS: dict[str, Callable[..., None]] = {
    knob: _typed(f"wasmtime_pooling_allocation_config_{knob}_set") for knob in (
        "total_core_instances", "total_memories", "total_tables", "total_stacks", "total_component_instances",
        "max_memory_size", "max_core_instance_size", "max_memories_per_module", "max_tables_per_module", "table_elements",
        "max_unused_warm_slots", "linear_memory_keep_resident", "table_keep_resident", "decommit_batch_size",
        "max_component_instance_size", "max_core_instances_per_component", "max_memories_per_component",
        "max_tables_per_component")
}
byte_vec_new = _typed("wasm_byte_vec_new")
component_val_new = _typed("wasmtime_component_val_new")
component_val_delete = _typed("wasmtime_component_val_delete")
component_val_clone = _typed("wasmtime_component_val_clone")
component_vallist_new_uninit = _typed("wasmtime_component_vallist_new_uninit")
component_valtuple_new_uninit = _typed("wasmtime_component_valtuple_new_uninit")
component_valrecord_new_uninit = _typed("wasmtime_component_valrecord_new_uninit")
typed_component_instance_get_func = _typed("wasmtime_component_instance_get_func")


# -- errors and traps ------------------------------------------------------------------------------------

def error_from(err: Ptr) -> wasmtime.WasmtimeError:
    """wasmtime-py's exception for an owned ``wasmtime_error_t*`` (it takes ownership)."""
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, P(ffi.wasmtime_error_t)))


def raise_failure(err: Ptr | None, trap: Any) -> None:
    """Raise a C error or trap as wasmtime-py's exception (an exit is an ``ExitTrap``), resetting the trap slot."""
    if err:
        raise error_from(err)
    owned = ctypes.cast(ctypes.c_void_p(ctypes.cast(trap, ctypes.c_void_p).value), P(ffi.wasm_trap_t))
    ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
    raise wasmtime.Trap._from_ptr(owned)


def trap_slot() -> Any:
    """A null ``wasm_trap_t*`` for a call to write its trap into."""
    return P(ffi.wasm_trap_t)()


def library_handle() -> int:
    """The ``dlopen`` handle of the libwasmtime wasmtime-py loaded (for the native driver's ``dlsym``)."""
    return int(dll._handle)


def address(pointer: Any) -> int:
    """A ctypes pointer's address as an integer (0 for null), for handing it to the native driver."""
    return int(ctypes.cast(pointer, ctypes.c_void_p).value or 0)


def crossing_probe(engine: wasmtime.Engine) -> Callable[[], object]:
    """A no-op C call made the way the lean path makes its calls, for calibrating one crossing."""
    ptr = engine.ptr()
    return lambda: engine_is_pulley(ptr)


def _is_c_function(value: object) -> bool:
    """A ctypes function object (it has ``argtypes``; a Python function does not)."""
    return callable(value) and hasattr(value, "argtypes") and hasattr(value, "restype")


def probe_like(function: Any) -> Any:
    """A function object that converts its arguments and result as ``function`` does, but calls
    ``wasmtime_engine_is_pulley`` (which reads its first argument, an engine, and nothing else).

    Called with an engine pointer first and ``function``'s other arguments after it, it costs what a call of
    ``function`` costs in ctypes (the same arity, argument objects and result type) with a callee that does
    almost nothing.  The extra arguments are passed and ignored: the C calling conventions of every platform
    wasmtime ships for (System V x86-64 and AArch64, Windows x64) let the caller clean up, so that is safe.
    """
    probe = dll["wasmtime_engine_is_pulley"]  # a new function object: its types are ours to set
    probe.restype = function.restype
    if function.argtypes is not None:
        probe.argtypes = (ctypes.c_void_p, *function.argtypes[1:])
    return probe


class CrossingCounter:
    """How many C functions of libwasmtime were called while it was active (see :func:`counting`), and
    each call's function object and arguments (``made``, in order), for probing their cost."""

    def __init__(self) -> None:
        self.calls = 0
        self.by_name: dict[str, int] = {}
        self.made: list[tuple[Any, tuple[Any, ...]]] = []


@contextmanager
def counting() -> Iterator[CrossingCounter]:
    """Count every call into libwasmtime while active: the lab's fast functions and every raw function object
    of ``wasmtime._bindings`` (what wasmtime-py's objects and the typed functions call).  Handlers bound while it
    is active use the counting functions; nothing else may run meanwhile (it patches module attributes)."""
    counter = CrossingCounter()

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            counter.calls += 1
            counter.by_name[name] = counter.by_name.get(name, 0) + 1
            counter.made.append((function, args))
            return function(*args)
        return call

    module = globals()
    patched: list[tuple[Any, str, Any]] = []
    for name, value in list(module.items()):
        declaration = next((d for d in FAST.values() if value is not None and getattr(value, "__name__", None) == d.name), None)
        if declaration is not None and _is_c_function(value):
            patched.append((module, name, value))
    for name, value in list(vars(ffi).items()):
        if name.startswith(("_wasm", "_wasi")) and _is_c_function(value):
            patched.append((vars(ffi), name, value))
    try:
        for namespace, name, value in patched:
            namespace[name] = counted(getattr(value, "__name__", name.lstrip("_")), value)
        yield counter
    finally:
        for namespace, name, value in patched:
            namespace[name] = value
