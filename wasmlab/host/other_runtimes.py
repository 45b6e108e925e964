"""The hosts of the runtime axis's runtimes other than wasmtime, by name: each module builds a variant's runtime
(``build``) and says what a run's output should note about how its variants compile (``notes``).  The axis's names and
refusals are :mod:`wasmlab.host.runtime_axis`'s; adding a runtime is one :class:`~wasmlab.host.runtime_axis.RuntimeKind`
there and one module here."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from wasmlab.host import extism, v8
from wasmlab.host.variant import Variant

HOSTS: dict[str, ModuleType] = {v8.NAME: v8, extism.NAME: extism}


def notes(variants: Sequence[Variant]) -> list[str]:
    """Every other runtime's notes on ``variants`` (how ``baseline@v8`` and ``baseline@extism`` compile)."""
    return [note for host in HOSTS.values() for note in host.notes(variants)]
