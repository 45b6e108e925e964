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
from functools import cache, cached_property, lru_cache
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError, allowed

# Joins an exported interface's name and a function's inside it (``pkg:ns/iface@1.0.0#on-request``), as wasmtime and
# WAVE write them; an interface inside an interface adds one more (``outer#inner#f``).  A name never holds one itself.
SEPARATOR = "#"


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

    @cached_property
    def functions(self) -> dict[str, wasmtime.component.FuncType]:
        """Every function a caller can reach: the top-level function exports and those inside exported interfaces
        (nested ones too), by full name (``f``, ``INTERFACE#f``) -> type."""
        return functions_of(self.exports, engine())

    @cached_property
    def interfaces(self) -> dict[str, list[str]]:
        """The exported interfaces (component instances, nested ones by full name) -> the names of their functions."""
        found: dict[str, list[str]] = {}
        for full in self.functions:
            interface, sep, function = full.rpartition(SEPARATOR)
            if sep:
                found.setdefault(interface, []).append(function)
        for name in instances_of(self.exports, engine()):
            found.setdefault(name, [])
        return found

    def resolve(self, name: str, what: str) -> str:
        """The full name of the function ``name`` calls (the one home of the rule): an exact full name (a top-level
        ``f`` is its own full name, and wins over an interface's ``f``, as a file's exact path would); a bare name
        unique among the interfaces' functions; ``#f``, the top-level ``f`` said explicitly.  Anything else is refused
        in one line beginning with ``what``: a bare name found in several interfaces (listing its full names), an
        interface that is not exported (listing those that are), a function not in its interface (listing the
        interface's)."""
        functions = self.functions
        interface, sep, function = name.rpartition(SEPARATOR)
        if interface:
            if name in functions:
                return name
            interfaces = self.interfaces
            if interface not in interfaces:
                raise allowed(interface, f"{what}: exported interface", sorted(interfaces) or ["(no exported interfaces)"])
            raise allowed(function, f"{what}: function of interface {interface}", sorted(interfaces[interface]) or ["(none)"])
        top = sorted(f for f in functions if SEPARATOR not in f)
        if sep:  # ``#f``: the top-level f, named so when an interface has an f too
            if function in top:
                return function
            raise allowed(name, f"{what}: top-level function", [f"{SEPARATOR}{f}" for f in top] or ["(no top-level functions)"])
        if name in top:
            return name
        candidates = sorted(f for f in functions if f.rpartition(SEPARATOR)[2] == name)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise ConfigError(f"{what}: function {name!r} is ambiguous; allowed: one of its full names, {', '.join(candidates)}")
        raise allowed(name, f"{what}: function", sorted(functions) or ["(no function exports)"])

    @property
    def imports_wasi(self) -> bool:
        """Whether the component imports WASI (preview 2): its stores need a WASI context."""
        return any(name.startswith("wasi:") for name in self.imports)


def functions_of(exports: Mapping[str, Any], on: wasmtime.Engine, prefix: str = "") -> dict[str, wasmtime.component.FuncType]:
    """The functions among a component's (or an exported interface's) ``exports``, walking into exported interfaces
    (component instances): full name -> type, read on engine ``on``."""
    found: dict[str, wasmtime.component.FuncType] = {}
    for name, item in exports.items():
        ty = item.ty
        if isinstance(ty, wasmtime.component.FuncType):
            found[prefix + name] = ty
        elif isinstance(ty, wasmtime.component.ComponentInstanceType):
            found.update(functions_of(ty.exports(on), on, f"{prefix}{name}{SEPARATOR}"))
    return found


def instances_of(exports: Mapping[str, Any], on: wasmtime.Engine, prefix: str = "") -> list[str]:
    """The full names of the exported interfaces (component instances) among ``exports``, nested ones too."""
    found: list[str] = []
    for name, item in exports.items():
        ty = item.ty
        if isinstance(ty, wasmtime.component.ComponentInstanceType):
            found.append(prefix + name)
            found.extend(instances_of(ty.exports(on), on, f"{prefix}{name}{SEPARATOR}"))
    return found


def export_index(component: wasmtime.component.Component, name: str) -> wasmtime.component.ExportIndex | None:
    """The export index of the function full-named ``name`` (``f``, ``INTERFACE#f``), each interface's index the
    parent of the next name's (``wasmtime_component_get_export_index``); ``None`` when a part is not exported."""
    index = None
    for part in name.split(SEPARATOR):
        index = component.get_export_index(part, index)
        if index is None:
            return None
    return index


@lru_cache(maxsize=16)
def component_types(wasm: bytes) -> ComponentTypes:
    """``wasm`` compiled as a component on :func:`engine`, and its exports and imports (raises
    ``wasmtime.WasmtimeError`` when it is not a valid component).  Kept for the last 16 components read: a workload's
    types are asked for when it is made, bound to a recipe, checked for unstubbed imports and inspected, and compiling
    a large component (componentize-py's, 18 MB) takes seconds each time."""
    component = wasmtime.component.Component(engine(), wasm)
    return ComponentTypes(component, component.type.exports(engine()), component.type.imports(engine()))
