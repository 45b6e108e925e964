"""``wasi:http`` proxy components: what ``wasmlab serve`` runs under the real ``wasmtime serve``.

A proxy exports ``wasi:http/incoming-handler`` and answers each request itself; a host serves it through an HTTP stack,
so the lab's own call paths cannot run it (wasmtime's C API cannot make the resources the handler takes; the lab only
instantiates it per request, ``wasmlab serve --beside-lab``).  Each proxy here says the status and the
exact body it answers with, so that every response of a load can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import wasmtime

from wasmlab.errors import allowed

GUEST_DIR = Path(__file__).parent / "guests" / "proxy"


@dataclass(frozen=True)
class Proxy:
    """A ``wasi:http`` proxy component and the response it must give to every ``GET /``."""

    name: str
    wasm: bytes
    status: int
    body: bytes
    provenance: str

    @property
    def size_bytes(self) -> int:
        return len(self.wasm)


def _hello_proxy() -> Proxy:
    wasm = bytes(wasmtime.wat2wasm((GUEST_DIR / "proxy.wat").read_text()))
    return Proxy("proxy", wasm, 200, b"hello from wasmlab\n",
                 "hand-written in the component text format (guests/proxy/proxy.wat): wasi:http/incoming-handler@0.2.0")


PROXIES = {"proxy": _hello_proxy}


def proxy(name: str) -> Proxy:
    """The proxy component ``name``; one line naming the known ones when there is none."""
    if name not in PROXIES:
        raise allowed(name, "proxy component (--workload)", sorted(PROXIES))
    return PROXIES[name]()


def describe(name: str) -> str:
    """One line for the listing: size, what it answers, where it comes from."""
    made = proxy(name)
    return (f"{name}: a wasi:http proxy, {made.size_bytes} B, answers {made.status} {made.body!r} to every request; "
            f"{made.provenance}; served by `wasmlab serve` (wasmtime serve), not by the lab's call paths")
