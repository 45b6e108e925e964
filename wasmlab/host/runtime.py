"""A runtime: serves requests for a set of workloads as one variant does, through one call path.

It only chooses: the engine comes from :mod:`~wasmlab.host.engine`, compiled modules from a
:class:`~wasmlab.host.modules.ModuleSource` (memory cache, disk artifacts, ``InstancePre``), store
set-up from :class:`~wasmlab.host.store.StoreSetup`, the exhaustion policy from
:class:`~wasmlab.host.waiting.SlotWait`, and the request handlers from the call-path strategy in
:mod:`wasmlab.host.callpaths`.  Every request does the full job (get the compiled module, new store,
instantiate, look the export up, call, drop the store) and its result is checked against the
workload's expected value, so no variant can skip work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import wasmtime

from wasmlab.config import CacheConfig, EngineConfig, Limits
from wasmlab.errors import ConfigError
from wasmlab.host import callpaths, other_runtimes, snapshot
from wasmlab.host.artifacts import ArtifactStore
from wasmlab.host.artifacts import default_folder as default_artifact_folder
from wasmlab.host.cache import ModuleCache
from wasmlab.host.engine import EnginePool
from wasmlab.host.linking import Linkers
from wasmlab.host.modules import Compiled, ModuleSource
from wasmlab.host.pool_sizing import sized_for
from wasmlab.host.runtime_axis import WASMTIME
from wasmlab.host.store import StoreSetup
from wasmlab.host.variant import NAMED_VARIANTS, Variant, engine_config_for, parse_variant
from wasmlab.host.waiting import SlotWait
from wasmlab.workloads.model import Workload


def wasmtime_version() -> str:
    """The wasmtime release the lab drives (wasmtime-py's, whose libwasmtime the call paths load)."""
    from importlib.metadata import version

    return version("wasmtime")


# wasm32's largest memory: where a guest's growth fails when nothing smaller limits it.
WASM32_MEMORY = 4 << 30


class Runtime:
    """Serves requests for ``workloads`` as ``variant`` does, through ``call_path``.

    ``handle(i)`` runs one full request of workload ``i`` and returns the guest's result;
    ``handle_phased(i, stamps)`` does the same and writes one ``perf_counter_ns`` stamp at the start
    and after each of :data:`~wasmlab.host.callpaths.PHASES` into ``stamps``.  A request that fails raises
    wasmtime's trap or error (:func:`~wasmlab.host.outcomes.classify` names it); the store is dropped
    and its pool slot returned either way.
    """

    # The runtime axis (wasmlab.host.runtime_axis): this one is wasmtime, through wasmtime-py's libwasmtime.
    runtime_name = WASMTIME
    node_version = ""

    def __init__(self, variant: Variant, engine: wasmtime.Engine, cache: CacheConfig, workloads: Sequence[Workload],
                 call_path: str = "lean", shared_cache: ModuleCache[Compiled] | None = None, limits: Limits = Limits(),
                 memory_limit: int | None = None, artifacts: ArtifactStore | None = None) -> None:
        self.variant = variant
        self.engine = engine
        self.call_path = callpaths.check_call_path(call_path)
        # A +snapshot variant serves each workload from its Wizer snapshot, its start-up step left out (wasmlab.host.snapshot).
        self.workloads, self.snapshots = snapshot.served(list(workloads), variant)
        # The memory size at which a guest's growth fails: store limiter, pool, or wasm32's 4 GiB.
        bounds = [b for b in (limits.memory_bytes, memory_limit) if b is not None]
        self.memory_limit = min(bounds) if bounds else WASM32_MEMORY
        if variant.cached and cache.policy == "none":
            raise ConfigError(f"variant {variant.name!r} caches, but cache policy is 'none'; choose another policy or a variant without 'cached'")
        if variant.disk and artifacts is None:
            raise ConfigError(f"variant {variant.name!r} needs an artifact store (the folder for compiled artifacts)")
        # A shared cache serves the runtimes (threads) of one engine: compiled modules belong to an engine.
        self.cache: ModuleCache[Compiled] = (shared_cache if shared_cache is not None and variant.cached
                                             else ModuleCache(cache if variant.cached else CacheConfig(policy="none")))
        linkers = Linkers(engine, self.workloads, pre=variant.pre)
        self.modules = ModuleSource(engine, self.cache, linkers, artifacts if variant.disk else None, variant.pre, variant.name)
        self.store = StoreSetup(engine, limits)
        self.waiting = SlotWait(limits.exhaustion, limits.wait_timeout_ms)
        self.parts = callpaths.RequestParts(engine, self.modules, self.store, self.waiting, linkers, variant.pre, variant.name,
                                            reuse=variant.reuse)
        try:
            handlers = callpaths.bind(self.call_path, self.parts, self.workloads)
            self.handle, self.handle_phased = handlers.handle, handlers.handle_phased
            # A path that times its own requests (native) serves whole blocks; else the harness times ``handle``.
            self.block: callpaths.BlockServer | None = handlers.block
            self.block_phased: callpaths.PhasedBlockServer | None = handlers.block_phased
        except BaseException:
            self.close()
            raise

    @property
    def runtime_version(self) -> str:
        return wasmtime_version()

    @property
    def wasmtime_version(self) -> str:
        return wasmtime_version()

    @property
    def snapshot_columns(self) -> dict[str, object]:
        """A +snapshot variant's snapshot figures for its summary rows (its first workload's); empty for the others."""
        return self.snapshots[0].columns() if self.snapshots else {}

    @property
    def limits(self) -> Limits:
        """What one request may use (read by the store set-up for every new store)."""
        return self.store.limits

    @property
    def artifacts(self) -> ArtifactStore | None:
        return self.modules.artifacts

    @property
    def pool_waits(self) -> int:
        return self.waiting.waits

    @property
    def pool_wait_ns(self) -> int:
        return self.waiting.wait_ns

    @property
    def step_stamps(self) -> dict[int, list[int]]:
        """Per workload index with recipe steps: the stamps of its last phased request's steps (start, then after
        each step that ran); empty for a path that stamps no steps (native: a recipe's steps are its call phase)."""
        return self.parts.step_stamps

    def compile(self, workload: Workload) -> Compiled:
        """Compile ``workload`` on this runtime's engine (and pre-instantiate it if the variant does)."""
        return self.modules.compile(workload)

    def close(self) -> None:
        """Stop the epoch ticker, if any, and remove what the call path allocated (WASI output files)."""
        self.store.close()
        while self.parts.cleanup:
            self.parts.cleanup.pop()()


def build_runtimes(variants: Sequence[str], engine: EngineConfig, cache: CacheConfig, workloads: Sequence[Workload],
                   call_path: str = "lean", engines: EnginePool | None = None, limits: Limits = Limits(),
                   artifact_dir: Path | None = None) -> dict[str, Any]:
    """One ``Runtime`` per variant name (another runtime's for an ``@v8`` or ``@extism`` one: :mod:`.other_runtimes`),
    validated before any engine is built; on a failure, what was built is closed (v8's node child stopped)."""
    parsed = [parse_variant(v) for v in variants]
    callpaths.check_call_path(call_path)
    if not parsed:
        raise ConfigError("no variants given; allowed: " + ", ".join(NAMED_VARIANTS))
    names = [v.name for v in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"variant list {list(variants)} names a variant twice")
    engines = engines or EnginePool()
    runtimes: dict[str, Any] = {}
    try:
        for v in parsed:
            runtimes[v.name] = _built(v, engine, cache, workloads, call_path, engines, limits, artifact_dir, runtimes)
    except BaseException:
        for built in runtimes.values():
            built.close()
        raise
    return runtimes


def _built(v: Variant, engine: EngineConfig, cache: CacheConfig, workloads: Sequence[Workload], call_path: str, engines: EnginePool,
           limits: Limits, artifact_dir: Path | None, built: dict[str, Any]) -> Any:
    """The runtime of variant ``v``: wasmtime's, or another runtime's of the axis (built by its host, which may share
    what the run's runtimes already ``built`` hold: v8's node child)."""
    host = other_runtimes.HOSTS.get(v.runtime)
    if host is not None:
        return host.build(v, workloads, cache, limits, engines, engine, built)
    config = sized_for(engine_config_for(v, engine, limits), workloads)
    engine_object = engines.get(config)
    artifacts = ArtifactStore(artifact_dir or default_artifact_folder(), engine_object, config) if v.disk else None
    return Runtime(v, engine_object, cache, workloads, v.call_path or call_path, limits=limits,
                   memory_limit=config.pool.max_memory_size if config.pooled else None, artifacts=artifacts)
