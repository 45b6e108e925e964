"""The runtime axis: which WebAssembly runtime serves a variant (wasmtime, driven by the lab; V8, through Node.js;
Extism, through its Python SDK).

A variant of another runtime than wasmtime is keyed ``@<runtime>`` as a call path is (``cached@v8``).  Each runtime
names the variant tokens it serves and why it refuses the others, so a variant it cannot run is one line before
anything starts.  A new runtime is one more :class:`RuntimeKind` here and one host module in
:mod:`wasmlab.host.other_runtimes` (its builder and its notes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wasmlab.errors import ConfigError

WASMTIME = "wasmtime"


@dataclass(frozen=True)
class RuntimeKind:
    """A runtime on the axis: its name, what it is, and the variant tokens it refuses, each with the reason."""

    name: str
    description: str
    refused: Mapping[str, str] = field(default_factory=dict)
    allowed: str = "baseline, cached, each optionally +reuseN"

    def check(self, variant: str, tokens: Sequence[str]) -> None:
        """A one-line ConfigError when ``variant`` (its ``tokens``) asks this runtime for something it cannot do."""
        for token in tokens:
            if token in self.refused:
                raise ConfigError(f"variant {variant!r}: {token} is not served on {self.name}: {self.refused[token]}; allowed on "
                                  f"{self.name}: {self.allowed}")


RUNTIMES: dict[str, RuntimeKind] = {}


def register(kind: RuntimeKind) -> None:
    RUNTIMES[kind.name] = kind


register(RuntimeKind(WASMTIME, "wasmtime, driven by the lab through a call path (lean, api, native)"))
register(RuntimeKind("v8", "V8 through the machine's Node.js: WebAssembly.Module and new WebAssembly.Instance per request", {
    "pooled": "V8 has no pooling allocator knob from JavaScript",
    "disk": "the lab's compiled artifacts are wasmtime's",
    "wtcache": "wasmtime's compilation cache is wasmtime's",
    "pre": "the JS API has no InstancePre",
    "snapshot": "Wizer snapshots are served by the lab's wasmtime hosts only",
}))
register(RuntimeKind("extism", "Extism's Python SDK (libextism, with its own wasmtime): a plugin per request, or reused", {
    "pooled": "Extism's SDK exposes no pooling allocator knob (each plugin's engine is made by Extism)",
    "wtcache": "Extism's own disk cache is the variant 'disk' on extism",
    "pre": "Extism's SDK exposes no InstancePre (a CompiledPlugin is what it pre-compiles: the variant 'cached')",
    "snapshot": "Wizer snapshots are served by the lab's wasmtime hosts only",
}, "baseline, cached, disk (Extism's own disk cache), each optionally +reuseN"))


def runtime_names() -> tuple[str, ...]:
    return tuple(RUNTIMES)


def expand_runtimes(spec: str) -> tuple[str, ...]:
    """The runtimes a comma list names (``wasmtime,v8``); an unknown one is one line naming what is allowed."""
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    for name in names or (spec,):
        if name not in RUNTIMES:
            raise ConfigError(f"runtime {name!r} is not allowed; allowed: {', '.join(RUNTIMES)}, or a comma list such as wasmtime,v8")
    return names
