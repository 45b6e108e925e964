"""What a module needs from a pooling allocator, found by asking wasmtime, and pools sized for components.

Each requirement is the smallest value of a pool knob that wasmtime accepts for the module,
with every other knob generous.  Deserializing a compiled module into a pooling engine runs
wasmtime's own check of the module against the pool's limits (a few ms, no recompiling), so
the search is exact.  ``wasmlab inspect`` (:mod:`wasmlab.experiments.pool_fit`) confirms the result
by instantiation and measures what serving needs beyond it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import wasmtime
import wasmtime.component

from wasmlab.config import EngineConfig, MiB, PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.host.engine import build_engine
from wasmlab.workloads.model import WASM_PAGE, Workload

# Knob -> (generous value, step, upper bound of the search).  Probe engines have one slot, so
# each reserves only one memory's address space.
KNOBS: dict[str, tuple[int, int, int]] = {
    "max_memory_size": (1024 * MiB, WASM_PAGE, 1024 * MiB),
    "table_elements": (1 << 22, 1, 1 << 22),
    "max_core_instance_size": (64 * MiB, 1, 64 * MiB),
    "max_memories_per_module": (16, 1, 16),
    "max_tables_per_module": (16, 1, 16),
}
# What a component adds: its core instances, memories and tables (all of them, transitively)
# and the size of its component instance.  A pool serving N concurrent requests of it needs
# N times the first three in total_core_instances, total_memories and total_tables.
COMPONENT_KNOBS: dict[str, tuple[int, int, int]] = {
    "max_core_instances_per_component": (256, 1, 256),
    "max_memories_per_component": (16, 1, 16),
    "max_tables_per_component": (16, 1, 16),
    "max_component_instance_size": (64 * MiB, 1, 64 * MiB),
}
# The pool totals each per-component count multiplies into.
PER_COMPONENT_TOTALS = {"max_core_instances_per_component": "total_core_instances",
                        "max_memories_per_component": "total_memories",
                        "max_tables_per_component": "total_tables"}


# The memory layout of every engine here: one compiled module deserializes into all of them.
PROBE_LAYOUT = {"memory_reservation": 4096 * MiB, "memory_guard_size": WASM_PAGE}


def probe_config(pool: dict[str, int], slots: int = 1) -> EngineConfig:
    """A pooling engine configuration of ``slots`` slots with the probes' memory layout."""
    return EngineConfig(allocator="pooling", pool=PoolConfig(slots=slots, **pool), memory_reservation=PROBE_LAYOUT["memory_reservation"],
                        memory_guard_size=PROBE_LAYOUT["memory_guard_size"])


def probe_engine(pool: dict[str, int], slots: int = 1) -> wasmtime.Engine:
    return build_engine(probe_config(pool, slots))


def knobs_for(component: bool) -> dict[str, tuple[int, int, int]]:
    return {**KNOBS, **COMPONENT_KNOBS} if component else KNOBS


def generous(component: bool = False) -> dict[str, int]:
    generous = {knob: value for knob, (value, _, _) in knobs_for(component).items()}
    if component:
        # one slot per core instance, memory and table of the component
        generous.update(total_core_instances=256, total_memories=16, total_tables=16)
    return generous


def accepts(serialized: bytes, pool: dict[str, int], component: bool = False) -> bool:
    try:
        if component:
            wasmtime.component.Component.deserialize(probe_engine(pool), serialized)
        else:
            wasmtime.Module.deserialize(probe_engine(pool), serialized)
        return True
    except wasmtime.WasmtimeError:
        return False


def serialized_for_probes(workload: Workload) -> bytes:
    engine = probe_engine(generous(workload.component))
    if workload.component:
        return bytes(wasmtime.component.Component(engine, workload.wasm).serialize())
    return bytes(wasmtime.Module(engine, workload.wasm).serialize())


_NEEDS: dict[str, dict[str, int]] = {}


def requirements(workload: Workload, serialized: bytes | None = None) -> dict[str, int]:
    """The smallest value of every pool knob wasmtime accepts for ``workload`` (cached per module hash);
    ``serialized`` is its compiled form when the caller has it already (compiling middleware-py takes ~3 s)."""
    if workload.sha256 not in _NEEDS:
        component = workload.component
        serialized = serialized if serialized is not None else serialized_for_probes(workload)
        found: dict[str, int] = {}
        compiled: bytes = serialized

        def accepted(knob: str) -> Callable[[int], bool]:
            return lambda value: accepts(compiled, {**generous(component), knob: value}, component)
        for knob, (_, step, upper) in knobs_for(component).items():
            found[knob] = smallest(accepted(knob), step, upper)
        _NEEDS[workload.sha256] = found
    return dict(_NEEDS[workload.sha256])


# wasmtime's default for both instance sizes (PoolingAllocationConfig, 1 MiB).
DEFAULT_INSTANCE_SIZE = 1 * MiB
# An instance's size depends on engine settings the probes hold fixed (copy-on-write off took the middleware's core
# instance from 433 to 492 bytes): a size limit the lab sets gets this factor of headroom over the probed size.
INSTANCE_SIZE_HEADROOM = 2
SIZE_KNOBS = ("max_core_instance_size", "max_component_instance_size")


