"""``wasmlab inspect``: what a module needs from a pool, confirmed by instantiation, and what serving needs.

The requirements come from :func:`wasmlab.host.pool_sizing.requirements` (wasmtime's own check of a
compiled module against a pool's limits).  They are then confirmed: a pool sized exactly to every
requirement instantiates the module, and one step below any requirement is refused.

Instantiation is not serving: a guest may grow its memory while it runs.  For a guest (core module,
WASI command or component) expected to succeed, the memory one request reaches is found too, by running
real requests under a store memory limit and bisecting the smallest limit that still serves one.  A
component's imports and function exports are listed beside what one instance of it holds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.config import PRESETS, CacheConfig, EngineConfig, Limits, MiB
from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.host import compile_cost
from wasmlab.host.compile_cost import CompileCost
from wasmlab.host.component_surface import ComponentSurface, surface
from wasmlab.host.linking import Linkers
from wasmlab.host.modules import Compiled
from wasmlab.host.outcomes import REQUEST_FAILURES
from wasmlab.host.pool_sizing import (
    PER_COMPONENT_TOTALS,
    PROBE_LAYOUT,
    accepts,
    concurrent_instances,
    generous,
    knobs_for,
    probe_engine,
    requirements,
    serialized_for_probes,
    smallest,
)
from wasmlab.host.runtime import build_runtimes
from wasmlab.workloads.model import WASM_PAGE, Workload
from wasmlab.workloads.module_layout import ModuleLayout, layouts
from wasmlab.workloads.recipe.component_imports import import_refused
from wasmlab.workloads.unsatisfied_import import core_refusal

# The JSON of ``wasmlab inspect --format json``; raised when a field changes meaning or goes.
INSPECT_FORMAT_VERSION = 1


@dataclass
class Inspection:
    """What ``workload`` needs from a pool, whether that was confirmed, and what each preset lacks."""

    workload: Workload
    requirements: dict[str, int]
    confirmed: bool
    presets: dict[str, list[tuple[str, int]]]
    # Components: how many instances of it each preset's pool totals hold at once.
    concurrent: dict[str, int] | None = None
    # The linear memory one request grows to (None: not measured, e.g. for a guest not expected to succeed).
    request_memory: int | None = None
    # Components: what they import and the functions they export.
    surface: ComponentSurface | None = None

    # What the bytes declare (one layout per core module) and what compiling costs.
    layouts: list[ModuleLayout] = dataclasses.field(default_factory=list)
    compile: CompileCost | None = None

    def memory_line(self) -> str:
        """max_memory_size's one line: what serving a request needs when it is more than what instantiation needs."""
        at_start = self.requirements["max_memory_size"]
        shown = f">= {at_start} B ({at_start // WASM_PAGE} pages)"
        if self.request_memory is None:
            return shown + (" (no request measured: the module has no entry point)" if self.workload.kind == "library" else "")
        if self.request_memory > at_start:
            return (f">= {self.request_memory} B ({self.request_memory // WASM_PAGE} pages) to serve a request; {at_start} B"
                    f" ({at_start // WASM_PAGE} pages) to instantiate (found by running requests under a store memory limit)")
        return shown + " (a request stays within it: found by running requests under a store memory limit)"

    def render(self) -> str:
        w = self.workload
        imports = ("wasi preview 2" if w.component else "wasi_snapshot_preview1") if w.wasi else "none"
        if self.surface is not None:
            imports = self.surface.import_line() + (": each store gets a WASI context" if self.surface.wasi else "")
        entry = f"entry {w.entry}" if w.entry else "no entry point (a library: sized for a pool, no request made)"
        lines = [f"{w.name}: {w.kind}, {w.size_bytes} B, {entry}, imports {imports}",
                 *(f"  exports {name}: {wit}" for name, wit in (self.surface.functions if self.surface else ())),
                 *layout_lines(self.layouts), *([f"  {self.compile.render()}"] if self.compile else []),
                 "Needs from a pooling allocator (confirmed: a pool sized exactly to these instantiates it; one step less is refused):"
                 if self.confirmed else "Needs from a pooling allocator (NOT confirmed by instantiation):"]
        for knob, value in self.requirements.items():
            lines.append(f"  {knob:<32} {self.memory_line() if knob == 'max_memory_size' else f'>= {value}'}")
        lines.append("  (instance sizes as wasmtime reports them with copy-on-write on: other engine settings move them by some"
                     " bytes, so wasmlab's pools give them 2x headroom)")
        if w.component:
            per = ", ".join(f"{self.requirements[k]} {t.removeprefix('total_').replace('_', ' ')}"
                            for k, t in PER_COMPONENT_TOTALS.items())
            lines.append(f"  per concurrent request (one component instance of {self.requirements['max_component_instance_size']} B):"
                         f" {per} and 1 component instance in the pool's totals; wasmlab sizes its pools so (slots x these)")
        lines.append("Presets:")
        for name, raises in self.presets.items():
            if not raises:
                held = f"; its totals hold {self.concurrent[name]} instance(s) at once" if self.concurrent else ""
                lines.append(f"  {name}: fits{held}")
            else:
                lines.append(f"  {name}: does not fit; raise " + ", ".join(f"--pool {k}={v}" for k, v in raises))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The inspection as ``wasmlab inspect --format json`` prints it (sizes in bytes)."""
        w = self.workload
        return {"format_version": INSPECT_FORMAT_VERSION,
                "workload": {"name": w.name, "kind": w.kind, "bytes": w.size_bytes, "sha256": w.sha256, "entry": w.entry or None,
                             "imports": [{"name": n, "kind": k} for n, k in self.surface.imports] if self.surface else
                             (["wasi_snapshot_preview1"] if w.wasi else []),
                             "exports": [{"name": n, "wit": t} for n, t in self.surface.functions] if self.surface else []},
                "core_modules": [layout.to_dict() for layout in self.layouts],
                "compile": self.compile.to_dict() if self.compile else None,
                "requirements": dict(self.requirements), "confirmed": self.confirmed,
                "request_memory_bytes": self.request_memory,
                "max_memory_size_to_serve": max(self.requirements["max_memory_size"], self.request_memory or 0),
                "presets": {name: {"fits": not raises, "raise": dict(raises),
                                   "concurrent_instances": self.concurrent[name] if self.concurrent else None}
                            for name, raises in self.presets.items()}}


def layout_lines(layouts: list[ModuleLayout]) -> list[str]:
    """Each core module's memories, data segments and copy-on-write verdict, one line each."""
    lines = []
    for number, layout in enumerate(layouts, 1):
        where = f"  core module {number} of {len(layouts)}: " if len(layouts) > 1 else "  "
        for index, memory in enumerate(layout.memories):
            top = "no maximum declared" if memory.maximum_pages is None else f"maximum {memory.maximum_pages * memory.page_size} B"
            traits = ", ".join(t for t, on in (("64-bit", memory.memory64), ("shared", memory.shared), ("imported", memory.imported),
                                               (f"{memory.page_size} B pages", memory.page_size != WASM_PAGE)) if on)
            lines.append(f"{where}memory {index}: minimum {memory.minimum_pages * memory.page_size} B, {top}"
                         + (f" ({traits})" if traits else ""))
        passive = sum(s.size for s in layout.segments if s.memory is None)
        lines.append(f"{where}data: {len(layout.segments)} segment(s), {layout.data_bytes} B ({passive} B passive); "
                     f"copy-on-write image: {'yes' if layout.cow_image else 'no'} ({layout.cow_reason})")
    return lines


