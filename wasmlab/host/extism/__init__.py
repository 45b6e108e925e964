"""The Extism runtime: requests served by the Extism Python SDK (PyPI ``extism``, over ``extism-sys``'s libextism,
which bundles a wasmtime of its own), timed in Python as the lean path times its requests.

Each workload becomes a plugin of two modules, the guest and an adapter Extism can call (:mod:`.adapter`), and every
request's output is read back and checked against the workload's expectation (a wrong one stops the variant with
ResultMismatch, as on the lab's own paths).  A request's time (``perf_counter_ns``) covers the plugin's creation, the
call, reading its output, the check and dropping the plugin:

- ``baseline@extism``: a plugin made from the manifest bytes per request, Extism's compilation cache off (a new
  wasmtime engine, and Extism's kernel, the guest and the adapter compiled, on every request);
- ``disk@extism``: the same, with Extism's own disk cache on (wasmtime's cache, in a folder of the variant:
  :mod:`.cache_config`), so a request deserializes what an earlier one compiled;
- ``cached@extism``: a plugin made per request from one ``CompiledPlugin`` per workload (compiled on the first request);
- ``+reuseN``: one plugin (and its instances) serves N requests of its workload in a row.

Extism's SDK exposes no pooling allocator, no InstancePre, no Wizer snapshots and no per-request limits of the lab's
kind; those variants are refused in one line (:mod:`wasmlab.host.runtime_axis`), as are guests other than core
modules without imports whose entry takes and returns i32/i64.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from wasmlab.config import CacheConfig, EngineConfig, Limits
from wasmlab.errors import CompileError, ConfigError, NativeFailure, ResultMismatch
from wasmlab.host.cache import ModuleCache
from wasmlab.host.callpaths.base import learned_or_mismatch
from wasmlab.host.callpaths.reuse import ReuseLedger
from wasmlab.host.engine import EnginePool
from wasmlab.host.extism import adapter
from wasmlab.host.extism.cache_config import CacheSetting
from wasmlab.host.hosted import SERVED, HostedParts, HostedRuntime, refuse_limits, unserved_kind
from wasmlab.host.variant import Variant
from wasmlab.workloads.model import Workload

NAME = "extism"
# What an ``@extism`` result's call_path column says: requests go through the Extism Python SDK.
CALL_PATH = "extism-sdk"
ALLOWED = SERVED + " (served through an adapter module Extism calls)"
CACHE_OFF = ("baseline@extism makes a plugin from the manifest bytes per request with Extism's compilation cache off "
             "(EXTISM_CACHE_CONFIG empty): a new wasmtime engine and a compile of Extism's kernel, the guest and its adapter "
             "on every request")
DISK_CACHE = ("disk@extism makes a plugin from the manifest bytes per request with Extism's disk cache on, pinned to a "
              "folder of this run (EXTISM_CACHE_CONFIG), removed after it")


def refusal(workload: Workload) -> str | None:
    """Why the Extism runtime cannot serve ``workload`` (one line naming what is allowed), or ``None``."""
    kind = unserved_kind(workload)
    if kind is not None and kind.startswith("a WASI guest"):
        kind = "a WASI guest (Extism's WASI takes no argv or stdin and sends a command's stdout to the host's or nowhere, so its output could not be checked)"
    return None if kind is None else f"workload {workload.name!r} is {kind}; the extism runtime serves {ALLOWED}"


@cache
def extism_version() -> str:
    import extism

    return str(extism.extism_version())


@cache
def embedded_wasmtime_version() -> str:
    """The wasmtime release libextism is built with, read from the library's own strings (its crates' source paths
    name ``wasmtime-NN.N.N``); "" if none is found."""
    import extism_sys

    library = Path(extism_sys.__file__).with_name("libextism_sys.so")
    try:
        found = re.findall(rb"wasmtime-(\d+\.\d+\.\d+)[/\\]", library.read_bytes())
    except OSError:
        return ""
    return max(set(found), key=found.count).decode() if found else ""


class ExtismRuntime(HostedRuntime):
    """One ``@extism`` variant: its plugins made as the variant says, every request timed and checked in Python."""

    runtime_name = NAME
    call_path = CALL_PATH
    node_version = ""

    def __init__(self, variant: Variant, workloads: Sequence[Workload], engine: Any, manifests: Sequence[bytes] | None = None) -> None:
        import extism
        from extism.extism import CompiledPlugin

        for workload in workloads:
            reason = refusal(workload)
            if reason:
                raise ConfigError(reason)
        self.variant, self.workloads = variant, list(workloads)
        self.engine = engine  # a wasmtime engine for the harness's timer calibration only: no request touches it
        self.memory_limit = None
        self.sdk, self.compiled_kind = extism, CompiledPlugin
        # The manifests are made here, before any request: the lab's work, not Extism's.
        self.manifests = list(manifests) if manifests is not None else [adapter.manifest(w) for w in self.workloads]
        # What each workload's result is compared with, as on the lab's own paths: its expected value, a FirstResult
        # replaced by the first request's result, or None (not checked).
        self.targets: list[object] = [w.expectation.compared_with() if w.results else None for w in self.workloads]
        self.compiled: dict[int, Any] = {}  # cached: one CompiledPlugin per workload, made on its first request
        self.kept: dict[int, list[Any]] = {}  # +reuseN: each workload's plugin and the requests it served
        self.cache: ModuleCache[object] = ModuleCache(CacheConfig(policy="lru", size=len(self.workloads)) if variant.cached
                                                      else CacheConfig(policy="none"))
        self.parts = HostedParts(ReuseLedger(variant.reuse) if variant.reuse > 1 else None)
        self.setting = CacheSetting(disk=variant.disk)
        self.closed = False

    @property
    def runtime_version(self) -> str:
        return extism_version()

    @property
    def wasmtime_version(self) -> str:
        return embedded_wasmtime_version()

    def handle(self, index: int) -> None:
        """One request, as a block of one (warm-up): a trap raises as the lab's paths raise it."""
        failures: list[tuple[int, BaseException]] = []
        self.block([index], [0], failures)
        if failures:
            raise failures[0][1]

    def _plugin(self, index: int) -> Any:
        """A new plugin for workload ``index``: from its manifest bytes, or from its CompiledPlugin (made on a miss)."""
        try:
            if not self.variant.cached:
                return self.sdk.Plugin(self.manifests[index], functions=[])
            compiled = self.compiled.get(index)
            if compiled is None:
                compiled = self.compiled[index] = self.compiled_kind(self.manifests[index], functions=[])
                self.cache.stats.misses += 1
            else:
                self.cache.stats.hits += 1
            return self.sdk.Plugin(compiled, functions=[])
        except self.sdk.Error as exc:  # not a request failure: the variant cannot run at all
            raise CompileError(f"{self.variant.name}: Extism could not make a plugin of {self.workloads[index].name!r}: {exc}") from exc

    def _wrong(self, index: int, output: bytes) -> str | None:
        """What is wrong with request output ``output`` of workload ``index`` (checked as the lab's own paths check a
        result: :func:`~wasmlab.host.callpaths.base.learned_or_mismatch`), or ``None``."""
        workload, target = self.workloads[index], self.targets[index]
        value = adapter.decoded(output, workload)
        if target is None or value == target:
            return None
        try:
            self.targets[index] = learned_or_mismatch(workload.name, value, target, workload.check == "first-result")
        except ResultMismatch as exc:
            return str(exc)
        return None

    def block(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None = None) -> int:
        """Serve ``indices``; each request's ns into ``out``, traps into ``failures``; the block's wall ns.  A wrong
        result raises ResultMismatch.  Plugins kept by +reuseN are dropped before and after, outside every time."""
        with self.setting.applied():
            self._drop_kept()
            try:
                return self._timed(indices, out, failures)
            finally:
                self._drop_kept()

    def _timed(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None) -> int:
        clock, reuse, kept, error = time.perf_counter_ns, self.variant.reuse, self.kept, self.sdk.Error
        fresh: list[bool] = []
        start = clock()
        for k, index in enumerate(indices):
            t0 = clock()
            held = kept.pop(index, None)
            fresh.append(held is None)
            plugin, served = held if held is not None else (self._plugin(index), 0)
            try:
                output = plugin.call(adapter.EXPORT, b"")
            except error as exc:
                plugin.__del__()  # a plugin whose call failed is not reused
                out[k] = clock() - t0
                failure = NativeFailure("trap", f"{self.variant.name}: {(str(exc).splitlines() or [''])[0]}")
                if failures is None:
                    raise failure from exc
                failures.append((k, failure))
                continue
            if served + 1 < reuse:
                kept[index] = [plugin, served + 1]
            else:
                plugin.__del__()
            wrong = self._wrong(index, output)
            out[k] = clock() - t0
            if wrong is not None:
                raise ResultMismatch(f"{wrong} (request {k + 1} of a block of {len(indices)}, {self.variant.name})")
        wall = clock() - start
        if self.parts.ledger is not None:
            self.parts.ledger.extend(fresh, [False] * len(fresh))
        return wall

    def _drop_kept(self) -> None:
        for plugin, _ in self.kept.values():
            plugin.__del__()
        self.kept.clear()

    def close(self) -> None:
        """Drop every plugin and compiled plugin this variant holds, and remove its disk cache folder."""
        if not self.closed:
            self.closed = True
            self._drop_kept()
            for compiled in self.compiled.values():
                compiled.__del__()
            self.compiled.clear()
            self.setting.close()


def build(v: Variant, workloads: Sequence[Workload], cache: CacheConfig, limits: Limits, engines: EnginePool, engine: EngineConfig,
          built: Mapping[str, Any]) -> ExtismRuntime:
    """The runtime of ``@extism`` variant ``v``: a refused workload or limit is one line before anything is made."""
    for reason in filter(None, (refusal(w) for w in workloads)):
        raise ConfigError(reason)
    refuse_limits(v.name, NAME, limits)
    return ExtismRuntime(v, workloads, engines.get(engine.replace(allocator="on-demand")))


def notes(variants: Sequence[Variant]) -> list[str]:
    """What a run's output says of how its extism variants compile."""
    ours = [v for v in variants if v.runtime == NAME]
    return ([CACHE_OFF] if any(v.composition.startswith("baseline") for v in ours) else []) + \
           ([DISK_CACHE] if any(v.disk for v in ours) else [])
