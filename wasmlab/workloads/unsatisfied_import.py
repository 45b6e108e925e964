"""The one line for an import the lab cannot satisfy, worded once, so that a user reads the same sentence whichever
command or call path meets the import: a core module's when it is loaded, a component's before the native loop
runs, at the lean and api paths' first compilation, and at ``wasmlab inspect``'s instantiation.

Each of those finds the import its own way (a core module's imports against the installed host-function sets, a
component's function imports against its recipe's stubs, wasmtime's refusal to instantiate); the words are these:
``KIND 'NAME' has an import the lab cannot satisfy: WHAT; allowed: WHAT THE LAB SATISFIES``."""

from __future__ import annotations

from collections.abc import Sequence

from wasmlab.errors import ConfigError
from wasmlab.workloads.hostfuncs import host_function_sets


def unsatisfied(kind: str, name: str, what: str, satisfied: str) -> ConfigError:
    """The sentence: ``kind`` is ``module`` or ``component``, ``what`` the import, ``satisfied`` what the lab defines."""
    return ConfigError(f"{kind} {name!r} has an import the lab cannot satisfy: {what}; allowed: {satisfied}")


def core_import(name: str, module: str, field: str) -> ConfigError:
    """A core module's import ``module::field`` that neither WASI preview 1 nor an installed host-function set defines."""
    return unsatisfied("module", name, f"module imports `{module}::{field}`, which nothing defines", core_satisfied())


def core_refusal(name: str, refusal: str) -> ConfigError:
    """A core module wasmtime would not instantiate for an import (its own words, ``refusal``, name the import)."""
    return unsatisfied("module", name, refusal, core_satisfied())


def core_satisfied() -> str:
    sets = sorted(host_function_sets())
    return "wasi_snapshot_preview1 imports and the host-function sets " + (", ".join(sets) or "(none installed)")


def component_import(name: str, stubbable: Sequence[str], missing: str | None, refusal: str = "") -> ConfigError:
    """A component's function import ``missing`` that no stub defines, or, when every function import is stubbed, the
    import wasmtime's ``refusal`` names (a resource or an interface WASI p2 lacks); ``stubbable``: its function imports
    but WASI's, what a recipe's ``imports:`` may stub."""
    what = f"component imports function `{missing}`, which nothing defines" if missing else refusal
    satisfied = (f"WASI p2 imports, or a recipe's imports: stubbing its function imports ({', '.join(sorted(stubbable))}) with "
                 f"WAVE constants" if stubbable else "WASI p2 imports (it has no other function imports a recipe could stub)")
    return unsatisfied("component", name, what, satisfied)
