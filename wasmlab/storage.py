"""Where the lab's files live, and how they are written: atomically (a temporary name, then a rename).

Every file the lab writes (results, artifacts, fetched modules, sweep status) goes through
:func:`atomic_write`, so a killed run never leaves a half-written file under a real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wasmlab.errors import WasmlabError


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
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


def save_figure(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as PNG (150 dpi), atomically, and close it."""
    import matplotlib.pyplot as plt

    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    plt.close(fig)
    return Path(path)
