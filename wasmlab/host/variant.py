"""A variant: one composition of independent choices (allocator x module source x instantiation), not a class per row.

``baseline`` compiles on every request with the on-demand allocator; ``pooled`` takes memories and
instances from the pooling allocator; ``cached`` keeps compiled modules in memory; ``disk`` loads
compiled artifacts from disk; ``wtcache`` uses wasmtime's own compilation cache; ``pre`` makes an
``InstancePre`` once per module; ``snapshot`` serves a module with a start-up function (``init``) from its Wizer
snapshot instead of calling the start-up on every request (:mod:`wasmlab.host.snapshot`); ``reuseN`` (N >= 1) lets an
instance, with its store, serve N requests in a row before it is dropped and a fresh one made (``reuse1``, the
default, is a fresh instance per request).  A suffix ``@lean`` or ``@api`` (any registered call path) pins the
variant to a call path whatever the run's default is, so paths can be measured side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wasmlab.config import EngineConfig, Limits
from wasmlab.errors import ConfigError, allowed
from wasmlab.host.callpaths import call_paths
from wasmlab.host.runtime_axis import RUNTIMES, WASMTIME

NAMED_VARIANTS = ("baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre")
# The canonical order of a variant's tokens (and so of its name).
TOKENS = ("pooled", "cached", "disk", "wtcache", "pre", "snapshot")


@dataclass(frozen=True)
class Variant:
    """One composition of the independent choices, optionally pinned to a call path."""

    name: str
    pooled: bool
    cached: bool
    pre: bool
    call_path: str | None = None
    disk: bool = False
    wasmtime_cache: bool = False
    snapshot: bool = False
    # How many requests in a row one instance (and its store) serves: 1 is a fresh instance per request.
    reuse: int = 1
    # The runtime that serves it: wasmtime (through a call path), or another runtime of the axis (``@v8``).
    runtime: str = WASMTIME

    @property
    def allocator(self) -> str:
        return "pooling" if self.pooled else "on-demand"

    @property
    def instantiation(self) -> str:
        return "pre" if self.pre else "instance"

    @property
    def composition(self) -> str:
        """The name without its call-path pin."""
        return self.name.partition("@")[0]


REUSE = "reuse"


def reuse_of(name: str, tokens: list[str]) -> tuple[list[str], int]:
    """``tokens`` without their ``reuseN`` token, and N (1 without one); a bad N is one line."""
    found = [t for t in tokens if t.startswith(REUSE)]
    if not found:
        return tokens, 1
    digits = found[0][len(REUSE):]
    if len(found) > 1 or not digits.isascii() or not digits.isdigit() or int(digits) < 1 or int(digits) > MAX_REUSE:
        raise ConfigError(f"variant {name!r}: {'+'.join(found)!r} is not a reuse setting; allowed: reuseN with N an integer "
                          f"from 1 (a fresh instance per request) to {MAX_REUSE}")
    return [t for t in tokens if t != found[0]], int(digits)


# The most requests one instance may serve: past it, a run is one instance, and the choice says nothing more.
MAX_REUSE = 1_000_000


def suffixes() -> str:
    """The ``@`` suffixes a variant may carry: every call path, then every runtime other than wasmtime."""
    return ", ".join(f"@{p}" for p in (*call_paths(), *(r for r in RUNTIMES if r != WASMTIME)))


def parse_variant(name: str) -> Variant:
    """``baseline`` or a ``+``-joined combination of :data:`TOKENS`, optionally ``+reuseN``, optionally ``@<call path>``."""
    composition, at, path = name.partition("@")
    runtime = path if at and path in RUNTIMES and path != WASMTIME else WASMTIME
    if at and runtime == WASMTIME and path not in call_paths():
        raise ConfigError(f"variant {name!r}: '@{path}' is neither a call path nor a runtime; allowed: "
                          + suffixes())
    suffix = f"@{path}" if at else ""
    tokens, reuse = reuse_of(name, composition.split("+"))
    reuse_suffix = f"+{REUSE}{reuse}" if reuse > 1 else ""
    if runtime != WASMTIME:
        RUNTIMES[runtime].check(name, tokens)
        path = ""  # not a call path: the runtime's own host serves the variant
    if tokens == ["baseline"]:
        return Variant("baseline" + reuse_suffix + suffix, False, False, False, path or None, reuse=reuse, runtime=runtime)
    composition = "+".join(tokens)
    if not composition or any(t not in TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
        raise allowed(name, "variant", NAMED_VARIANTS + ("any '+'-joined combination of pooled, cached, disk, wtcache, pre, "
                                                         "snapshot, optionally +reuseN, optionally "
                                                         + suffixes(),))
    if "disk" in tokens and "wtcache" in tokens:
        raise ConfigError(f"variant {name!r} combines two disk caches; allowed: disk (the lab's artifacts) or wtcache (wasmtime's), not both")
    canonical = "+".join(t for t in TOKENS if t in tokens)
    return Variant(canonical + reuse_suffix + suffix, "pooled" in tokens, "cached" in tokens, "pre" in tokens, path or None,
                   "disk" in tokens, "wtcache" in tokens, snapshot="snapshot" in tokens, reuse=reuse, runtime=runtime)


def engine_config_for(variant: Variant, base: EngineConfig, limits: Limits = Limits()) -> EngineConfig:
    """``base`` with the allocator the variant asks for, and the engine features the limits need."""
    return base.replace(
        allocator=variant.allocator,
        compilation_cache=base.compilation_cache or variant.wasmtime_cache,
        consume_fuel=base.consume_fuel or limits.fuel is not None,
        epoch_interruption=base.epoch_interruption or limits.deadline_ms is not None,
        max_wasm_stack=limits.max_wasm_stack if limits.max_wasm_stack is not None else base.max_wasm_stack,
    )


def with_runtimes(variants: Sequence[str], runtimes: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every variant without a pin on wasmtime (when listed) and again keyed ``@<runtime>`` for each other runtime,
    and one note per variant a runtime refuses (left out of the run: ``pooled`` on V8); pinned variants stay as given."""
    plain = [v for v in variants if "@" not in v]
    out = [v for v in variants if "@" in v or WASMTIME in runtimes]
    notes = []
    for runtime in runtimes:
        if runtime == WASMTIME:
            continue
        for v in plain:
            try:
                out.append(parse_variant(f"{v}@{runtime}").name)
            except ConfigError as refused:
                notes.append(str(refused).split("; allowed")[0] + " (left out)")
    return tuple(dict.fromkeys(out)), tuple(notes)
