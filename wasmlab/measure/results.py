"""Run folders: a measurement's tables and metadata, written atomically and read back with their format checked.

A run folder holds ``summary.parquet`` (one row per variant and repetition, metadata in columns),
``samples.parquet`` (one row per timed request), ``phases.parquet`` (phased mode only) and
``metadata.json``, written last.  ``metadata.json`` carries ``format_version``, and so does every table
(in its Parquet schema's metadata, so that a table copied out of its folder still says what it is): a folder
or table written by another format is refused on load with one line instead of being misread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmlab.errors import WasmlabError
from wasmlab.storage import atomic_write, check_writable, write_json

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where results are read, not by every command that imports this
    import pandas as pd

SUMMARY = "summary.parquet"
SAMPLES = "samples.parquet"
PHASES = "phases.parquet"
METADATA = "metadata.json"
# The layout of a run folder and its columns; bump it when either changes, and say which versions load.
# Folders written before the version was recorded have this same layout, so a missing version reads as 1.
FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)
# The key of the format version in a Parquet table's schema metadata.
TABLE_VERSION_KEY = b"wasmlab_format_version"


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as a Parquet table at ``path`` (written atomically), tagged with this wasmlab's format version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), TABLE_VERSION_KEY: str(FORMAT_VERSION).encode()})
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet table, its format version checked (a table without one was written before versions were recorded)."""
    import pandas as pd
    import pyarrow.parquet as pq

    tagged = (pq.read_schema(path).metadata or {}).get(TABLE_VERSION_KEY)
    version: object = 1
    if tagged is not None:
        version = int(tagged) if tagged.isdigit() else tagged.decode(errors="replace")
    check_format({"format_version": version}, repr(str(path)))
    return pd.read_parquet(path)


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
    write_metadata({**measurement.metadata, "errors": measurement.errors}, folder)
    return folder


def write_metadata(metadata: dict[str, Any], folder: Path) -> Path:
    """``folder/metadata.json`` with ``metadata`` and the format version of this wasmlab's results."""
    return write_json({**metadata, "format_version": FORMAT_VERSION}, Path(folder) / METADATA)


def read_metadata(folder: Path) -> dict[str, Any] | None:
    """``folder/metadata.json``, its format version checked; ``None`` when the folder has none."""
    path = Path(folder) / METADATA
    if not path.is_file():
        return None
    metadata: dict[str, Any] = json.loads(path.read_text())
    check_format(metadata, repr(str(folder)))
    return metadata


def check_format(metadata: dict[str, Any], where: str) -> int:
    """The format version of a run's metadata, refused with one line if this wasmlab cannot read it."""
    version = metadata.get("format_version", 1)
    if version not in READABLE_VERSIONS:
        raise WasmlabError(f"{where} has results format version {version!r}; allowed: "
                           f"{', '.join(map(str, READABLE_VERSIONS))} (this wasmlab writes {FORMAT_VERSION})")
    return int(version)


def load_run(folder: Path) -> dict[str, Any]:
    """The tables and metadata of a run folder (missing optional tables come back empty)."""
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise WasmlabError(f"{str(folder)!r} is not a wasmlab run folder: it has no {SUMMARY}")
    if not (folder / METADATA).is_file():
        # save_measurement writes metadata.json last: without it the save was interrupted.
        raise WasmlabError(f"{str(folder)!r} is an incomplete run folder (no {METADATA}: its save was interrupted); run it again")
    import pandas as pd

    metadata = read_metadata(folder) or {}
    out: dict[str, Any] = {"summary": read_table(folder / SUMMARY), "metadata": metadata}
    for name, file in (("samples", SAMPLES), ("phases", PHASES)):
        out[name] = read_table(folder / file) if (folder / file).is_file() else pd.DataFrame()
    return out
