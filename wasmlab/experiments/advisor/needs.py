"""What serving the guests needs from a pool: ``inspect``'s requirements, with the memory a request grows to.

Instantiation is not serving: a guest that grows its memory while it runs needs ``max_memory_size`` of what
it grows to, found by running real requests under a store memory limit (:func:`~wasmlab.experiments.pool_fit.inspect`).
A component adds what one instance of it holds, transitively: core instances, memories and tables (each concurrent
request takes that many from the pool's totals) and the size of its component instance; all asked of wasmtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.experiments.pool_fit import inspect
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import WASM_PAGE


@dataclass(frozen=True)
class ServingNeeds:
    """The pool limits every guest of a host needs (the largest over the guests), and where each came from."""

    workloads: tuple[str, ...]
    max_memory_size: int  # what serving needs: the largest memory a request grows to
    instantiation_memory: int  # what instantiation alone needs (for the explanation)
    table_elements: int
    max_core_instance_size: int
    max_memories_per_module: int
    max_tables_per_module: int
    # Guests whose serving memory could not be measured (not expected to succeed): their instantiation size is used.
    unmeasured: tuple[str, ...] = ()
    # The components among the guests, and the most any one instance of them holds (0 without components).
    components: tuple[str, ...] = ()
    max_core_instances_per_component: int = 0
    max_memories_per_component: int = 0
    max_tables_per_component: int = 0
    max_component_instance_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def serving_needs(specs: Sequence[str]) -> ServingNeeds:
    """Inspect every workload in ``specs`` (core modules, WASI commands, components) and combine what they need."""
    if not specs:
        raise ConfigError("no workload given; allowed: one or more --workload specs")
    found = [inspect(load_workload(spec)) for spec in specs]
    components = [i for i in found if i.workload.component]

    def most(knob: str) -> int:
        return max((i.requirements[knob] for i in components), default=0)
    serving = [i.request_memory if i.request_memory is not None else i.requirements["max_memory_size"] for i in found]
    return ServingNeeds(
        workloads=tuple(i.workload.name for i in found),
        max_memory_size=max(WASM_PAGE, *serving),
        instantiation_memory=max(i.requirements["max_memory_size"] for i in found),
        table_elements=max(i.requirements["table_elements"] for i in found),
        max_core_instance_size=max(i.requirements["max_core_instance_size"] for i in found),
        max_memories_per_module=max(i.requirements["max_memories_per_module"] for i in found),
        max_tables_per_module=max(i.requirements["max_tables_per_module"] for i in found),
        unmeasured=tuple(i.workload.name for i in found if i.request_memory is None),
        components=tuple(i.workload.name for i in components),
        max_core_instances_per_component=most("max_core_instances_per_component"),
        max_memories_per_component=most("max_memories_per_component"),
        max_tables_per_component=most("max_tables_per_component"),
        max_component_instance_size=most("max_component_instance_size"),
    )