def instance_size_limit(needed: int) -> int | None:
    """The limit a pool gets for instances of ``needed`` bytes (the probed size): ``None`` (wasmtime's 1 MiB) when that
    holds it with the headroom, else the headroom over it in whole pages of 4 KiB."""
    wanted = needed * INSTANCE_SIZE_HEADROOM
    return None if wanted <= DEFAULT_INSTANCE_SIZE else -(-wanted // 4096) * 4096


# The knobs a component's own needs set, besides COMPONENT_KNOBS: those of the core modules inside it.
CORE_KNOBS_OF_COMPONENTS = ("max_memory_size", "table_elements", "max_core_instance_size", "max_memories_per_module",
                            "max_tables_per_module")


def shortfalls(pool: PoolConfig, needs: dict[str, int]) -> list[tuple[str, int, int]]:
    """(knob, configured, needed) for every knob set in ``pool`` below what a component with ``needs`` needs: a
    per-component or per-module limit wasmtime would refuse it by, or a total that cannot hold one instance of it."""
    short = []
    for knob in (*COMPONENT_KNOBS, *CORE_KNOBS_OF_COMPONENTS):
        value = getattr(pool, knob)
        if value is not None and value < needs[knob]:
            short.append((knob, value, needs[knob]))
    for per_component, total in PER_COMPONENT_TOTALS.items():
        value = getattr(pool, total)
        if value is not None and value < needs[per_component]:
            short.append((total, value, needs[per_component]))
    if pool.total_component_instances == 0:
        short.append(("total_component_instances", 0, 1))
    return short


def check_component_fits(pool: PoolConfig, workload: Workload, needs: dict[str, int]) -> None:
    """One line naming the first knob of ``pool`` that cannot serve ``workload`` and the value it needs, instead of
    wasmtime's error at compilation (on every call path) or a pool exhausted on every request (a total too small)."""
    short = shortfalls(pool, needs)
    if short:
        knob, value, needed = short[0]
        raise ConfigError(f"pool.{knob} = {value} is too small for component {workload.name!r}, which needs {needed}; "
                          f"allowed: --pool {knob}={needed} or more (or leave it unset: wasmlab sizes it for the component)")


def size_pool_for_components(pool: PoolConfig, workloads: list[Workload]) -> PoolConfig:
    """``pool`` with room for ``slots`` concurrent instances of each component in ``workloads``: per-component and
    per-module limits left unset (but the memory size) raised to what the largest needs (sizes with headroom), and each total left to ``slots`` multiplied by the
    core instances, memories and tables one component instance holds.  A limit the user set too small is refused
    (:func:`check_component_fits`), not raised behind their back."""
    components = [w for w in workloads if w.component]
    if not components:
        return pool
    needs = [requirements(w) for w in components]
    for workload, need in zip(components, needs):
        check_component_fits(pool, workload, need)
    changes: dict[str, int] = {}
    # max_memory_size stays wasmtime's (4 GiB) when unset: instantiation's size would trap every request whose memory
    # grows (the middleware with a 64 KiB body grows from 64 to 128 KiB).  Counts are exact; sizes get headroom.
    for knob in (*COMPONENT_KNOBS, *CORE_KNOBS_OF_COMPONENTS):
        if getattr(pool, knob) is not None or knob == "max_memory_size":
            continue
        needed = max(1, *(n[knob] for n in needs))
        limit = instance_size_limit(needed) if knob in SIZE_KNOBS else needed
        if limit is not None:
            changes[knob] = limit
    for per_component, total in PER_COMPONENT_TOTALS.items():
        if getattr(pool, total) is None:
            changes[total] = pool.slots * max(1, *(n[per_component] for n in needs))
    if pool.total_component_instances is None:
        changes["total_component_instances"] = pool.slots
    return pool.replace(**changes)


def sized_for(config: EngineConfig, workloads: Sequence[Workload]) -> EngineConfig:
    """``config`` with its pool sized for the components among ``workloads`` (:func:`size_pool_for_components`): what
    every engine that serves them gets, whichever command or call path builds it."""
    if not config.pooled or not any(w.component for w in workloads):
        return config
    return config.replace(pool=size_pool_for_components(config.pool, list(workloads)))


def smallest(accepts: Callable[[int], bool], step: int, upper: int) -> int:
    """The smallest multiple of ``step`` in [0, upper] that ``accepts`` (which is monotonic)."""
    if not accepts(upper):
        raise ConfigError(f"the module needs more than {upper} even with every other limit generous")
    low, high = -1, upper // step  # accepts(high * step) holds; low is below every accepted value
    while high - low > 1:
        middle = (low + high) // 2
        if accepts(middle * step):
            high = middle
        else:
            low = middle
    return high * step


def concurrent_instances(pool: PoolConfig, needs: dict[str, int]) -> int:
    """How many instances of a component with ``needs`` a pool's totals hold at once, as configured
    (without wasmlab's sizing): each takes its core instances, memories and tables from the totals."""
    held = [pool.resolved("total_component_instances")]
    for per_component, total in PER_COMPONENT_TOTALS.items():
        if needs[per_component]:
            held.append(pool.resolved(total) // needs[per_component])
    return min(held)
