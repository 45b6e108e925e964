"""``EngineConfig`` -> ``wasmtime.Engine``: the one place that configures the pooling allocator.

wasmtime-py 50 exposes the pooling allocator only through its raw C functions (declared in
:mod:`wasmlab.capi`); :class:`PoolingAllocation` is a thin typed wrapper over them, in the manner of
wasmtime-py's own ``Managed`` objects.  :func:`preflight` refuses a pool that cannot be reserved,
since wasmtime aborts the whole process when the reservation fails.
"""

from __future__ import annotations

import resource
from typing import Any

import wasmtime

from wasmlab import capi
from wasmlab.config import USER_ADDRESS_SPACE, WASMTIME_DEFAULT_RESERVATION, EngineConfig, GiB, MiB, PoolConfig
from wasmlab.errors import ConfigError


class PoolingAllocation:
    """A ``wasmtime_pooling_allocation_config_t`` built from a ``PoolConfig``.

    ``apply`` installs it on a ``wasmtime.Config``; the C API clones the pool
    configuration there, so this object can be closed right after.
    """

    def __init__(self, pool: PoolConfig) -> None:
        self._ptr: Any = capi.pooling_config_new()
        for name, value in pool.settings().items():
            capi.POOLING_SETTERS[name](self._ptr, value)

    def apply(self, config: wasmtime.Config) -> None:
        """Make ``config`` use the pooling allocator with these limits."""
        if self._ptr is None:
            raise ValueError("PoolingAllocation already closed")
        capi.pooling_strategy_set(config.ptr(), self._ptr)

    def close(self) -> None:
        if self._ptr is not None:
            capi.pooling_config_delete(self._ptr)
            self._ptr = None

    def __enter__(self) -> PoolingAllocation:
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
    capi.config_strategy_set(config.ptr(), _STRATEGIES[engine.compiler])
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


def address_space_left() -> int:
    """Bytes of address space this process may still map: under ``RLIMIT_AS``, or in the user address space."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        # No limit set: the user address space itself (2**47 bytes on x86-64 and aarch64 Linux) still bounds a pool.
        soft = USER_ADDRESS_SPACE
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
    limited = resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY
    limit = "RLIMIT_AS" if limited else "the 47-bit user address space"
    need = pool_reservation_bytes(engine)
    if need > left:
        raise ConfigError(
            f"a pool of {engine.pool.resolved('total_memories')} memories reserves at least {need / GiB:.1f} GiB of address space, "
            f"but this process may map only {max(left, 0) / GiB:.1f} GiB more ({limit}); allowed: fewer slots, or a smaller "
            f"reservation (e.g. --engine memory_reservation=1MiB --engine memory_guard_size=64KiB --pool max_memory_size=1MiB)"
        )


def build_engine(engine: EngineConfig) -> wasmtime.Engine:
    """A new ``wasmtime.Engine`` for ``engine``.

    Creating a pooling engine reserves every slot's address space up front; ``preflight``
    refuses a pool that visibly cannot fit, since wasmtime would abort the process.
    """
    preflight(engine)
    return wasmtime.Engine(build_config(engine))


class EnginePool:
    """Builds each distinct ``EngineConfig``'s engine once, so variants that share a configuration share an engine."""

    def __init__(self) -> None:
        self._engines: dict[EngineConfig, wasmtime.Engine] = {}

    def get(self, config: EngineConfig) -> wasmtime.Engine:
        if config not in self._engines:
            self._engines[config] = build_engine(config)
        return self._engines[config]
