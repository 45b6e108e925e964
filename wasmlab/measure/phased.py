"""Phased mode: each request with a timestamp between its phases (and a recipe's steps), as rows of the phase table."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import numpy as np

from wasmlab.host.callpaths import PHASES
from wasmlab.host.outcomes import REQUEST_FAILURES
from wasmlab.host.runtime import Runtime

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built
    import pandas as pd


def phased_block(runtime: Runtime, indices: list[int], repetition: int, first: int = 0, manage_gc: bool = True) -> pd.DataFrame:
    """Each request with a timestamp between phases; long format: one row per request and phase.  ``first`` is the
    trace position of ``indices[0]``; ``manage_gc`` False when the caller already turned the cyclic GC off."""
    import pandas as pd

    n = len(indices)
    stamps = np.empty((n, len(PHASES) + 1), dtype=np.int64)
    row = [0] * (len(PHASES) + 1)
    handle = runtime.handle_phased
    ok = np.ones(n, dtype=bool)
    step_stamps = runtime.step_stamps
    steps: list[tuple[int, int, list[int]]] = []  # (position in block, workload index, the request's step stamps)
    was_enabled = gc.isenabled()
    if manage_gc:
        gc.collect()
    gc.disable()
    try:
        if runtime.block_phased is not None:  # the path stamps inside its own loop (native: in C), one call for the block
            served, block_steps = runtime.block_phased(indices, stamps)
            ok = np.asarray(served, dtype=bool)
            steps = [(i, index, block_steps[i]) for i, index in enumerate(indices) if ok[i] and block_steps[i]]
        else:
            for i, index in enumerate(indices):
                try:
                    handle(index, row)
                except REQUEST_FAILURES:
                    ok[i] = False  # its phases are incomplete: left out of the phase table
                    continue
                stamps[i] = row
                if index in step_stamps:
                    steps.append((i, index, step_stamps[index][:]))
    finally:
        if was_enabled:
            gc.enable()
    stamps, request_ids = stamps[ok], np.arange(first, first + n, dtype=np.int32)[ok]
    n = int(ok.sum())
    durations = np.diff(stamps, axis=1)
    frame = pd.DataFrame(
        {
            "variant": runtime.variant.name,
            "call_path": runtime.call_path,
            "repetition": repetition,
            "request_index": np.repeat(request_ids, len(PHASES)),
            "phase": np.tile(np.array(PHASES), n),
            "step": "",
            "duration_ns": durations.reshape(-1),
        }
    )
    return pd.concat([frame, step_rows(runtime, steps, repetition, first)], ignore_index=True) if steps else frame


def step_rows(runtime: Runtime, steps: list[tuple[int, int, list[int]]], repetition: int, first: int) -> pd.DataFrame:
    """A recipe's steps as rows of the phase table: phase ``call`` (they are what the call phase does), ``step``
    naming each (``2. call malloc``), so that a table of phases leaves them out and a table of steps reads them."""
    import pandas as pd

    rows = []
    for position, index, stamps in steps:
        labels = runtime.workloads[index].step_labels
        for label, (start, end) in zip(labels, zip(stamps, stamps[1:])):
            rows.append((first + position, label, end - start))
    return pd.DataFrame({"variant": runtime.variant.name, "call_path": runtime.call_path, "repetition": repetition,
                         "request_index": np.array([r[0] for r in rows], dtype=np.int32), "phase": "call",
                         "step": [r[1] for r in rows], "duration_ns": np.array([r[2] for r in rows], dtype=np.int64)})


def empty_phases() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("call_path", "object"), ("repetition", "int64"), ("request_index", "int32"), ("phase", "object"), ("step", "object"), ("duration_ns", "int64"))})
