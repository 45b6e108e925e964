"""What the runtime axis's other runtimes (V8, Extism) share: the kinds of guest they serve, the parts the harness reads
of them, and the one-line refusal of per-request limits, which are wasmtime's store settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wasmlab.config import Limits
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.reuse import ReuseLedger
from wasmlab.workloads.model import Workload

# The value types an entry served by another runtime may take and return.
KINDS = ("i32", "i64")
SERVED = "core modules without imports whose entry takes and returns i32/i64"


def unserved_kind(workload: Workload) -> str | None:
    """What ``workload`` is when another runtime cannot serve it (``a component``, ...), or ``None`` when it can: a core
    module without imports whose entry takes i32/i64 and returns at most one i32/i64, ending ok or in a trap."""
    kind = ("a component" if workload.component else "a WASI guest" if workload.wasi else
            "a recipe" if workload.recipe is not None else "library-style" if workload.driver else
            "a module importing host functions" if workload.linked else
            f"a guest expected to end in {workload.expected_outcome!r} (what needs wasmtime's limits)"
            if workload.expected_outcome not in ("ok", "trap") else None)
    if kind is None and (any(k not in KINDS for k in (*workload.params, *workload.results)) or len(workload.results) > 1):
        kind = f"an export {workload.entry!r} taking {list(workload.params)} and returning {list(workload.results)}"
    return kind


def refuse_limits(variant: str, runtime: str, limits: Limits) -> None:
    """Per-request limits (fuel, deadline, memory, stack) are set on wasmtime stores the lab makes: one line otherwise."""
    if limits != Limits():
        raise ConfigError(f"variant {variant!r}: per-request limits (fuel, deadline, memory, stack) are wasmtime's; allowed on "
                          f"{runtime}: no limits")


@dataclass
class HostedParts:
    """What the harness reads of a runtime's request parts: the reuse ledger and the (absent) output checks."""

    ledger: ReuseLedger | None = None
    output_checks: int = 0
    output_check_ns: int = 0
    step_stamps: dict[int, list[int]] = field(default_factory=dict)
    cleanup: list[Any] = field(default_factory=list)


class HostedRuntime:
    """What the harness reads of a runtime and another runtime has none of: phased requests, snapshot columns, pool
    waits."""

    handle_phased = None
    block_phased = None
    snapshot_columns: dict[str, object] = {}
    pool_waits = pool_wait_ns = 0


def expected_of(workload: Workload) -> Any:
    """The value each request of ``workload`` must return, or ``None`` when it is checked another way (or not at all)."""
    return workload.expected if workload.check == "expected" and workload.results else None
