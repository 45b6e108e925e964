"""What this process maps and holds in memory, from ``/proc/self/status``: reserved address space (``VmSize``),
resident memory now (``VmRSS``) and its peak (``VmHWM``), which ``reset_peak`` sets back to now.

A pooling engine reserves every slot's address space when it is built, so the ``VmSize`` it adds is the
pool's reservation, measured rather than computed; the peak resident memory while serving is what its
keep-resident pages, warm slots and live instances cost on top of the process."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
_FIELDS = re.compile(r"^(VmSize|VmRSS|VmHWM):\s+(\d+)\s*kB", re.MULTILINE)


@dataclass(frozen=True)
class Footprint:
    """Bytes at one moment (0 where the kernel does not say)."""

    address_space: int
    resident: int
    peak_resident: int


def parse_status(text: str) -> Footprint:
    """The three figures from the text of ``/proc/<pid>/status``."""
    found = {name: int(kib) * 1024 for name, kib in _FIELDS.findall(text)}
    return Footprint(found.get("VmSize", 0), found.get("VmRSS", 0), found.get("VmHWM", 0))


def now() -> Footprint:
    """This process's footprint now."""
    try:
        return parse_status(STATUS.read_text())
    except OSError:
        return Footprint(0, 0, 0)


def reset_peak() -> bool:
    """Set the peak resident memory back to the current one (Linux >= 4.0); whether the kernel allowed it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False
