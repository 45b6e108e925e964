"""Experiments beyond one side-by-side comparison: one module per notebook, each returning tidy rows.

=================================== =======================================================
module                              notebook
=================================== =======================================================
:mod:`~.pool_slots`                 ``02_pool_slots``: address space, exhaustion, slot reset
:mod:`~.cache_policies`             ``03_cache_policies``: policies over multi-module traces
:mod:`~.instantiation_breakdown`    ``04_instantiation_breakdown``: compile to drop, per setting
:mod:`~.concurrency`                ``06_concurrency``: worker threads sharing pools and caches
:mod:`~.components`                 ``07_components``: one component call split into its parts
:mod:`~.pool_fit`                   ``wasmlab inspect``: what a module needs from a pool, which presets fit
:mod:`~.notebook`                   every notebook's set-up: parameters, results folder, figures
=================================== =======================================================

Each function returns rows (dicts with units in their names) and leaves plotting to
:mod:`wasmlab.report.plots` and the notebooks; :func:`tidy` adds the run's metadata to a table of them.
This layer may import the measurement layer and everything below it, not the reports or the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from wasmlab.config import parse_size
from wasmlab.measure import metadata as md


def tidy(rows: Iterable[Mapping[str, Any]], parameters: Mapping[str, Any] | None = None,
         run: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A DataFrame of ``rows`` with the run's metadata (``run``, else a new run's) in every row, parameters as JSON."""
    frame = pd.DataFrame(list(rows))
    for key, value in (run if run is not None else md.new_run()).items():
        frame[key] = value
    frame["parameters_json"] = json.dumps(dict(parameters or {}), sort_keys=True, default=str)
    return frame


def sizes(values: Sequence[str | int | None]) -> list[int | None]:
    """Notebook helper: sizes given as ``"64KiB"``, ints or ``None``."""
    return [None if v in (None, "", "default") else parse_size(v) for v in values]
