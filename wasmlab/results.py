"""Writing and reading result folders, atomically.

A run folder holds ``summary.parquet`` (one row per variant and repetition, metadata in
columns), ``samples.parquet`` (one row per timed request), ``phases.parquet`` (phased
mode only) and ``metadata.json``.  Every file is written to a temporary name in the
same folder and renamed into place, so a killed run never leaves a half-written file
under a real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from wasmlab.errors import WasmlabError

SUMMARY = "summary.parquet"
SAMPLES = "samples.parquet"
PHASES = "phases.parquet"
METADATA = "metadata.json"


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(data: Any, path: Path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"))


def check_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove it can be written, before anything is measured."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", delete=True)
        probe.close()
    except OSError as exc:
        raise WasmlabError(f"results folder {str(folder)!r} is not writable ({exc.strerror}); allowed: a folder you can write to") from None
    return folder


def save_measurement(measurement: Any, folder: Path) -> Path:
    """Write a ``Measurement``'s tables and metadata into ``folder``; return the folder.

    ``metadata.json`` goes last: a folder without it is an interrupted save (``load_run`` refuses it).
    """
    folder = check_writable(Path(folder))
    write_parquet(measurement.summary, folder / SUMMARY)
    if not measurement.samples.empty:
        write_parquet(measurement.samples, folder / SAMPLES)
    if not measurement.phases.empty:
        write_parquet(measurement.phases, folder / PHASES)
    write_json({**measurement.metadata, "errors": measurement.errors}, folder / METADATA)
    return folder


def load_run(folder: Path) -> dict[str, Any]:
    """The tables and metadata of a run folder (missing optional tables come back empty)."""
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise WasmlabError(f"{str(folder)!r} is not a wasmlab run folder: it has no {SUMMARY}")
    if not (folder / METADATA).is_file():
        # save_measurement writes metadata.json last: without it the save was interrupted.
        raise WasmlabError(f"{str(folder)!r} is an incomplete run folder (no {METADATA}: its save was interrupted); run it again")
    out: dict[str, Any] = {"summary": pd.read_parquet(folder / SUMMARY)}
    for name, file in (("samples", SAMPLES), ("phases", PHASES)):
        out[name] = pd.read_parquet(folder / file) if (folder / file).is_file() else pd.DataFrame()
    out["metadata"] = json.loads((folder / METADATA).read_text())
    return out


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding wasmlab's
    ``pyproject.toml``; the working directory itself when there is none."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and 'name = "wasmlab"' in candidate.read_text():
            return folder
    return here


def results_dir(experiment: str, run_id: str | None = None, base: str | Path | None = None) -> Path:
    """``<base>/<experiment>[/<run_id>]``, where ``base`` defaults to the project's ``data/results``,
    so notebooks write to the same place whether run from the repository or from ``notebooks/``."""
    folder = Path(base) if base else project_root() / "data" / "results"
    folder = folder / experiment
    return folder / run_id if run_id else folder
