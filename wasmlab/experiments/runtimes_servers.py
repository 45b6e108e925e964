"""Notebook 11's measurements: one guest on several runtimes side by side, and a real ``wasmtime serve`` under load.

The runtimes run as ``wasmlab reproduce --runtime`` runs them (every variant on every runtime, interleaved in each
repetition, every result checked); the server as ``wasmlab serve`` runs it (a ``wasi:http`` proxy component on
loopback, every response checked, stopped by its PID).  Nothing here measures differently from those commands: the
notebook is their figures in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from wasmlab.experiments.serve import ServeRun, ServeSettings, run_serve
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.scenario import run as measure


def runtimes_side_by_side(workload: str, runtimes: str, variants: str, call_path: str, requests: int, repeats: int,
                          warmup: int, slots: int) -> Measurement:
    """``variants`` of ``workload`` on each of ``runtimes`` (a comma list: ``wasmtime,v8``), interleaved; what a runtime
    cannot serve (``pooled`` on v8) is left out with a note in the metadata, as ``reproduce --runtime`` does."""
    scenario = Scenario(workload=workload, variants=variants, requests=requests, repeats=repeats, warmup=warmup, preset=None,
                        slots=slots, call_path=call_path, runtime=runtimes)
    return measure(scenario)


def server_under_load(workload: str, connections: Sequence[int], duration_s: float, rates: Sequence[float] = (),
                      optimize: Sequence[str] = ()) -> ServeRun:
    """The proxy component under the real ``wasmtime serve``: wrk at each connection count, then the lab's open-loop
    generator at each offered rate (nothing saved here: the notebook saves the table with its other results)."""
    settings = ServeSettings(workload, tuple(connections), duration_s, tuple(optimize), rates=tuple(float(r) for r in rates))
    return run_serve(settings, lambda run_id: None)
