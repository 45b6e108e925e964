"""A recipe's stubs of component function imports on a component linker (issue 25): each stub a host function in its
named instance that returns its constant, the arguments ignored.  One home for the lean and api paths (both
instantiate through wasmtime-py's component ``Linker``) and for the native path's plan (the same merged stubs).

A linker instance is opened once (wasmtime refuses a second definition of a name), so the stubs of every workload of
a runtime are merged first: the same import stubbed twice must return the same constant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError
from wasmlab.workloads.model import ComponentStub, Workload


def merged(workloads: Sequence[Workload]) -> tuple[ComponentStub, ...]:
    """Every component workload's stubs, each import once, ordered by instance then name (so that each instance is
    opened once); one line when two workloads stub one import with different constants."""
    found: dict[str, tuple[ComponentStub, str]] = {}
    for w in workloads:
        for s in w.stubs if w.component else ():
            earlier = found.get(s.name)
            if earlier is None:
                found[s.name] = (s, w.name)
            elif earlier[0].value != s.value or earlier[0].signature.wit != s.signature.wit:
                raise ConfigError(f"recipe imports.{s.name}: workloads {earlier[1]!r} and {w.name!r} stub it differently, and "
                                  f"one linker serves both; allowed: the same constant, or separate runs")
    return tuple(sorted((s for s, _ in found.values()), key=lambda s: (s.instance, s.function)))


def host_function(s: ComponentStub) -> Any:
    """The stub as wasmtime-py calls a host function: ``(store, *args)`` -> its constant in wasmtime-py's values."""
    result = s.signature.result
    value = result.to_api(s.value) if result is not None else None

    def returns(_store: object, *_args: object) -> object:
        return value
    return returns


def define(linker: wasmtime.component.Linker, stubs: Sequence[ComponentStub]) -> None:
    """``stubs`` (as :func:`merged` orders them) defined on ``linker``: each instance opened once, nested ones inside
    their parent, each function added to its own."""
    root = linker.root()
    # The open instances, outermost first (the root at depth 0): wasmtime-py locks a parent while a child is open.
    opened: list[tuple[tuple[str, ...], wasmtime.component.LinkerInstance]] = [((), root)]
    try:
        for s in stubs:
            while opened[-1][0] != s.instance[:len(opened[-1][0])]:
                opened.pop()[1].close()
            while len(opened[-1][0]) < len(s.instance):
                path = s.instance[:len(opened[-1][0]) + 1]
                opened.append((path, opened[-1][1].add_instance(path[-1])))
            opened[-1][1].add_func(s.function, host_function(s))
    except wasmtime.WasmtimeError as exc:
        raise ConfigError(f"recipe imports: the stubs cannot be defined: {' '.join(str(exc).split())}") from None
    finally:
        while opened:
            opened.pop()[1].close()
