"""Notebook 08 and ``wasmlab releases run``: one host configuration across wasmtime releases (the runner is
:mod:`wasmlab.measure.release_run`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.errors import Interrupted
from wasmlab.host.releases import resolve
from wasmlab.measure.release_run import changes, compile_summary, compiles_of, requests_of, run_releases, summary, user_library
from wasmlab.measure.results import SUMMARY, write_metadata, write_parquet
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.warmup import fixed_warmup
from wasmlab.storage import check_writable

SHOWN = ("release", "variant", "status", "latency_us_mean", "latency_us_p50", "latency_us_p99", "compile_us_per_miss",
         "minor_faults_per_request", "vmsize_mib_reserved_by_engine", "error")


@dataclass
class AcrossReleases:
    """What notebook 08 shows: every child's rows, their summaries, and the changes between consecutive releases."""

    runs: pd.DataFrame
    compile_runs: pd.DataFrame
    summary: pd.DataFrame
    compiles: pd.DataFrame
    changes: pd.DataFrame
    metadata: dict[str, Any]
    table: pd.DataFrame  # every child's rows, served requests and compile timings alike

    @property
    def change_labels(self) -> list[str]:
        return [label for label in self.changes.get("label", []) if label]

    @property
    def failed(self) -> bool:
        """Whether a child crashed or a variant failed on some release."""
        return bool(self.table["status"].isin(["crash", "failed"]).any())

    @property
    def partial(self) -> bool:
        """Whether the run was interrupted before every child ran."""
        return bool(self.metadata.get("partial"))

    def save(self, folder: Path) -> Path:
        """The run folder notebook 08 writes, which ``wasmlab compare RUN@A RUN@B`` reads: every child's served rows
        (``summary.parquet``), compile timings, changes, and ``metadata.json`` last (a folder without it is an
        interrupted save)."""
        folder = check_writable(Path(folder))
        write_parquet(self.runs, folder / SUMMARY)
        write_parquet(self.compile_runs, folder / "compiles.parquet")
        write_parquet(self.changes, folder / "changes.parquet")
        write_metadata(self.metadata, folder)
        return folder

    def to_json(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> Any:
            return json.loads(frame.to_json(orient="records"))

        return {"results": records(self.summary), "changes": records(self.changes), "compiles": records(self.compiles),
                "runs": records(self.table), "metadata": self.metadata}

    def render(self) -> str:
        """The summary per release and variant, compile times, the changes, and how it was measured."""
        meta = self.metadata
        shown = [c for c in SHOWN if c in self.summary]
        lines = [self.summary[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}")]
        if not self.compiles.empty:
            lines.append("\n" + self.compiles.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
        labels = self.change_labels
        lines.append("\nChanges between consecutive releases (only where the 95% interval excludes none): "
                     + ("; ".join(labels) if labels else "none"))
        lines.append(f"Measured: {meta['workload']}, {meta['requests']} requests per variant after {meta['warmup']} warm-up, "
                     f"{meta['repeats']} repetitions, {meta['order']}; {meta['ratio_method']}; {meta['cpu_model']}, "
                     f"{meta['cpu_count']} cores")
        lines.append("Libraries (SHA-256 as the manifest pins and as checked before loading): "
                     + ", ".join(library_note(version, entry) for version, entry in meta["releases"].items()))
        return "\n".join(lines)


def library_note(version: str, entry: dict[str, Any]) -> str:
    """A release's library digest; a user's build with its path and the version it says."""
    if "library" in entry:
        return f"{version} (your build {entry['library']}, version {entry['library_version']}) {entry['library_sha256'][:16]}"
    return f"{version} {entry['library_sha256'][:16]}"


def scenario_across_releases(releases: Sequence[str], scenario: Scenario, compile_workloads: Sequence[str] = (),
                             compile_repeats: int = 3, progress: Callable[[str, int], None] | None = None,
                             libraries: Sequence[str] = ()) -> AcrossReleases:
    """``scenario`` (its workload, variants, requests, repetitions, warm-up, slots, pool knobs and cache size) and the
    compile time of ``compile_workloads`` on each of ``releases`` (versions or majors of the manifest) and of each user's
    build in ``libraries`` (paths of libwasmtime builds, labelled by their digests)."""
    pool, m = scenario.pool, scenario.measurement
    slots = pool.slots if pool.slots is not None else scenario.engine_config().pool.slots
    cache_size = scenario.cache.size if scenario.cache.size is not None else scenario.cache_config().size
    try:
        chosen = (resolve(releases) if releases else []) + [user_library(path) for path in libraries]
        table, metadata = run_releases(chosen, scenario.workload.spec, scenario.variants, m.requests, m.repeats,
                                       fixed_warmup(m.warmup, "wasmlab releases"), slots, dict(pool.knobs), cache_size, progress,
                                       compile_workloads=compile_workloads, compile_repeats=compile_repeats)
    except Interrupted as stop:
        if stop.partial is not None:  # the finished children, summarised like a whole run
            stop.partial = assembled(*stop.partial)
        raise
    return assembled(table, metadata)


def assembled(table: pd.DataFrame, metadata: dict[str, Any]) -> AcrossReleases:
    """Every child's rows with their summaries and the changes between consecutive releases."""
    served, compiled = requests_of(table), compiles_of(table)
    steps = pd.concat([changes(served), changes(compiled, "compile_us_p50")], ignore_index=True)
    return AcrossReleases(served, compiled, summary(table), compile_summary(table), steps, metadata, table)


def across_releases(releases: Sequence[str], workload: str, variants: Sequence[str], requests: int, repeats: int, warmup: int,
                    slots: int, compile_workloads: Sequence[str] = (), compile_repeats: int = 3,
                    libraries: Sequence[str] = ()) -> AcrossReleases:
    """The same scenario (and compile timings) on each of ``releases`` (versions or majors of the manifest) and each
    user's build in ``libraries`` (paths, labelled by their digests)."""
    scenario = Scenario(workload=workload, variants=tuple(variants), requests=requests, repeats=repeats, warmup=warmup,
                        preset=None, slots=slots, cache_size=16)
    return scenario_across_releases(releases, scenario, compile_workloads, compile_repeats, libraries=libraries)
