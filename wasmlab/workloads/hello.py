"""The smallest WASI command, twice: a core WASI preview 1 module and a WASI preview 2 component command, each writing
``hello`` to stdout (``guests/hello/``).  Side by side they price what a component command's WASI p2 context and its
canonical-ABI calls cost beside a core command's, with nothing else in the request (notebook 07)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from wasmlab.errors import allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.component_command import command_workload
from wasmlab.workloads.model import Workload, wasi_command

GUEST_DIR = Path(__file__).parent / "guests" / "hello"
KINDS = ("core", "component")
STDOUT = "^hello\n$"  # checked on every request


def hello(kind: str = "core") -> Workload:
    """The hello command of ``kind``: ``core`` (WASI p1, ``_start``) or ``component`` (WASI p2, ``wasi:cli/run``)."""
    if kind not in KINDS:
        raise allowed(kind, "hello kind", list(KINDS))
    name = "hello" if kind == "core" else f"hello:kind={kind}"
    wasm = bytes(wasmtime.wat2wasm((GUEST_DIR / f"hello_{kind}.wat").read_text()))
    provenance = f"hand-written in the {'component ' if kind == 'component' else ''}text format (guests/hello/hello_{kind}.wat)"
    if kind == "core":
        return wasi_command(name, wasm, ("hello",), stdout=STDOUT, provenance=provenance)
    return command_workload(name, wasm, introspect.component_types(wasm).exports, provenance, argv=("hello",),
                            stdout_pattern=STDOUT)
