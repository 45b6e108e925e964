"""Where a request's compiled module comes from: compiled on the engine, a memory cache hit, a compiled
artifact on disk, wasmtime's own compilation cache (an engine setting), and its ``InstancePre``.

The first compilation of each module also checks its export against the workload's declared type:
the lean paths call with ``wasmtime_func_call_unchecked`` and prebuilt component value trees, which
are sound only for that type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import CompileError, ConfigError, allowed
from wasmlab.host.artifacts import ArtifactStore
from wasmlab.host.cache import ModuleCache
from wasmlab.host.linking import Linkers
from wasmlab.workloads import introspect
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe.component_imports import import_refused
from wasmlab.workloads.signature import Signature

Module = wasmtime.Module | wasmtime.component.Component


@dataclass
class Compiled:
    """A compiled module (or component), with its ``InstancePre`` when the variant pre-instantiates."""

    module: Module
    pre: wasmtime.InstancePre | None = None
    # Raw pointers are taken once so the lean paths do not call .ptr() per request.
    module_ptr: Any = field(init=False)
    pre_ptr: Any = field(init=False)

    def __post_init__(self) -> None:
        self.module_ptr = self.module.ptr()
        self.pre_ptr = self.pre.ptr() if self.pre is not None else None
        self._export_indexes: dict[str, wasmtime.component.ExportIndex] = {}
        self._export_pointers: dict[str, Any] = {}

    @property
    def core(self) -> wasmtime.Module:
        if not isinstance(self.module, wasmtime.Module):
            raise TypeError("a component, not a core module")
        return self.module

    @property
    def component(self) -> wasmtime.component.Component:
        if not isinstance(self.module, wasmtime.component.Component):
            raise TypeError("a core module, not a component")
        return self.module

    def export_index(self, name: str) -> Any:
        """A component function's index pointer (valid in every store of the engine), looked up once; ``name`` is
        its full name (``f``, ``INTERFACE#f``: found inside the interface, whose index is its parent)."""
        pointer = self._export_pointers.get(name)
        if pointer is None:
            index = introspect.export_index(self.component, name)
            if index is None:
                raise ConfigError(f"component has no export {name!r}")
            self._export_indexes[name] = index  # keeps the pointer valid
            pointer = self._export_pointers[name] = index.ptr()
        return pointer


def check_core_export(module: wasmtime.Module, workload: Workload) -> None:
    """The unchecked call is only sound if the export's type is what the workload declares."""
    for export in module.exports:
        if export.name == workload.entry:
            ty = export.type
            if not isinstance(ty, wasmtime.FuncType):
                raise ConfigError(f"workload {workload.name!r}: export {workload.entry!r} is not a function")
            params = tuple(str(t) for t in ty.params)
            results = tuple(str(t) for t in ty.results)
            if params != workload.params or results != workload.results:
                raise ConfigError(
                    f"workload {workload.name!r}: export {workload.entry!r} has type {params} -> {results}, "
                    f"declared {workload.params} -> {workload.results}"
                )
            return
    raise allowed(workload.entry, f"workload {workload.name!r} export", [e.name for e in module.exports])


def check_component_export(component: wasmtime.component.Component, engine: wasmtime.Engine, workload: Workload) -> None:
    """The prebuilt argument trees are only right if the export's type is the workload's signature."""
    ty = introspect.functions_of(component.type.exports(engine), engine).get(workload.entry)
    if ty is None:
        raise ConfigError(f"workload {workload.name!r}: component has no function export {workload.entry!r}")
    actual = Signature.of(ty).wit
    if workload.signature is not None and actual != workload.signature.wit:
        raise ConfigError(f"workload {workload.name!r}: export {workload.entry!r} is {actual}, declared {workload.signature.wit}")


class ModuleSource:
    """Compiled modules for one runtime: ``get(workload)`` is a cache lookup that compiles on a miss.

    ``cache`` is the variant's memory cache (policy ``none`` for variants without ``cached``, so every
    request compiles); ``artifacts`` the disk tier for ``disk``; ``pre`` makes an ``InstancePre``
    with the core linker once per compilation.
    """

    def __init__(self, engine: wasmtime.Engine, cache: ModuleCache[Compiled], linkers: Linkers,
                 artifacts: ArtifactStore | None = None, pre: bool = False, label: str = "") -> None:
        self.engine = engine
        self.cache = cache
        self.linkers = linkers
        self.artifacts = artifacts
        self.pre = pre
        self.label = label
        self._checked: set[str] = set()

    def get(self, workload: Workload) -> Compiled:
        return self.cache.get(workload.sha256, self.compile, workload)

    def compile(self, workload: Workload) -> Compiled:
        """Compile ``workload`` on this engine (or load its artifact), check its export once, pre-instantiate if asked."""
        module: Module
        try:
            if self.artifacts is not None:
                module = self.artifacts.load_or_compile(workload)
            elif workload.component:
                module = wasmtime.component.Component(self.engine, workload.wasm)
            else:
                module = wasmtime.Module(self.engine, workload.wasm)
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"workload {workload.name!r} does not compile for variant {self.label!r}: "
                               + " ".join(str(exc).split())) from None
        if workload.sha256 not in self._checked:
            if isinstance(module, wasmtime.component.Component):
                check_component_export(module, self.engine, workload)
                self._check_component_imports(module, workload)
            elif not (workload.steps or workload.driver):  # a recipe's exports were checked when it was read; a driver looks up its own
                check_core_export(module, workload)
            self._checked.add(workload.sha256)
        pre = None
        if self.pre and isinstance(module, wasmtime.Module) and self.linkers.core is not None:
            pre = self.linkers.core.instantiate_pre(module)
        return Compiled(module, pre)

    def _check_component_imports(self, component: wasmtime.component.Component, workload: Workload) -> None:
        """Instantiate once in a scratch store: wasmtime names the first import the linker cannot satisfy."""
        linker = self.linkers.component
        if linker is None:
            raise ConfigError(f"component {workload.name!r} was given to a runtime without a component linker")
        store = wasmtime.Store(self.engine)
        if workload.wasi:
            store.set_wasi(wasmtime.WasiConfig())
        try:
            linker.instantiate(store, component)
        except wasmtime.WasmtimeError as exc:
            text = " ".join(str(exc).split())
            if "import" in text:
                raise import_refused(workload, text) from None
            raise
        finally:
            store.close()
