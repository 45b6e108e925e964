"""A component recipe's ``imports:`` bound to the component: each stub of one of its function imports
(``INSTANCE#FUNCTION``, a top-level import by its bare name), its WAVE constant typed by the import's result.

The component's function imports are read through its types (``component.type.imports``, imported instances walked
as exported interfaces are).  Refused in one line: a stub of an import the component does not have (listing those it
has), a constant that does not fit the result type, a function import left unstubbed (WASI p2 imports, ``wasi:*``,
are the lab's, never stubbed)."""

from __future__ import annotations

from typing import Any

import wasmtime.component

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.model import ComponentStub, Workload
from wasmlab.workloads.recipe.model import Recipe
from wasmlab.workloads.unsatisfied_import import component_import

WASI_PREFIX = "wasi:"


def function_imports(types: introspect.ComponentTypes) -> dict[str, wasmtime.component.FuncType]:
    """The component's function imports a recipe can stub, by full name (WASI p2's left out): name -> type."""
    found = introspect.functions_of(types.imports, introspect.engine())
    return {name: ty for name, ty in found.items() if not name.startswith(WASI_PREFIX)}


def wave_text(value: Any) -> str:
    """A YAML constant as WAVE text (YAML reads ``41`` as a number and ``true`` as a boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stub(recipe: Recipe, name: str, value: Any, ty: wasmtime.component.FuncType) -> ComponentStub:
    """One stub, its constant typed by the import's result (``null``: the import returns nothing)."""
    from wasmlab.workloads.signature import Signature
    from wasmlab.workloads.wave import parse_value, typed

    signature = Signature.of(ty)
    where = f"recipe imports.{name}"
    if value is None:
        if signature.result is not None:
            raise ConfigError(f"{where}: null, but {name} returns {signature.result.wit}; allowed: a WAVE value of that type")
        return ComponentStub(name, signature, None)
    if signature.result is None:
        raise ConfigError(f"{where}: {value!r}, but {name} returns nothing; allowed: null")
    return ComponentStub(name, signature, typed(parse_value(wave_text(value), where), signature.result, where))


def component_stubs(recipe: Recipe, types: introspect.ComponentTypes) -> tuple[ComponentStub, ...]:
    """The recipe's stubs, checked against the component's function imports: every stub of an import it has, every
    function import (but WASI's) stubbed."""
    functions = function_imports(types)
    stubs = []
    for name, value in recipe.imports.items():
        if name.startswith(WASI_PREFIX):
            raise ConfigError(f"recipe imports.{name}: WASI imports are satisfied by WASI p2, not stubbed; allowed: "
                              + (", ".join(sorted(functions)) or "(no function imports but WASI)"))
        if name not in functions:
            raise allowed(name, f"recipe imports: function import of {recipe.module}", sorted(functions) or ["(none but WASI)"])
        stubs.append(stub(recipe, name, value, functions[name]))
    missing = [name for name in sorted(functions) if name not in recipe.imports]
    if missing:
        raise ConfigError(f"recipe imports: {recipe.module} imports function {missing[0]}, which nothing defines; allowed: "
                          f"WASI p2 imports, or a stub under the recipe's imports: (e.g. imports: {{{missing[0]}: ...}})")
    return tuple(sorted(stubs, key=lambda s: (s.instance, s.function)))


def unstubbed(workload: Workload) -> tuple[list[str], str | None]:
    """The component's function imports a recipe may stub, and the first of them its stubs leave undefined (or None)."""
    functions = sorted(function_imports(introspect.component_types(workload.wasm)))
    missing = sorted(set(functions) - {s.name for s in workload.stubs})
    return functions, missing[0] if missing else None


def unsatisfied_import(workload: Workload) -> str | None:
    """The one line for a component whose function imports its stubs leave undefined (WASI p2's are the lab's), or
    ``None``: said before anything is compiled for requests, on a path whose loop would otherwise fail each request."""
    functions, missing = unstubbed(workload)
    return str(component_import(workload.name, functions, missing)) if missing else None


def import_refused(workload: Workload, refusal: str) -> ConfigError:
    """The one line for a component wasmtime would not instantiate for an import (``refusal``, its words): the function
    import no stub defines when there is one, worded as :func:`unsatisfied_import` words it, else wasmtime's import."""
    functions, missing = unstubbed(workload)
    return component_import(workload.name, functions, missing, refusal)
