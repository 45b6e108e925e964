"""What a component shows its host (``wasmlab inspect``): what it imports, and the functions it exports.

Read from the compiled component's type on the engine that compiled it (no instantiation).  A function inside an
exported interface is named ``INTERFACE#FUNCTION``, the name a workload's entry gives to call it.  Each function's
WIT signature comes from :class:`~wasmlab.workloads.signature.Signature`; a function whose types the lab's component
paths do not model (resources, futures) is listed with that said instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError
from wasmlab.workloads import introspect
from wasmlab.workloads.signature import Signature

# What each kind of item is called in a listing.
ITEM_KINDS = ((wasmtime.component.ComponentInstanceType, "instance"), (wasmtime.component.FuncType, "function"),
              (wasmtime.component.ResourceType, "resource"), (wasmtime.component.ModuleType, "core module"),
              (wasmtime.component.ComponentType, "component"))


@dataclass(frozen=True)
class ComponentSurface:
    """A component's imports (name and kind, in order) and function exports (name and WIT signature)."""

    imports: tuple[tuple[str, str], ...]
    functions: tuple[tuple[str, str], ...]

    @property
    def wasi(self) -> bool:
        """Whether it imports WASI preview 2 (a host's stores then need a WASI context)."""
        return any(name.startswith("wasi:") for name, _ in self.imports)

    def import_line(self) -> str:
        if not self.imports:
            return "none"
        wasi = [name for name, _ in self.imports if name.startswith("wasi:")]
        packages = sorted({name.split("/")[0].removeprefix("wasi:") for name in wasi})
        versions = sorted({name.partition("@")[2] for name in wasi if "@" in name})
        parts = [f"WASI preview 2 ({len(wasi)} interface(s) of {', '.join(packages)}"
                 + (f", version {', '.join(versions)}" if versions else "") + ")"] if wasi else []
        parts += [f"{name} ({kind})" for name, kind in self.imports if not name.startswith("wasi:")]
        return "; ".join(parts)


def kind_of(item: Any) -> str:
    return next((name for cls, name in ITEM_KINDS if isinstance(item, cls)), type(item).__name__)


def wit_of(func: wasmtime.component.FuncType) -> str:
    try:
        return Signature.of(func).wit
    except ConfigError:
        return "(uses types wasmlab's component paths do not model)"


def surface(component: wasmtime.component.Component, engine: wasmtime.Engine) -> ComponentSurface:
    """The imports and function exports of ``component`` (compiled on ``engine``)."""
    imports = tuple((name, kind_of(item.ty)) for name, item in component.type.imports(engine).items())
    # The same names the resolver takes (INTERFACE#FUNCTION, OUTER#INNER#FUNCTION for an interface inside one).
    functions = introspect.functions_of(component.type.exports(engine), engine)
    return ComponentSurface(imports, tuple((name, wit_of(ty)) for name, ty in functions.items()))
