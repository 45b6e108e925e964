"""``EngineConfig`` -> ``wasmtime.Engine``: the one place that touches the pooling C API.

wasmtime-py 50 exposes the pooling allocator only through ``wasmtime._bindings``;
``PoolingAllocation`` is a thin typed wrapper over those functions, in the manner of
wasmtime-py's own ``Managed`` objects.
"""

from __future__ import annotations

import ctypes
import resource
from typing import Callable

import wasmtime
from wasmtime import _bindings as ffi

from wasmlab.config import WASMTIME_DEFAULT_RESERVATION, EngineConfig, GiB, MiB, PoolConfig
from wasmlab.errors import ConfigError

# Knob name on PoolConfig -> setter in the C API.  ``total_*`` knobs are resolved
# through ``PoolConfig.resolved`` so that ``slots`` fills in what is not given.
_POOL_TOTALS: dict[str, Callable[..., None]] = {
    "total_core_instances": ffi.wasmtime_pooling_allocation_config_total_core_instances_set,
    "total_memories": ffi.wasmtime_pooling_allocation_config_total_memories_set,
    "total_tables": ffi.wasmtime_pooling_allocation_config_total_tables_set,
    "total_stacks": ffi.wasmtime_pooling_allocation_config_total_stacks_set,
    "total_component_instances": ffi.wasmtime_pooling_allocation_config_total_component_instances_set,
}
_POOL_OPTIONAL: dict[str, Callable[..., None]] = {
    "max_memory_size": ffi.wasmtime_pooling_allocation_config_max_memory_size_set,
    "max_core_instance_size": ffi.wasmtime_pooling_allocation_config_max_core_instance_size_set,
    "max_memories_per_module": ffi.wasmtime_pooling_allocation_config_max_memories_per_module_set,
    "max_tables_per_module": ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set,
    "table_elements": ffi.wasmtime_pooling_allocation_config_table_elements_set,
    "max_unused_warm_slots": ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set,
    "linear_memory_keep_resident": ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set,
    "table_keep_resident": ffi.wasmtime_pooling_allocation_config_table_keep_resident_set,
    "decommit_batch_size": ffi.wasmtime_pooling_allocation_config_decommit_batch_size_set,
    "max_component_instance_size": ffi.wasmtime_pooling_allocation_config_max_component_instance_size_set,
    "max_core_instances_per_component": ffi.wasmtime_pooling_allocation_config_max_core_instances_per_component_set,
    "max_memories_per_component": ffi.wasmtime_pooling_allocation_config_max_memories_per_component_set,
    "max_tables_per_component": ffi.wasmtime_pooling_allocation_config_max_tables_per_component_set,
}


class PoolingAllocation:
    """A ``wasmtime_pooling_allocation_config_t`` built from a ``PoolConfig``.

    ``apply`` installs it on a ``wasmtime.Config``; the C API clones the pool
    configuration there, so this object can be closed right after.
    """

    def __init__(self, pool: PoolConfig) -> None:
        self._ptr: ctypes._Pointer | None = ffi.wasmtime_pooling_allocation_config_new()  # type: ignore[type-arg]
        for name, setter in _POOL_TOTALS.items():
            setter(self._ptr, pool.resolved(name))
        for name, setter in _POOL_OPTIONAL.items():
            value = getattr(pool, name)
            if value is not None:
                setter(self._ptr, value)

    def apply(self, config: wasmtime.Config) -> None:
        """Make ``config`` use the pooling allocator with these limits."""
        if self._ptr is None:
            raise ValueError("PoolingAllocation already closed")
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), self._ptr)

    def close(self) -> None:
        if self._ptr is not None:
            ffi.wasmtime_pooling_allocation_config_delete(self._ptr)
            self._ptr = None

    def __enter__(self) -> "PoolingAllocation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


# ``wasmtime_strategy_t`` values from wasmtime's C header (config.h).  wasmtime-py 50's
# ``Config.strategy`` accepts only "auto" and "cranelift", though its library includes Winch.
_STRATEGIES = {"cranelift": 1, "winch": 2}


def build_config(engine: EngineConfig) -> wasmtime.Config:
    """A ``wasmtime.Config`` carrying every knob of ``engine``."""
    config = wasmtime.Config()
    ffi.wasmtime_config_strategy_set(config.ptr(), _STRATEGIES[engine.compiler])
    if engine.compiler == "cranelift":
        config.cranelift_opt_level = engine.opt_level
    config.memory_init_cow = engine.memory_init_cow
    config.parallel_compilation = engine.parallel_compilation
    if engine.memory_reservation is not None:
        config.memory_reservation = engine.memory_reservation
    if engine.memory_guard_size is not None:
        config.memory_guard_size = engine.memory_guard_size
    if engine.compilation_cache:
        config.cache = True
    config.consume_fuel = engine.consume_fuel
    config.epoch_interruption = engine.epoch_interruption
    if engine.max_wasm_stack is not None:
        config.max_wasm_stack = engine.max_wasm_stack
    if engine.pooled:
        with PoolingAllocation(engine.pool) as pooling:
            pooling.apply(config)
    return config


# wasmtime's defaults on 64-bit hosts: a 32 MiB guard after each linear memory (whose 4 GiB
# reservation is config.WASMTIME_DEFAULT_RESERVATION); about 2 MiB of address space per async stack slot.
DEFAULT_GUARD = 32 * MiB
STACK_SLOT_BYTES = 2 * MiB


def pool_reservation_bytes(engine: EngineConfig) -> int:
    """A lower bound of the address space a pooling engine reserves when it is created."""
    pool = engine.pool
    reservation = engine.memory_reservation if engine.memory_reservation is not None else WASMTIME_DEFAULT_RESERVATION
    guard = engine.memory_guard_size if engine.memory_guard_size is not None else DEFAULT_GUARD
    return pool.resolved("total_memories") * (reservation + guard) + pool.resolved("total_stacks") * STACK_SLOT_BYTES


def address_space_left() -> int | None:
    """Bytes of address space this process may still map under ``RLIMIT_AS``; ``None`` if unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(soft - int(line.split()[1]) * 1024)
    except OSError:
        pass
    return int(soft)


def preflight(engine: EngineConfig) -> None:
    """Refuse a pool that cannot be reserved, as Spin and ``wasmtime serve`` probe before they
    pool: wasmtime's C API aborts the whole process (a Rust panic in
    ``wasm_engine_new_with_config``) when the reservation fails."""
    if not engine.pooled or not engine.preflight:
        return
    left = address_space_left()
    need = pool_reservation_bytes(engine)
    if left is not None and need > left:
        raise ConfigError(
            f"a pool of {engine.pool.resolved('total_memories')} memories reserves at least {need / GiB:.1f} GiB of address space, "
            f"but this process may map only {max(left, 0) / GiB:.1f} GiB more (RLIMIT_AS); allowed: fewer slots, or a smaller "
            f"reservation (e.g. --engine memory_reservation=1MiB --engine memory_guard_size=64KiB --pool max_memory_size=1MiB)"
        )


def build_engine(engine: EngineConfig) -> wasmtime.Engine:
    """A new ``wasmtime.Engine`` for ``engine``.

    Creating a pooling engine reserves every slot's address space up front; ``preflight``
    refuses a pool that visibly cannot fit, since wasmtime would abort the process.
    """
    preflight(engine)
    return wasmtime.Engine(build_config(engine))