def instantiate_once(workload: Workload, serialized: bytes, engine: wasmtime.Engine) -> ComponentSurface | None:
    """Instantiate ``workload`` (compiled as ``serialized``) once on ``engine``, as the call paths link it; a component's
    imports and function exports.  An import the lab cannot satisfy is one line, as at a request's first compilation."""
    store = wasmtime.Store(engine)
    if workload.wasi:
        store.set_wasi(wasmtime.WasiConfig())
    try:
        if workload.component:  # the runtime's own component linker: WASI p2 and a recipe's stubs of its imports
            linker = Linkers(engine, [workload]).component
            assert linker is not None  # a component workload always gets one
            compiled = wasmtime.component.Component.deserialize(engine, serialized)
            linker.instantiate(store, compiled)
            return surface(compiled, engine)
        core_linker = Linkers(engine, [workload]).core or wasmtime.Linker(engine)
        core_linker.instantiate(store, wasmtime.Module.deserialize(engine, serialized))
        return None
    except wasmtime.WasmtimeError as exc:
        text = " ".join(str(exc).split())
        if "import" in text:
            raise (import_refused(workload, text) if workload.component else core_refusal(workload.name, text)) from None
        raise
    finally:
        store.close()


def inspect(workload: Workload) -> Inspection:
    """Find, confirm and compare with the presets what ``workload`` needs from a pool."""
    component = workload.component
    serialized = serialized_for_probes(workload)
    needs = requirements(workload, serialized)
    knobs = knobs_for(component)
    # Confirm: exactly these per-module limits instantiate it, and one step below any of them is
    # refused.  The pool gets 2 slots: nextpnr-ice40 with WASI needs a second memory slot in a
    # 1-slot pool though wasmtime accepts it with one memory per module (seen, not yet explained).
    exact = dict(needs)
    if component:
        exact.update({total: 2 * max(1, needs[per]) for per, total in PER_COMPONENT_TOTALS.items()})
    component_surface = instantiate_once(workload, serialized, probe_engine(exact, slots=2))
    confirmed = all(
        not accepts(serialized, {**exact, knob: needs[knob] - knobs[knob][1]}, component)
        for knob in needs if needs[knob] > 0
    )
    requirements_ = needs
    presets: dict[str, list[tuple[str, int]]] = {}
    for name, preset in PRESETS.items():
        raises = []
        for knob, needed in requirements_.items():
            value = getattr(preset.pool, knob)
            limits = {**generous(component), **({knob: value} if value is not None else {})}
            if value is None:
                # wasmtime's default for this knob: ask wasmtime rather than guess the number.
                limits.pop(knob)
            if not accepts(serialized, limits, component):
                raises.append((knob, needed))
        presets[name] = raises
    request_memory = memory_a_request_reaches(workload, serialized, needs["max_memory_size"])
    if request_memory is not None:
        for name, preset in PRESETS.items():
            limit = preset.pool.max_memory_size
            if limit is not None and limit < request_memory:
                # Raise it to what serving needs, not only to what instantiation needs.
                presets[name] = [(k, v) for k, v in presets[name] if k != "max_memory_size"] + [("max_memory_size", request_memory)]
    concurrent = {name: concurrent_instances(preset.pool, requirements_) for name, preset in PRESETS.items()} if component else None
    return Inspection(workload, requirements_, confirmed, presets, concurrent, request_memory, component_surface,
                      layouts(workload.wasm, workload.name), compile_cost.measure(workload.wasm, component))


