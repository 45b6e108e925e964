"""Notebook 08: one host configuration across wasmtime releases (the runner is :mod:`wasmlab.measure.release_run`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from wasmlab.host.releases import resolve
from wasmlab.measure.release_run import changes, compile_summary, compiles_of, requests_of, run_releases, summary


@dataclass
class AcrossReleases:
    """What notebook 08 shows: every child's rows, their summaries, and the changes between consecutive releases."""

    runs: pd.DataFrame
    compile_runs: pd.DataFrame
    summary: pd.DataFrame
    compiles: pd.DataFrame
    changes: pd.DataFrame
    metadata: dict[str, Any]

    @property
    def change_labels(self) -> list[str]:
        return [label for label in self.changes.get("label", []) if label]


def across_releases(releases: Sequence[str], workload: str, variants: Sequence[str], requests: int, repeats: int, warmup: int,
                    slots: int, compile_workloads: Sequence[str] = (), compile_repeats: int = 3) -> AcrossReleases:
    """The same scenario (and compile timings) on each of ``releases`` (versions or majors of the manifest)."""
    table, metadata = run_releases(resolve(releases), workload, variants, requests, repeats, warmup, slots,
                                   compile_workloads=compile_workloads, compile_repeats=compile_repeats)
    served, compiled = requests_of(table), compiles_of(table)
    steps = pd.concat([changes(served), changes(compiled, "compile_us_p50")], ignore_index=True)
    return AcrossReleases(served, compiled, summary(table), compile_summary(table), steps, metadata)
