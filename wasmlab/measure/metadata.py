"""Who measured what, where: the metadata every result carries (as pyperf does)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import uuid
from functools import lru_cache
from importlib import metadata as _md
from pathlib import Path
from typing import Any

PACKAGES = ("wasmtime", "cachetools", "pandas", "numpy", "scipy", "papermill", "componentize-py")


def _version(package: str) -> str:
    try:
        return _md.version(package)
    except _md.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(start: Path | None = None) -> str:
    """The commit of the checkout wasmlab runs from, with ``-dirty`` if it has changes; ``unknown`` outside git."""
    where = start or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    """Facts of this machine and software stack that do not change during a run."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "wasmlab_version": _version("wasmlab"),
        **{f"{p}_version": _version(p) for p in PACKAGES},
        "git_commit": git_commit(),
    }


def iso_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def new_run() -> dict[str, Any]:
    """Identity and time of a new run, plus the machine's facts."""
    now = _dt.datetime.now(_dt.UTC)
    return {
        "run_id": now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
        "timestamp": now.isoformat(timespec="seconds"),
        **machine(),
    }
