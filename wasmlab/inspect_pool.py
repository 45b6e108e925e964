"""``wasmlab inspect``: what a module needs from a pooling allocator, found by asking wasmtime.

Each requirement is the smallest value of a pool knob that wasmtime accepts for the module,
with every other knob generous.  Deserializing a compiled module into a pooling engine runs
wasmtime's own check of the module against the pool's limits (a few ms, no recompiling), so
the search is exact.  The result is then confirmed: a pool sized exactly to every requirement
instantiates the module, and one step below any requirement is refused.

Instantiation is not serving: a guest may grow its memory while it runs.  For a core module or
WASI command expected to succeed, the memory one request reaches is found too, by running real
requests under a store memory limit and bisecting the smallest limit that still serves one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import wasmtime
import wasmtime.component

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
_LAYOUT = {"memory_reservation": 4096 * MiB, "memory_guard_size": WASM_PAGE}


def _engine(pool: dict[str, int], slots: int = 1) -> wasmtime.Engine:
    return build_engine(EngineConfig(allocator="pooling", pool=PoolConfig(slots=slots, **pool), **_LAYOUT))


def _knobs(component: bool) -> dict[str, tuple[int, int, int]]:
    return {**KNOBS, **COMPONENT_KNOBS} if component else KNOBS


def _generous(component: bool = False) -> dict[str, int]:
    generous = {knob: value for knob, (value, _, _) in _knobs(component).items()}
    if component:
        # one slot per core instance, memory and table of the component
        generous.update(total_core_instances=256, total_memories=16, total_tables=16)
    return generous


def _accepts(serialized: bytes, pool: dict[str, int], component: bool = False) -> bool:
    try:
        if component:
            wasmtime.component.Component.deserialize(_engine(pool), serialized)
        else:
            wasmtime.Module.deserialize(_engine(pool), serialized)
        return True
    except wasmtime.WasmtimeError:
        return False


def _serialized(workload: Workload) -> bytes:
    engine = _engine(_generous(workload.component))
    if workload.component:
        return bytes(wasmtime.component.Component(engine, workload.wasm).serialize())
    return bytes(wasmtime.Module(engine, workload.wasm).serialize())


_NEEDS: dict[str, dict[str, int]] = {}


def requirements(workload: Workload, serialized: bytes | None = None) -> dict[str, int]:
    """The smallest value of every pool knob wasmtime accepts for ``workload`` (cached per module hash);
    ``serialized`` is its compiled form when the caller has it already (compiling middleware-py takes ~3 s)."""
    if workload.sha256 not in _NEEDS:
        component = workload.component
        serialized = serialized if serialized is not None else _serialized(workload)
        found: dict[str, int] = {}
        for knob, (_, step, upper) in _knobs(component).items():
            found[knob] = _smallest(lambda v, knob=knob: _accepts(serialized, {**_generous(component), knob: v}, component),
                                    step, upper)
        _NEEDS[workload.sha256] = found
    return dict(_NEEDS[workload.sha256])


def size_pool_for_components(pool: PoolConfig, workloads: "list[Workload]") -> PoolConfig:
    """``pool`` with room for ``slots`` concurrent instances of each component in ``workloads``:
    per-component limits raised to what the largest needs, and each total that the user left to
    ``slots`` multiplied by the core instances, memories and tables one component instance holds."""
    components = [w for w in workloads if w.component]
    if not components:
        return pool
    needs = [requirements(w) for w in components]
    changes: dict[str, int] = {}
    for knob in (*COMPONENT_KNOBS, "max_memory_size", "table_elements", "max_core_instance_size",
                 "max_memories_per_module", "max_tables_per_module"):
        needed = max(n[knob] for n in needs)
        current = getattr(pool, knob)
        if current is None or current < needed:
            changes[knob] = max(needed, 1)
    for per_component, total in PER_COMPONENT_TOTALS.items():
        if getattr(pool, total) is None:
            changes[total] = pool.slots * max(1, max(n[per_component] for n in needs))
    if pool.total_component_instances is None:
        changes["total_component_instances"] = pool.slots
    return pool.replace(**changes)


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
    # Components: how many instances of it each preset's pool totals hold at once.
    concurrent: dict[str, int] | None = None
    # The linear memory one request grows to (None: not measured, e.g. for components).
    request_memory: int | None = None

    def render(self) -> str:
        w = self.workload
        imports = ("wasi preview 2" if w.component else "wasi_snapshot_preview1") if w.wasi else "none"
        lines = [f"{w.name}: {w.kind}, {w.size_bytes} B, entry {w.entry}, imports {imports}",
                 "Needs from a pooling allocator (confirmed: a pool sized exactly to these instantiates it; one step less is refused):"
                 if self.confirmed else "Needs from a pooling allocator (NOT confirmed by instantiation):"]
        for knob, value in self.requirements.items():
            shown = f"{value} B ({value // WASM_PAGE} pages)" if knob == "max_memory_size" else f"{value}"
            lines.append(f"  {knob:<32} >= {shown}")
        if self.request_memory is not None:
            lines.append(f"  serving one request grows its memory to {self.request_memory} B ({self.request_memory // WASM_PAGE} pages):"
                         f" max_memory_size must be at least that (found by running requests under a store memory limit)")
        if w.component:
            per = ", ".join(f"{self.requirements[k]} {t.removeprefix('total_').replace('_', ' ')}"
                            for k, t in PER_COMPONENT_TOTALS.items())
            lines.append(f"  per concurrent request (one component instance): {per} in the pool's totals;"
                         f" wasmlab sizes its pools so (slots x these)")
        lines.append("Presets:")
        for name, raises in self.presets.items():
            if not raises:
                held = f"; its totals hold {self.concurrent[name]} instance(s) at once" if self.concurrent else ""
                lines.append(f"  {name}: fits{held}")
            else:
                lines.append(f"  {name}: does not fit; raise " + ", ".join(f"--pool {k}={v}" for k, v in raises))
        return "\n".join(lines)


def inspect(workload: Workload) -> Inspection:
    """Find, confirm and compare with the presets what ``workload`` needs from a pool."""
    component = workload.component
    serialized = _serialized(workload)
    needs = requirements(workload, serialized)
    knobs = _knobs(component)
    # Confirm: exactly these per-module limits instantiate it, and one step below any of them is
    # refused.  The pool gets 2 slots: nextpnr-ice40 with WASI needs a second memory slot in a
    # 1-slot pool though wasmtime accepts it with one memory per module (seen, not yet explained).
    exact = dict(needs)
    if component:
        exact.update({total: 2 * max(1, needs[per]) for per, total in PER_COMPONENT_TOTALS.items()})
    engine = _engine(exact, slots=2)
    store = wasmtime.Store(engine)
    if workload.wasi:
        store.set_wasi(wasmtime.WasiConfig())
    if component:
        linker = wasmtime.component.Linker(engine)
        if workload.wasi:
            linker.add_wasip2()
        linker.instantiate(store, wasmtime.component.Component.deserialize(engine, serialized))
    else:
        core_linker = wasmtime.Linker(engine)
        if workload.wasi:
            core_linker.define_wasi()
        if workload.host_imports:
            from wasmlab.hostfuncs import define as define_host_functions

            for name in workload.host_imports.split(","):
                define_host_functions(core_linker, name)
        core_linker.instantiate(store, wasmtime.Module.deserialize(engine, serialized))
    store.close()
    confirmed = all(
        not _accepts(serialized, {**exact, knob: needs[knob] - knobs[knob][1]}, component)
        for knob in needs if needs[knob] > 0
    )
    requirements_ = needs
    presets: dict[str, list[tuple[str, int]]] = {}
    for name, preset in PRESETS.items():
        raises = []
        for knob, needed in requirements_.items():
            value = getattr(preset.pool, knob)
            limits = {**_generous(component), **({knob: value} if value is not None else {})}
            if value is None:
                # wasmtime's default for this knob: ask wasmtime rather than guess the number.
                limits.pop(knob)
            if not _accepts(serialized, limits, component):
                raises.append((knob, needed))
        presets[name] = raises
    request_memory = memory_a_request_reaches(workload, serialized, needs["max_memory_size"]) if not component else None
    if request_memory is not None:
        for name, preset in PRESETS.items():
            limit = preset.pool.max_memory_size
            if limit is not None and limit < request_memory:
                # Raise it to what serving needs, not only to what instantiation needs.
                presets[name] = [(k, v) for k, v in presets[name] if k != "max_memory_size"] + [("max_memory_size", request_memory)]
    concurrent = {name: concurrent_instances(preset.pool, requirements_) for name, preset in PRESETS.items()} if component else None
    return Inspection(workload, requirements_, confirmed, presets, concurrent, request_memory)


def memory_a_request_reaches(workload: Workload, serialized: bytes, initial: int, upper: int = 4096 * MiB) -> int | None:
    """The linear memory one request of ``workload`` grows to, in bytes: the smallest store memory
    limit (a multiple of a page, at least ``initial``) under which a request still succeeds.

    ``None`` for a guest that is not expected to succeed, or that fails even without a limit.
    Runs about 16 real requests on the api path (the store limiter lives there).
    """
    import dataclasses

    from wasmlab.config import CacheConfig, Limits
    from wasmlab.errors import WasmlabError
    from wasmlab.measure import REQUEST_FAILURES
    from wasmlab.runtime import Compiled, build_runtimes

    if workload.component or workload.expected_outcome != "ok":
        return None
    runtime = build_runtimes(["cached"], EngineConfig(**_LAYOUT), CacheConfig(), [workload], call_path="api",
                             limits=Limits(memory_bytes=upper))["cached"]
    try:
        # Compiled already for the probes, with this memory layout: no second compilation.
        module = wasmtime.Module.deserialize(runtime.engine, serialized)
        runtime.cache.get(workload.sha256, lambda _: Compiled(module, None), workload)

        def serves(limit: int) -> bool:
            runtime.limits = dataclasses.replace(runtime.limits, memory_bytes=limit)
            try:
                runtime.handle(0)
                return True
            except (*REQUEST_FAILURES, WasmlabError):
                return False

        try:
            # _smallest serves one request without a limit first, and refuses if even that fails.
            return initial + _smallest(lambda extra: serves(initial + extra), WASM_PAGE, upper - initial)
        except ConfigError:
            return None
    finally:
        runtime.close()


def concurrent_instances(pool: PoolConfig, needs: dict[str, int]) -> int:
    """How many instances of a component with ``needs`` a pool's totals hold at once, as configured
    (without wasmlab's sizing): each takes its core instances, memories and tables from the totals."""
    held = [pool.resolved("total_component_instances")]
    for per_component, total in PER_COMPONENT_TOTALS.items():
        if needs[per_component]:
            held.append(pool.resolved(total) // needs[per_component])
    return min(held)
