"""Call paths: how a request's C calls are made, one strategy per (call path x guest kind), in a registry.

======== ============================================ =============================================
path     core modules                                 components
======== ============================================ =============================================
``lean`` :mod:`~wasmlab.host.callpaths.lean_core`         :mod:`~wasmlab.host.callpaths.lean_component`
``api``  :mod:`~wasmlab.host.callpaths.api_core`          :mod:`~wasmlab.host.callpaths.api_component`
``native`` :mod:`~wasmlab.host.callpaths.native`          :mod:`~wasmlab.host.callpaths.native_component`
======== ============================================ =============================================

A strategy is a :class:`~wasmlab.host.callpaths.base.Binder`: it binds a runtime's workloads once and
returns a closure per request (and its phased twin), so the hot path makes no call through this
registry.  A new call path is one new module and one :func:`register` call, as papermill registers
its engines.  A path without a strategy for a guest kind refuses it with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wasmlab.errors import ConfigError, allowed
from wasmlab.host.callpaths import api_component, api_core, lean_component, lean_core, native, native_component, reuse
from wasmlab.host.callpaths.base import PHASES, Binder, BlockServer, Handler, Handlers, PhasedBlockServer, PhasedHandler, RequestParts, checked_block
from wasmlab.workloads.model import Workload

__all__ = ["PHASES", "BlockServer", "PhasedBlockServer", "CallPath", "Handler", "Handlers", "PhasedHandler", "RequestParts", "REGISTRY", "bind",
           "call_paths", "check_call_path", "register"]


@dataclass(frozen=True)
class CallPath:
    """A named call path and its strategy for each guest kind (``None``: not served on this path)."""

    name: str
    description: str
    core: Binder | None
    component: Binder | None
    gloss: str = ""  # a few words for a printout's legend, where the description would not fit


REGISTRY: dict[str, CallPath] = {}


def register(path: CallPath) -> None:
    """Add (or replace) a call path in the registry."""
    REGISTRY[path.name] = path


register(CallPath("lean", "the C calls wasmtime-py makes, issued directly with buffers prepared once", lean_core.bind,
                  lean_component.bind, "Python calls wasmtime's C API"))
register(CallPath("api", "wasmtime-py's high-level objects, as a Python host writes them", api_core.bind, api_component.bind,
                  "Python through wasmtime-py's objects"))
register(CallPath("native", "the whole request loop in C over the same libwasmtime, the GIL released", native.bind,
                  native_component.bind, "the request loop in C"))


def call_paths() -> tuple[str, ...]:
    """The registered call paths' names."""
    return tuple(REGISTRY)


def check_call_path(name: str) -> str:
    """``name`` if it is a registered call path; else the standard one-line error."""
    if name not in REGISTRY:
        raise allowed(name, "call path", call_paths())
    return name


def bind(name: str, parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """The handlers of call path ``name`` for ``workloads``: one strategy's own closures when every
    workload is of one kind, else a closure that picks by the workload's kind; with instance reuse (``parts.reuse`` > 1),
    the reuse server of :mod:`~wasmlab.host.callpaths.reuse` on a Python path."""
    path = REGISTRY[check_call_path(name)]
    if parts.reuse > 1:
        reuse.check_reusable(parts.label, workloads, native=name == native.NAME)
        # One ledger per runtime, whoever binds again (the crossing counter rebinds the lean path with counted calls).
        parts.ledger = parts.ledger or reuse.ReuseLedger(parts.reuse)
        if name != native.NAME:  # the native path reuses instances in its C loop
            return reuse.bind(name, parts, workloads)
    kinds = {"component" if w.component else "core" for w in workloads}
    bound: dict[str, Handlers] = {}
    for kind in sorted(kinds):
        binder = path.core if kind == "core" else path.component
        if binder is None:
            raise ConfigError(f"call path {name!r} does not serve {kind} workloads yet; allowed: "
                              + ", ".join(p.name for p in REGISTRY.values() if (p.core if kind == "core" else p.component)))
        bound[kind] = binder(parts, workloads)
    if len(bound) == 1:
        return Handlers(*next(iter(bound.values())))
    core, component = bound["core"], bound["component"]
    is_component = [w.component for w in workloads]

    def handle(index: int) -> object:
        return (component.handle if is_component[index] else core.handle)(index)

    def handle_phased(index: int, stamps: list[int]) -> object:
        return (component.handle_phased if is_component[index] else core.handle_phased)(index, stamps)
    if core.serve is None or component.serve is None:
        return Handlers(handle, handle_phased)
    core_serve, component_serve = core.serve, component.serve

    def serve(index: int) -> object:
        return (component_serve if is_component[index] else core_serve)(index)
    # Both kinds' output checks outside the requests' time, as each kind's own block server makes them.
    checks = {**(core.checks or {}), **(component.checks or {})}
    return Handlers(handle, handle_phased, checked_block(serve, checks, parts), None, serve, checks)

