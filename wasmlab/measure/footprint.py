"""What this process maps and holds in memory, from ``/proc/self/status``: reserved address space (``VmSize``),
resident memory now (``VmRSS``) and its peak (``VmHWM``), which ``reset_peak`` sets back to now.

A pooling engine reserves every slot's address space when it is built, so the ``VmSize`` it adds is the
pool's reservation, measured rather than computed; the peak resident memory while serving is what its
keep-resident pages, warm slots and live instances cost on top of the process.

glibc's per-thread malloc arenas are left out of the address space: each reserves 64 MiB (``HEAP_MAX_SIZE``, aligned to
its size, read-write at its start and ``PROT_NONE`` after) the first time a thread allocates while another holds the
main arena, a moment set by thread scheduling (a compiler thread, a worker), not by the engine.  Counted in, it made
the same flags read 9.6 MB in one run and 76.7 MB in the next."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATUS = Path("/proc/self/status")
MAPS = Path("/proc/self/maps")
# glibc's HEAP_MAX_SIZE on 64-bit: 2 x DEFAULT_MMAP_THRESHOLD_MAX (32 MiB).
ARENA_BYTES = 64 << 20
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


def arena_bytes(maps: str) -> int:
    """The address space of glibc's thread arenas in the text of ``/proc/<pid>/maps``: anonymous mappings that start on
    a 64 MiB boundary, read-write then ``PROT_NONE``, spanning exactly 64 MiB together."""
    total, start, end, perms = 0, -1, -1, ""
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) > 5:  # a file, [heap], [stack]...: not an arena
            start = -1
            continue
        low, high = (int(part, 16) for part in fields[0].split("-"))
        if low % ARENA_BYTES == 0 and fields[1] == "rw-p":
            start, end, perms = low, high, "rw-p"
        elif start >= 0 and low == end and fields[1] == "---p" and perms == "rw-p":
            end, perms = high, "---p"
        else:
            start = -1
            continue
        if end - start == ARENA_BYTES:
            total, start = total + ARENA_BYTES, -1
    return total


def now() -> Footprint:
    """This process's footprint now (its address space without glibc's thread arenas, see the module's docstring)."""
    try:
        status = parse_status(STATUS.read_text())
        return Footprint(status.address_space - arena_bytes(MAPS.read_text()), status.resident, status.peak_resident)
    except OSError:
        return Footprint(0, 0, 0)


def reset_peak() -> bool:
    """Set the peak resident memory back to the current one (Linux >= 4.0); whether the kernel allowed it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False
