"""What compiling a module or component costs: the time to compile it on a fresh default engine (wasmtime's defaults:
Cranelift, parallel compilation, no cache of any kind) and the size of the compiled artifact a host would keep in its
module cache or on disk (``serialize()``).

Each compile gets a fresh engine so nothing wasmtime keeps per engine answers the next one.  A big module takes seconds
to compile, so compiles stop at ``repeats`` or once ``budget_s`` is spent, whichever is first (at least one); the
median and the range of the compiles made are reported with their count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import wasmtime
import wasmtime.component


@dataclass(frozen=True)
class CompileCost:
    """Milliseconds per compile (median, fastest, slowest of ``compiles``) and the compiled artifact's bytes."""

    median_ms: float
    low_ms: float
    high_ms: float
    compiles: int
    artifact_bytes: int

    def to_dict(self) -> dict[str, float | int]:
        return {"compile_ms_median": round(self.median_ms, 3), "compile_ms_low": round(self.low_ms, 3),
                "compile_ms_high": round(self.high_ms, 3), "compiles": self.compiles, "artifact_bytes": self.artifact_bytes}

    def render(self) -> str:
        how = (f"median of {self.compiles} ({self.low_ms:,.1f}-{self.high_ms:,.1f}), each on a fresh default engine"
               if self.compiles > 1 else "one compile on a fresh default engine (a second would overrun the time budget)")
        return f"compiles in {self.median_ms:,.1f} ms, {how}; compiled artifact {self.artifact_bytes:,} B"


def compile_once(wasm: bytes, component: bool) -> tuple[float, wasmtime.Module | wasmtime.component.Component]:
    engine = wasmtime.Engine()
    start = time.perf_counter_ns()
    compiled = wasmtime.component.Component(engine, wasm) if component else wasmtime.Module(engine, wasm)
    return (time.perf_counter_ns() - start) / 1e6, compiled


def measure(wasm: bytes, component: bool = False, repeats: int = 3, budget_s: float = 2.0) -> CompileCost:
    """Compile ``wasm`` up to ``repeats`` times within ``budget_s`` (at least once) and serialize the last."""
    times: list[float] = []
    began = time.perf_counter()
    while True:
        took, compiled = compile_once(wasm, component)
        times.append(took)
        if len(times) >= repeats or time.perf_counter() - began >= budget_s:
            break
    return CompileCost(statistics.median(times), min(times), max(times), len(times), len(compiled.serialize()))
