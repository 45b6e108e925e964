"""A candidate host configuration (one choice per knob), what it reserves, and the lab flags that run it.

Every knob the advisor searches trades latency for memory; each has wasmtime's default, against which
the advice measures the recommended value.  Pool limits that a guest dictates (``max_memory_size`` and
the others in :class:`~wasmlab.experiments.advisor.needs.ServingNeeds`) are derived, not searched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from wasmlab.config import WASMTIME_DEFAULT_RESERVATION, EngineConfig, GiB, KiB, MiB, PoolConfig
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.host.engine import DEFAULT_GUARD, STACK_SLOT_BYTES, pool_reservation_bytes
from wasmlab.host.pool_sizing import DEFAULT_INSTANCE_SIZE, PER_COMPONENT_TOTALS, instance_size_limit
from wasmlab.workloads.model import WASM_PAGE

# Memory layouts: (memory_reservation, memory_guard_size); None keeps wasmtime's default.  A reservation of
# 4 GiB or more lets wasmtime elide bounds checks on 32-bit memories; "tight" reserves only what serving
# needs, so every access is bounds-checked but a slot costs kilobytes of address space instead of 4 GiB.
LAYOUTS = ("default", "no-guard", "tight")
# wasmtime's defaults for the knobs the advisor changes (PoolingAllocationConfig::default(), Config::new()).
WASMTIME_DEFAULTS: dict[str, Any] = {
    "allocator": "on-demand", "layout": "default", "keep_resident": 0, "table_keep_resident": 0,
    "warm_slots": "default", "decommit_batch": 1, "cow": True, "pre": False, "reuse": 1, "snapshot": False,
}
# Requests per instance the search may try with --allow-reuse (1: a fresh instance per request, wasmtime's hosts' way).
REUSE_CHOICES = (1, 4, 16, 128, 1024)  # past 100, fewer than 1% of requests make an instance: the p99 is a reused one
# wasmtime's PoolingAllocationConfig defaults for limits the guest may need raised.
DEFAULT_MAX_MEMORIES_PER_MODULE = 1
DEFAULT_MAX_TABLES_PER_MODULE = 1
TABLE_ELEMENT_BYTES = 8  # a funcref slot on 64-bit hosts


def round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def layout_sizes(layout: str, needs: ServingNeeds) -> tuple[int | None, int | None]:
    """(memory_reservation, memory_guard_size) of ``layout`` for these guests (None: wasmtime's default)."""
    if layout == "default":
        return None, None
    if layout == "no-guard":
        return WASMTIME_DEFAULT_RESERVATION, 0
    if layout == "tight":
        return round_up(needs.max_memory_size, WASM_PAGE), 0
    raise ValueError(f"layout {layout!r}; allowed: {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class Candidate:
    """One host configuration the advisor may measure.  Pool knobs are normalised away on demand."""

    allocator: str = "pooling"  # pooling or on-demand
    slots: int = 1  # pool slots in all (one engine shared by the workers)
    layout: str = "default"
    keep_resident: int = 0  # linear_memory_keep_resident, bytes
    table_keep_resident: int = 0
    warm_slots: str = "default"  # max_unused_warm_slots: wasmtime's default (100), or "0"
    decommit_batch: int = 1  # decommit_batch_size
    cow: bool = True  # memory_init_cow
    pre: bool = False  # InstancePre per module
    cache_size: int = 1  # compiled modules each worker's cache keeps (LRU)
    reuse: int = 1  # requests one instance serves in a row (+reuseN); only with --allow-reuse
    snapshot: bool = False  # serve from a Wizer snapshot taken after the guests' start-up (+snapshot); guests with an init

    def __post_init__(self) -> None:
        if self.allocator == "on-demand":
            # The pool's knobs mean nothing without a pool: one on-demand candidate per remaining choice.
            for name in ("keep_resident", "table_keep_resident", "warm_slots", "decommit_batch"):
                object.__setattr__(self, name, WASMTIME_DEFAULTS[name])
            object.__setattr__(self, "slots", 0)

    @property
    def pooled(self) -> bool:
        return self.allocator == "pooling"

    @property
    def variant(self) -> str:
        return (("pooled+" if self.pooled else "") + "cached" + ("+pre" if self.pre else "") + ("+snapshot" if self.snapshot else "")
                + (f"+reuse{self.reuse}" if self.reuse > 1 else ""))

    def replace(self, **changes: Any) -> Candidate:
        return dataclasses.replace(self, **changes)

    def pool_knobs(self, needs: ServingNeeds) -> dict[str, int]:
        """The pool's ``--pool`` knobs: the limits serving needs, then every searched knob not at wasmtime's default."""
        knobs: dict[str, int] = {"max_memory_size": round_up(needs.max_memory_size, WASM_PAGE)}
        if needs.table_elements > 0:
            knobs["table_elements"] = needs.table_elements
        core_size = instance_size_limit(needs.max_core_instance_size)
        if core_size is not None:
            knobs["max_core_instance_size"] = core_size
        if needs.max_memories_per_module > DEFAULT_MAX_MEMORIES_PER_MODULE:
            knobs["max_memories_per_module"] = needs.max_memories_per_module
        if needs.max_tables_per_module > DEFAULT_MAX_TABLES_PER_MODULE:
            knobs["max_tables_per_module"] = needs.max_tables_per_module
        if not self.pooled:
            return knobs
        knobs.update(component_knobs(self.slots, needs))
        if self.keep_resident:
            knobs["linear_memory_keep_resident"] = self.keep_resident
        if self.table_keep_resident:
            knobs["table_keep_resident"] = self.table_keep_resident
        if self.warm_slots != "default":
            knobs["max_unused_warm_slots"] = int(self.warm_slots)
        if self.decommit_batch != 1:
            knobs["decommit_batch_size"] = self.decommit_batch
        return knobs

    def engine_knobs(self, needs: ServingNeeds) -> dict[str, Any]:
        """The ``--engine`` knobs: the memory layout and copy-on-write, where not wasmtime's default."""
        reservation, guard = layout_sizes(self.layout, needs)
        knobs: dict[str, Any] = {}
        if reservation is not None:
            knobs["memory_reservation"] = reservation
        if guard is not None:
            knobs["memory_guard_size"] = guard
        if not self.cow:
            knobs["memory_init_cow"] = False
        return knobs

    def engine_config(self, needs: ServingNeeds) -> EngineConfig:
        """The lab's configuration of this candidate (validated), as ``--preset none`` and its flags build it."""
        pool = PoolConfig(slots=max(self.slots, 1), **self.pool_knobs(needs))
        return EngineConfig(allocator=self.allocator, pool=pool, **self.engine_knobs(needs))

    def address_space_estimate(self, needs: ServingNeeds, threads: int) -> int:
        """A lower bound of the address space this candidate reserves while ``threads`` requests run at once."""
        config = self.engine_config(needs)
        if self.pooled:
            return pool_reservation_bytes(config)
        reservation, guard = layout_sizes(self.layout, needs)
        per_instance = max(reservation if reservation is not None else WASMTIME_DEFAULT_RESERVATION, needs.max_memory_size)
        return threads * (per_instance + (guard if guard is not None else DEFAULT_GUARD))

    def flags(self, needs: ServingNeeds, call_path: str, workloads: tuple[str, ...], trace: str) -> list[str]:
        """Arguments ``wasmlab concurrency`` (and, for one workload, ``wasmlab reproduce``) accept for this candidate."""
        out = [arg for w in workloads for arg in ("--workload", w)]
        if len(workloads) > 1:
            out += ["--trace", trace]
        out += ["--preset", "none", "--variants", self.variant, "--call-path", call_path]
        if self.pooled:
            out += ["--slots", str(self.slots)]
        out += [arg for k, v in self.pool_knobs(needs).items() for arg in ("--pool", f"{k}={v}")]
        out += [arg for k, v in self.engine_knobs(needs).items() for arg in ("--engine", f"{k}={str(v).lower()}")]
        out += ["--cache-policy", "lru", "--cache-size", str(self.cache_size)]
        return out

    def label(self, needs: ServingNeeds) -> str:
        """A short description: what differs from wasmtime's defaults."""
        parts = [f"pooling {self.slots} slots" if self.pooled else "on-demand"]
        reservation, guard = layout_sizes(self.layout, needs)
        if reservation is not None:
            parts.append(f"reservation {size(reservation)} + guard {size(guard or 0)}")
        if self.keep_resident:
            parts.append(f"keep-resident {size(self.keep_resident)}")
        if self.table_keep_resident:
            parts.append(f"table keep-resident {size(self.table_keep_resident)}")
        if self.warm_slots != "default":
            parts.append(f"max_unused_warm_slots {self.warm_slots}")
        if self.decommit_batch != 1:
            parts.append(f"decommit batch {self.decommit_batch}")
        if not self.cow:
            parts.append("no copy-on-write")
        if self.pre:
            parts.append("InstancePre")
        if self.reuse > 1:
            parts.append(f"reuse {self.reuse} requests per instance")
        if self.snapshot:
            parts.append("Wizer snapshot")
        parts.append(f"cache {self.cache_size}")
        return ", ".join(parts)


def component_knobs(slots: int, needs: ServingNeeds) -> dict[str, int]:
    """A pool's limits for the components among the guests: what one instance holds, stated (wasmtime's defaults for
    these changed between releases: 20, then unlimited), its component instance size, and
    each total that ``slots`` concurrent instances take, where it is more than ``slots``."""
    if not needs.components:
        return {}
    knobs = {"max_core_instances_per_component": needs.max_core_instances_per_component,
             "max_memories_per_component": needs.max_memories_per_component,
             "max_tables_per_component": needs.max_tables_per_component}
    # Stated too (wasmtime's 1 MiB, or more where the component needs it): a host author sizing for components looks for it.
    knobs["max_component_instance_size"] = instance_size_limit(needs.max_component_instance_size) or DEFAULT_INSTANCE_SIZE
    for per_component, total in PER_COMPONENT_TOTALS.items():
        if knobs[per_component] > 1:
            knobs[total] = slots * knobs[per_component]
    return knobs


def size(n: int) -> str:
    """Bytes for people: ``128 KiB``, ``4 GiB``, ``1.06 GiB``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if n >= unit:
            value = n / unit
            return f"{value:.0f} {name}" if value == int(value) else f"{value:.3g} {name}"
    return f"{n} B"


@dataclass(frozen=True)
class SearchSpace:
    """The choices of every knob for these guests and this concurrency (values the search may pick)."""

    slots: tuple[int, ...]
    layouts: tuple[str, ...]
    keep_resident: tuple[int, ...]
    table_keep_resident: tuple[int, ...]
    decommit_batch: tuple[str, ...]
    cache_sizes: tuple[int, ...]
    pre: tuple[bool, ...] = (False, True)  # InstancePre: core modules only (the component C API has none)
    reuse: tuple[int, ...] = (1,)  # requests per instance: more than 1 only when the user allows reuse
    snapshot: tuple[bool, ...] = (False,)  # a Wizer snapshot: tried when every guest names its start-up (init)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def search_space(needs: ServingNeeds, threads: int, modules: int, allow_reuse: bool = False, snapshots: bool = False) -> SearchSpace:
    """Slots from the concurrency up, keep-resident sizes up to the whole memory serving needs (pages wasmtime
    would otherwise ``madvise`` away on every request), a table's worth of table keep-resident if there is a table,
    and, for several modules, cache capacities from all of them down to one; ``snapshots``: every guest has a start-up
    (``init``), so serving from its Wizer snapshot is a choice too."""
    memory = round_up(needs.max_memory_size, WASM_PAGE)
    keep = sorted({0, *(k for k in (64 * KiB, memory // 4, memory // 2, memory) if k and k % (4 * KiB) == 0 and k <= memory)})
    tables = (0, round_up(needs.table_elements * TABLE_ELEMENT_BYTES, 4 * KiB)) if needs.table_elements else (0,)
    caches = sorted({modules, max(1, modules // 2), 1}, reverse=True)
    return SearchSpace(slots=tuple(sorted({threads, 2 * threads, 4 * threads})), layouts=LAYOUTS, keep_resident=tuple(keep[:5]),
                       table_keep_resident=tables, decommit_batch=("1", "slots"), cache_sizes=tuple(caches),
                       pre=(False,) if needs.components else (False, True),
                       reuse=REUSE_CHOICES if allow_reuse else (1,), snapshot=(False, True) if snapshots else (False,))


def smallest_pool_slot(needs: ServingNeeds) -> int:
    """The address space one concurrent request takes from a pool at its tightest: a memory of what serving needs (one
    for each memory a component instance holds), no guard, and one stack slot."""
    return max(1, needs.max_memories_per_component) * round_up(needs.max_memory_size, WASM_PAGE) + STACK_SLOT_BYTES
