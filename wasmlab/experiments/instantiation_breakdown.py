"""Notebook 04: where a request's time goes, per setting: compile with each compiler and opt level,
deserialize, load an artifact from disk, a cache hit, and new store, instantiate, call and drop with
each allocator (phases timed on the lean path)."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import wasmtime

from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.host.artifacts import ArtifactStore
from wasmlab.host.cache import ModuleCache
from wasmlab.host.callpaths import PHASES
from wasmlab.host.engine import build_engine
from wasmlab.host.runtime import Runtime
from wasmlab.host.variant import parse_variant
from wasmlab.measure.calibrate import median_ns
from wasmlab.workloads import load_workload

COMPILERS = (("cranelift", "none"), ("cranelift", "speed"), ("cranelift", "speed_and_size"), ("winch", "speed"))
INSTANTIATIONS = (
    ("on-demand", "on-demand", True),
    ("pooling", "pooling", False),
    ("pooling+cow", "pooling", True),
)


def instantiation_breakdown(workload: str, repeats: int = 20, requests: int = 200, slots: int = 4) -> list[dict[str, Any]]:
    """Per operation, the median µs for ``workload``: compile with each compiler and opt level,
    deserialize a serialized module, a cache hit, and instantiate + call + drop with each
    allocator (lean path, phases timed separately)."""
    wl = load_workload(workload)
    rows: list[dict[str, Any]] = []

    def add(operation: str, setting: str, ns: float, note: str = "") -> None:
        rows.append({"workload": wl.name, "workload_bytes": wl.size_bytes, "operation": operation, "setting": setting,
                     "median_us": ns / 1000, "repeats": repeats, "note": note})

    for compiler, opt in COMPILERS:
        engine = build_engine(EngineConfig(compiler=compiler, opt_level=opt, parallel_compilation=False))
        setting = f"{compiler}/{opt}" if compiler == "cranelift" else compiler
        try:
            add("compile", setting, median_ns(functools.partial(wasmtime.Module, engine, wl.wasm), repeats))
        except wasmtime.WasmtimeError as exc:
            # e.g. Winch does not support wasm exception handling, which C++ guests use.
            add("compile", setting, float("nan"), note="unsupported: " + str(exc).strip().splitlines()[-1].strip())
    engine = build_engine(EngineConfig())
    serialized = bytes(wasmtime.Module(engine, wl.wasm).serialize())
    add("deserialize", "Module.deserialize", median_ns(lambda: wasmtime.Module.deserialize(engine, serialized), repeats))
    with tempfile.TemporaryDirectory(prefix="wasmlab-artifacts-") as folder:
        artifacts = ArtifactStore(Path(folder), engine, EngineConfig())
        artifacts.load_or_compile(wl)
        add("load from disk", "artifact (deserialize_file)", median_ns(lambda: artifacts.load_or_compile(wl), repeats))
    cache: ModuleCache[Any] = ModuleCache(CacheConfig(policy="lru", size=4))
    cache.get(wl.sha256, lambda w: w, wl)
    add("cache hit", "lru", median_ns(lambda: cache.get(wl.sha256, lambda w: w, wl), max(repeats, 1000)))
    for label, allocator, cow in INSTANTIATIONS:
        config = EngineConfig(allocator=allocator, memory_init_cow=cow, pool=PoolConfig(slots=slots))
        runtime = Runtime(parse_variant("pooled+cached" if allocator == "pooling" else "cached"), build_engine(config), CacheConfig(), [wl])
        stamps = [0] * (len(PHASES) + 1)
        runtime.handle(0)  # compiles; the next request is the first on a warm cache but fresh code pages
        runtime.handle_phased(0, stamps)
        add("first call", label, float(stamps[5] - stamps[4]))
        for _ in range(min(requests, 50)):
            runtime.handle(0)
        durations: dict[str, list[int]] = {phase: [] for phase in PHASES}
        for _ in range(requests):
            runtime.handle_phased(0, stamps)
            for i, phase in enumerate(PHASES):
                durations[phase].append(stamps[i + 1] - stamps[i])
        for phase in ("new_store", "instantiate", "call", "drop_store", "read_output"):
            add(phase, label, float(np.median(durations[phase])))
        runtime.close()
    return rows


def synthetic_specs(function_counts: Sequence[int], data_kib: Sequence[int]) -> list[str]:
    """The seed, compile-heavy modules with each number of functions and data-heavy ones with each data size."""
    return (["seed"] + [f"compile-heavy:functions={n}" for n in function_counts]
            + [f"data-heavy:kib={k}" for k in data_kib])
