"""Pre-initialized modules: a workload with a start-up function served from its Wizer snapshot (the ``+snapshot`` variants).

A workload whose recipe names a start-up export (``init:``, default ``wizer.initialize``) calls it as the first step of
every request, on the request's fresh instance.  With ``+snapshot`` the lab runs Wizer once on the module
(``wizer --init-func INIT``): Wizer instantiates it, calls the start-up, and writes a module whose memory and globals
start as the start-up left them (and whose start-up export is gone).  Requests are then served from that snapshot
with the start-up step left out, so each request starts from the initialized state instead of computing it.

Snapshots are cached in ``snapshots/`` of the workloads cache, named by the digest of (the module's SHA-256, the
start-up's name, Wizer's SHA-256), beside a small JSON record of how long Wizer took; a second run reads them.
Wizer is the pinned binary ``wasmlab workloads fetch`` installs (:mod:`wasmlab.workloads.tools`), its digest
checked before each use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.host import compile_cost
from wasmlab.host.variant import Variant
from wasmlab.storage import atomic_write, write_json
from wasmlab.workloads import tools
from wasmlab.workloads.catalog import cache_dir
from wasmlab.workloads.model import Workload

TOOL = "wizer"
COMPILE_REPEATS = 3


@dataclass(frozen=True)
class Snapshot:
    """One module's snapshot: where it is, its size beside the module's, and what making it cost."""

    workload: str
    init: str
    path: Path
    module_bytes: int
    snapshot_bytes: int
    wizer_ms: float  # the time Wizer took when the snapshot was made (read back on a cache hit)
    cached: bool  # found in the cache rather than made by this process
    key: str
    # Compile times on a default engine, median of COMPILE_REPEATS each, taken when the runtime is built (outside any
    # request): what a host pays once per module, and what the snapshot's data segment adds to it.
    module_compile_ms: float = float("nan")
    snapshot_compile_ms: float = float("nan")

    def columns(self) -> dict[str, Any]:
        """The snapshot's columns of a summary row."""
        return {"snapshot_init": self.init, "snapshot_bytes": self.snapshot_bytes, "snapshot_module_bytes": self.module_bytes,
                "snapshot_wizer_ms": self.wizer_ms, "snapshot_cached": self.cached, "snapshot_key": self.key,
                "snapshot_module_compile_ms": self.module_compile_ms, "snapshot_compile_ms": self.snapshot_compile_ms}


def snapshots_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "snapshots"


def snapshot_key(module_sha256: str, init: str, wizer_sha256: str) -> str:
    """The cache key: a digest of the module, the start-up's name and the Wizer that made the snapshot."""
    return hashlib.sha256(f"{module_sha256}\0{init}\0{wizer_sha256}".encode()).hexdigest()


def check_snapshottable(workload: Workload, variant: Variant) -> None:
    """One line when ``variant`` asks for a snapshot of a workload that has nothing to snapshot."""
    if workload.component:
        raise ConfigError(f"variant {variant.name!r}: workload {workload.name!r} is a component; allowed: +snapshot for a core "
                          f"module with a start-up export (Wizer snapshots core modules)")
    if not workload.init:
        raise ConfigError(f"variant {variant.name!r}: workload {workload.name!r} has no start-up export to snapshot; allowed: "
                          f"+snapshot for a module exporting wizer.initialize, or a recipe naming its start-up (init: EXPORT)")


def _run_wizer(wizer: Path, workload: Workload, output: Path) -> float:
    """Run Wizer on ``workload``'s module into ``output``; the milliseconds it took."""
    with tempfile.TemporaryDirectory(prefix="wasmlab-wizer-") as scratch:
        source = Path(scratch) / "input.wasm"
        source.write_bytes(workload.wasm)
        command = [str(wizer), str(source), "-o", str(output), "--init-func", workload.init]
        if workload.wasi:
            command.append("--allow-wasi")
        start = time.perf_counter_ns()
        done = subprocess.run(command, capture_output=True, text=True)
        took = (time.perf_counter_ns() - start) / 1e6
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise ConfigError(f"Wizer could not snapshot workload {workload.name!r} (init {workload.init}): "
                          f"{(lines or ['exit status ' + str(done.returncode)])[0].strip()}")
    return took


def compile_ms(wasm: bytes, repeats: int = COMPILE_REPEATS) -> float:
    """The median time to compile ``wasm`` on a fresh default engine (:mod:`wasmlab.host.compile_cost`)."""
    return compile_cost.measure(wasm, repeats=repeats, budget_s=float("inf")).median_ms


def with_compile_times(snapshot: Snapshot, workload: Workload) -> Snapshot:
    return dataclasses.replace(snapshot, module_compile_ms=compile_ms(workload.wasm),
                               snapshot_compile_ms=compile_ms(snapshot.path.read_bytes()))


def take(workload: Workload, folder: Path | None = None) -> Snapshot:
    """The snapshot of ``workload`` after its start-up ran: from ``folder`` (default: the workloads cache's
    ``snapshots/``), or made now with the installed Wizer and kept there."""
    wizer = tools.installed(TOOL)
    key = snapshot_key(workload.sha256, workload.init, tools.tool(TOOL).sha256)
    folder = folder or snapshots_dir()
    path, record = folder / f"{key[:40]}.wasm", folder / f"{key[:40]}.json"
    if path.is_file() and record.is_file():
        made = json.loads(record.read_text())
        return Snapshot(workload.name, workload.init, path, workload.size_bytes, path.stat().st_size, float(made["wizer_ms"]), True, key)
    folder.mkdir(parents=True, exist_ok=True)
    took = 0.0

    def snapshot_into(tmp: Path) -> None:
        nonlocal took
        took = _run_wizer(wizer, workload, tmp)
    atomic_write(path, snapshot_into)
    write_json({"wizer_ms": took, "module_sha256": workload.sha256, "init": workload.init, "workload": workload.name,
                "wizer": f"{tools.tool(TOOL).package}@{tools.tool(TOOL).version}"}, record)
    return Snapshot(workload.name, workload.init, path, workload.size_bytes, path.stat().st_size, took, False, key)


def from_snapshot(workload: Workload, snapshot: Snapshot) -> Workload:
    """``workload`` served from ``snapshot``: its module the snapshot's bytes, its request without the start-up step."""
    recipe = workload.recipe
    steps = recipe.steps[1:]
    signatures = {name: types for name, types in recipe.signatures.items() if name != workload.init}
    served = dataclasses.replace(recipe, steps=steps, init=None, signatures=signatures)
    return dataclasses.replace(workload, wasm=snapshot.path.read_bytes(), sha256="", recipe=served, init="",
                               provenance=f"{workload.provenance}; served from its Wizer snapshot (init {workload.init} run once)")


def served(workloads: list[Workload], variant: Variant, folder: Path | None = None) -> tuple[list[Workload], list[Snapshot]]:
    """What ``variant`` serves for ``workloads``: each as it is, or, for a ``+snapshot`` variant, from its snapshot."""
    if not variant.snapshot:
        return workloads, []
    for workload in workloads:
        check_snapshottable(workload, variant)
    snapshots = [with_compile_times(take(w, folder), w) for w in workloads]
    return [from_snapshot(w, s) for w, s in zip(workloads, snapshots, strict=True)], snapshots