def memory_a_request_reaches(workload: Workload, serialized: bytes, initial: int, upper: int = 4096 * MiB) -> int | None:
    """The linear memory one request of ``workload`` grows to, in bytes: the smallest store memory
    limit (a multiple of a page, at least ``initial``) under which a request still succeeds.

    ``None`` for a guest that is not expected to succeed, or that fails even without a limit.
    Runs about 16 real requests on the api path (the store limiter lives there).
    """
    if workload.expected_outcome != "ok":
        return None
    runtime = build_runtimes(["cached"], EngineConfig(memory_reservation=PROBE_LAYOUT["memory_reservation"], memory_guard_size=PROBE_LAYOUT["memory_guard_size"]), CacheConfig(), [workload], call_path="api",
                             limits=Limits(memory_bytes=upper))["cached"]
    try:
        # Compiled already for the probes, with this memory layout: no second compilation.
        module = (wasmtime.component.Component.deserialize(runtime.engine, serialized) if workload.component
                  else wasmtime.Module.deserialize(runtime.engine, serialized))
        runtime.cache.get(workload.sha256, lambda _: Compiled(module, None), workload)

        def serves(limit: int) -> bool:
            runtime.store.limits = dataclasses.replace(runtime.store.limits, memory_bytes=limit)
            try:
                runtime.handle(0)
                return True
            except (*REQUEST_FAILURES, WasmlabError):
                return False

        try:
            # _smallest serves one request without a limit first, and refuses if even that fails.
            return initial + smallest(lambda extra: serves(initial + extra), WASM_PAGE, upper - initial)
        except ConfigError:
            return None
    finally:
        runtime.close()
