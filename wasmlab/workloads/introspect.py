"""Reading a module's or a component's types: one cached default engine, for every question about types.

A workload is made from bytes whose exports, imports and types decide how it is called (a recipe's exports and
their arity, a component's function exports and their shapes, whether a guest imports WASI).  Reading them needs
an engine but no particular one: a default ``wasmtime.Engine`` is made once per process (``functools.cache``)
and shared, so that no maker of workloads builds its own.  Engines that run measured requests are the host's
(:mod:`wasmlab.host.engine`), configured per variant; this one only compiles to read types (and serves the
recipes' dry run and one notebook's single instance, which want a default engine and nothing more).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import wasmtime
import wasmtime.component


@cache
def engine() -> wasmtime.Engine:
    """The one default engine of the process that type questions are asked of."""
    return wasmtime.Engine()


def core_module(wasm: bytes) -> wasmtime.Module:
    """``wasm`` compiled as a core module on :func:`engine` (raises ``wasmtime.WasmtimeError`` when it is not valid)."""
    return wasmtime.Module(engine(), wasm)


def function_exports(module: wasmtime.Module) -> dict[str, wasmtime.FuncType]:
    """A core module's function exports: name -> type."""
    return {e.name: e.type for e in module.exports if isinstance(e.type, wasmtime.FuncType)}


def memory_exports(module: wasmtime.Module) -> set[str]:
    """The names of a core module's exported memories."""
    return {e.name for e in module.exports if isinstance(e.type, wasmtime.MemoryType)}


def core_imports(module: wasmtime.Module) -> list[tuple[str, str]]:
    """A core module's imports as (module, name) pairs, in order."""
    return [(i.module, str(i.name)) for i in module.imports]


@dataclass(frozen=True)
class ComponentTypes:
    """A component's exports and imports by name (wasmtime-py's item types), read on :func:`engine`."""

    component: wasmtime.component.Component
    exports: Mapping[str, Any]
    imports: Mapping[str, Any]

    @property
    def functions(self) -> dict[str, wasmtime.component.FuncType]:
        """The function exports: name -> type."""
        return {n: e.ty for n, e in self.exports.items() if isinstance(getattr(e, "ty", None), wasmtime.component.FuncType)}

    @property
    def imports_wasi(self) -> bool:
        """Whether the component imports WASI (preview 2): its stores need a WASI context."""
        return any(name.startswith("wasi:") for name in self.imports)


def component_types(wasm: bytes) -> ComponentTypes:
    """``wasm`` compiled as a component on :func:`engine`, and its exports and imports (raises
    ``wasmtime.WasmtimeError`` when it is not a valid component)."""
    component = wasmtime.component.Component(engine(), wasm)
    return ComponentTypes(component, component.type.exports(engine()), component.type.imports(engine()))
