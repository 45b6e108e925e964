"""The on-disk tier of the module cache: compiled artifacts for cold starts.

An artifact is ``Module.serialize()`` written next to a small JSON record of what produced it.
Its name carries the module's content hash and a fingerprint of the wasmtime version and the
engine's settings, so two configurations never share a file.  Before loading, the record must
match (wasmtime version, engine fingerprint, module hash); and wasmtime itself refuses an
artifact compiled with other settings.  Anything refused is counted as ``rejected`` and the
module is compiled again, then written back: a foreign artifact is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from importlib import metadata as _md
from pathlib import Path

import wasmtime
import wasmtime.component

from wasmlab.config import EngineConfig
from wasmlab.storage import atomic_write, project_root
from wasmlab.workloads.model import Workload


def default_folder() -> Path:
    return project_root(Path(__file__).resolve().parent) / "data" / "artifacts"


def engine_fingerprint(engine: EngineConfig) -> str:
    """What an artifact depends on: the wasmtime version and every engine setting."""
    record = {"wasmtime": _md.version("wasmtime"), "engine": engine.to_dict()}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class ArtifactStats:
    hits: int = 0
    misses: int = 0
    rejected: int = 0
    load_ns: int = 0
    compile_ns: int = 0


class ArtifactStore:
    """Compiled modules for one engine configuration, in ``folder``."""

    def __init__(self, folder: Path, engine: wasmtime.Engine, config: EngineConfig) -> None:
        self.folder = Path(folder)
        self.engine = engine
        self.fingerprint = engine_fingerprint(config)
        self.wasmtime_version = _md.version("wasmtime")
        self.stats = ArtifactStats()

    def path(self, workload: Workload) -> Path:
        return self.folder / f"{workload.sha256[:16]}-{self.fingerprint}.cwasm"

    def _record(self, workload: Workload) -> dict[str, str]:
        return {"wasmtime_version": self.wasmtime_version, "engine_fingerprint": self.fingerprint, "module_sha256": workload.sha256,
                "workload": workload.name}

    def load_or_compile(self, workload: Workload) -> wasmtime.Module | wasmtime.component.Component:
        """The module from its artifact if one was made by this exact configuration; else compiled and stored."""
        path = self.path(workload)
        record_path = path.with_suffix(".json")
        start = time.perf_counter_ns()
        if path.is_file():
            try:
                record = json.loads(record_path.read_text())
            except (OSError, ValueError):
                record = {}
            if record == self._record(workload):
                kind = wasmtime.component.Component if workload.component else wasmtime.Module
                try:
                    module = kind.deserialize_file(self.engine, str(path))
                except wasmtime.WasmtimeError:
                    self.stats.rejected += 1  # wasmtime's own check: compiled with other settings
                else:
                    self.stats.hits += 1
                    self.stats.load_ns += time.perf_counter_ns() - start
                    return module
            else:
                self.stats.rejected += 1
        start = time.perf_counter_ns()
        module = (wasmtime.component.Component if workload.component else wasmtime.Module)(self.engine, workload.wasm)
        self.stats.misses += 1
        self.stats.compile_ns += time.perf_counter_ns() - start
        serialized = bytes(module.serialize())
        atomic_write(path, lambda tmp: tmp.write_bytes(serialized))
        atomic_write(record_path, lambda tmp: tmp.write_text(json.dumps(self._record(workload), indent=2) + "\n"))
        return module
