"""What this process maps and holds in memory, from ``/proc/self/status``: reserved address space (``VmSize``),
resident memory now (``VmRSS``) and its peak (``VmHWM``), which ``reset_peak`` sets back to now.

A pooling engine reserves every slot's address space when it is built, so the ``VmSize`` it adds is the
pool's reservation, measured rather than computed; the peak resident memory while serving is what its
keep-resident pages, warm slots and live instances cost on top of the process.

glibc's per-thread malloc arenas are left out of the address space: each reserves 64 MiB (``HEAP_MAX_SIZE``, aligned to
its size, read-write at its start and ``PROT_NONE`` after) the first time a thread allocates while another holds the
main arena, a moment set by thread scheduling (a compiler thread, a worker), not by the engine.  Counted in, it made
the same flags read 9.6 MB in one run and 76.7 MB in the next.  glibc's ``malloc_info`` says how many it reserved; the
mappings in ``/proc/self/maps`` do not reliably (see ``arena_bytes``)."""

from __future__ import annotations

import ctypes
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

STATUS = Path("/proc/self/status")
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


def arena_bytes(malloc_info: str) -> int:
    """The address space of glibc's thread arenas in the XML of ``malloc_info(3)``: each arena other than the main one
    (``<heap nr="0">``) says how many 64 MiB heaps it reserved (``<aspace type="subheaps">``).  Counted from glibc's own
    books rather than ``/proc/self/maps``, where an arena's ``PROT_NONE`` tail merges with a neighbouring reservation
    (a pool's, a thread stack's guard) and its bounds are lost."""
    if not malloc_info:
        return 0
    heaps = ElementTree.fromstring(malloc_info).iterfind("heap")
    return sum(int(aspace.get("size", "0")) * ARENA_BYTES
               for heap in heaps if heap.get("nr") != "0"
               for aspace in heap.iterfind("aspace") if aspace.get("type") == "subheaps")


def read_malloc_info() -> str:
    """glibc's ``malloc_info(0, file)`` of this process, or "" where the C library has none (musl, macOS)."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_info"):
        return ""
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile("rb", suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        if not stream:
            return ""
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        return report.read().decode()


def now() -> Footprint:
    """This process's footprint now (its address space without glibc's thread arenas, see the module's docstring)."""
    try:
        status = parse_status(STATUS.read_text())
        return Footprint(status.address_space - arena_bytes(read_malloc_info()), status.resident, status.peak_resident)
    except OSError:
        return Footprint(0, 0, 0)


def reset_peak() -> bool:
    """Set the peak resident memory back to the current one (Linux >= 4.0); whether the kernel allowed it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False
