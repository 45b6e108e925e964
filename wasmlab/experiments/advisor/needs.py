"""What serving the guests needs from a pool: ``inspect``'s requirements, with the memory a request grows to.

Instantiation is not serving: a guest that grows its memory while it runs needs ``max_memory_size`` of what
it grows to, found by running real requests under a store memory limit (:func:`~wasmlab.experiments.pool_fit.inspect`).
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def serving_needs(specs: Sequence[str]) -> ServingNeeds:
    """Inspect every workload in ``specs`` and combine what they need (components are refused: see below)."""
    if not specs:
        raise ConfigError("no workload given; allowed: one or more --workload specs")
    found = []
    for spec in specs:
        workload = load_workload(spec)
        if workload.component:
            # concurrency() sizes no component pools yet, and the native path serves core modules only.
            raise ConfigError(f"workload {spec!r} is a component; allowed for advise: core modules and WASI commands")
        found.append(inspect(workload))
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
    )
