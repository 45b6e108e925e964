"""The linkers a runtime's guests need: a core linker (WASI preview 1, the lab's host functions, and
``InstancePre``), a component linker (WASI preview 2, a recipe's stubs of component imports); each built only when some workload needs it."""

from __future__ import annotations

from collections.abc import Sequence

import wasmtime
import wasmtime.component

from wasmlab.host.component_stubs import define as define_component_stubs
from wasmlab.host.component_stubs import merged
from wasmlab.workloads.hostfuncs import define as define_host_functions
from wasmlab.workloads.model import Workload


class Linkers:
    """``core`` and ``component`` linkers for ``workloads`` on ``engine`` (``None`` where not needed)."""

    def __init__(self, engine: wasmtime.Engine, workloads: Sequence[Workload], pre: bool = False) -> None:
        self.component: wasmtime.component.Linker | None = None
        if any(w.component for w in workloads):
            self.component = wasmtime.component.Linker(engine)
            if any(w.component and w.wasi for w in workloads):
                self.component.add_wasip2()
            define_component_stubs(self.component, merged(workloads))
        self.core: wasmtime.Linker | None = None
        if pre or any(w.linked for w in workloads):
            self.core = wasmtime.Linker(engine)
            if any(w.wasi and not w.component for w in workloads):
                self.core.define_wasi()
            for name in sorted({w.host_imports for w in workloads if w.host_imports}):
                define_host_functions(self.core, name)
            defined: set[tuple[str, str]] = set()
            for w in workloads:
                if w.recipe is not None and w.recipe.imports:
                    define_stubs(self.core, wasmtime.Module(engine, w.wasm), w.recipe.imports, defined)


def define_stubs(linker: wasmtime.Linker, module: wasmtime.Module, imports: dict[str, int],
                 defined: set[tuple[str, str]] | None = None) -> None:
    """A recipe's ``imports``: each named function import of ``module`` defined as a host function that returns the
    constant given (nothing, for a function without results), so a guest whose host hooks a recipe does not use
    (an interrupt check, a timezone offset) can be instantiated."""
    done = defined if defined is not None else set()
    for item in module.imports:
        key = f"{item.module}.{item.name}"
        if key not in imports or (item.module, str(item.name)) in done or not isinstance(item.type, wasmtime.FuncType):
            continue
        value, results = imports[key], list(item.type.results)

        def stub(*_: object, value: int = value, returns: bool = bool(results)) -> int | None:
            return value if returns else None
        linker.define_func(item.module, str(item.name), item.type, stub)
        done.add((item.module, str(item.name)))
