"""``wasmlab inspect``: what a module needs from a pooling allocator, found by asking wasmtime.

Each requirement is the smallest value of a pool knob that wasmtime accepts for the module,
with every other knob generous.  Deserializing a compiled module into a pooling engine runs
wasmtime's own check of the module against the pool's limits (a few ms, no recompiling), so
the search is exact.  The result is then confirmed: a pool sized exactly to every requirement
instantiates the module, and one step below any requirement is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import wasmtime

from wasmlab.config import MiB, PRESETS, EngineConfig, PoolConfig
from wasmlab.engine import build_engine
from wasmlab.errors import ConfigError
from wasmlab.workloads import WASM_PAGE, Workload
# Knob -> (generous value, step, upper bound of the search).  Probe engines have one slot, so
# each reserves only one memory's address space.
KNOBS: dict[str, tuple[int, int, int]] = {
    "max_memory_size": (1024 * MiB, WASM_PAGE, 1024 * MiB),
    "table_elements": (1 << 22, 1, 1 << 22),
    "max_core_instance_size": (64 * MiB, 1, 64 * MiB),
    "max_memories_per_module": (16, 1, 16),
    "max_tables_per_module": (16, 1, 16),
}


def _engine(pool: dict[str, int], slots: int = 1) -> wasmtime.Engine:
    return build_engine(EngineConfig(
        allocator="pooling", pool=PoolConfig(slots=slots, **pool), memory_reservation=4096 * MiB, memory_guard_size=WASM_PAGE,
    ))


def _generous() -> dict[str, int]:
    return {knob: generous for knob, (generous, _, _) in KNOBS.items()}


def _accepts(serialized: bytes, pool: dict[str, int]) -> bool:
    try:
        wasmtime.Module.deserialize(_engine(pool), serialized)
        return True
    except wasmtime.WasmtimeError:
        return False


def _smallest(accepts: Callable[[int], bool], step: int, upper: int) -> int:
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


@dataclass
class Inspection:
    workload: Workload
    requirements: dict[str, int]
    confirmed: bool
    presets: dict[str, list[tuple[str, int]]]

    def render(self) -> str:
        w = self.workload
        lines = [f"{w.name}: {w.kind}, {w.size_bytes} B, entry {w.entry}, imports {'wasi_snapshot_preview1' if w.wasi else 'none'}",
                 "Needs from a pooling allocator (confirmed: a pool sized exactly to these instantiates it; one step less is refused):"
                 if self.confirmed else "Needs from a pooling allocator (NOT confirmed by instantiation):"]
        for knob, value in self.requirements.items():
            shown = f"{value} B ({value // WASM_PAGE} pages)" if knob == "max_memory_size" else f"{value}"
            lines.append(f"  {knob:<26} >= {shown}")
        lines.append("Presets:")
        for name, raises in self.presets.items():
            if not raises:
                lines.append(f"  {name}: fits")
            else:
                lines.append(f"  {name}: does not fit; raise " + ", ".join(f"--pool {k}={v}" for k, v in raises))
        return "\n".join(lines)


def inspect(workload: Workload) -> Inspection:
    """Find, confirm and compare with the presets what ``workload`` needs from a pool."""
    if workload.wasm[4:8] != b"\x01\x00\x00\x00":
        raise ConfigError(f"{workload.name}: components are not inspected yet; allowed: a core module")
    serialized = bytes(wasmtime.Module(_engine(_generous()), workload.wasm).serialize())
    requirements: dict[str, int] = {}
    for knob, (_, step, upper) in KNOBS.items():
        requirements[knob] = _smallest(lambda v, knob=knob: _accepts(serialized, {**_generous(), knob: v}), step, upper)
    # Confirm: exactly these per-module limits instantiate it, and one step below any of them is
    # refused.  The pool gets 2 slots: nextpnr-ice40 with WASI needs a second memory slot in a
    # 1-slot pool though wasmtime accepts it with one memory per module (seen, not yet explained).
    engine = _engine(requirements, slots=2)
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    if workload.wasi:
        linker.define_wasi()
        store.set_wasi(wasmtime.WasiConfig())
    linker.instantiate(store, wasmtime.Module.deserialize(engine, serialized))
    store.close()
    confirmed = all(
        not _accepts(serialized, {**requirements, knob: requirements[knob] - KNOBS[knob][1]})
        for knob in requirements if requirements[knob] > 0
    )
    presets: dict[str, list[tuple[str, int]]] = {}
    for name, preset in PRESETS.items():
        raises = []
        for knob, needed in requirements.items():
            value = getattr(preset.pool, knob)
            limits = {**_generous(), **({knob: value} if value is not None else {})}
            if value is None:
                # wasmtime's default for this knob: ask wasmtime rather than guess the number.
                limits.pop(knob)
            if not _accepts(serialized, limits):
                raises.append((knob, needed))
        presets[name] = raises
    return Inspection(workload, requirements, confirmed, presets)
