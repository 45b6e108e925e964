"""What the kernel did for a block of requests: page faults and context switches of this process (every
thread, from ``getrusage``), and TLB shootdown interrupts (machine-wide, from ``/proc/interrupts``, where the
kernel exposes them).  A pool that returns memory with ``madvise`` on every request makes the kernel flush
other CPUs' TLBs when threads of one process share it; these counts say whether that is where time went."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

INTERRUPTS = Path("/proc/interrupts")


@dataclass(frozen=True)
class KernelCounts:
    """Counters at one moment; subtract two for a block's."""

    minor_faults: int
    major_faults: int
    voluntary_switches: int
    involuntary_switches: int
    tlb_shootdowns: int | None  # None where /proc/interrupts has no TLB line (not Linux x86, or not readable)

    def _combine(self, other: KernelCounts, sign: int) -> KernelCounts:
        tlb = (None if self.tlb_shootdowns is None or other.tlb_shootdowns is None
               else self.tlb_shootdowns + sign * other.tlb_shootdowns)
        return KernelCounts(self.minor_faults + sign * other.minor_faults, self.major_faults + sign * other.major_faults,
                            self.voluntary_switches + sign * other.voluntary_switches,
                            self.involuntary_switches + sign * other.involuntary_switches, tlb)

    def __sub__(self, other: KernelCounts) -> KernelCounts:
        return self._combine(other, -1)

    def __add__(self, other: KernelCounts) -> KernelCounts:
        return self._combine(other, 1)

    def per_request(self, requests: int) -> dict[str, float]:
        """The counts divided by ``requests``, as result columns (``nan`` where not available)."""
        n = max(requests, 1)
        return {
            "minor_faults_per_request": self.minor_faults / n,
            "major_faults_per_request": self.major_faults / n,
            "voluntary_switches_per_request": self.voluntary_switches / n,
            "involuntary_switches_per_request": self.involuntary_switches / n,
            "tlb_shootdowns_per_request": float("nan") if self.tlb_shootdowns is None else self.tlb_shootdowns / n,
        }


def tlb_shootdowns(text: str) -> int | None:
    """The machine's TLB shootdown interrupts so far, summed over CPUs, from the text of ``/proc/interrupts``."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "TLB":
            return sum(int(field) for field in rest.split() if field.isdigit())
    return None


ZERO = KernelCounts(0, 0, 0, 0, 0)


def counts() -> KernelCounts:
    """This process's counters now (all threads), and the machine's TLB shootdowns."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        tlb = tlb_shootdowns(INTERRUPTS.read_text())
    except OSError:
        tlb = None
    return KernelCounts(usage.ru_minflt, usage.ru_majflt, usage.ru_nvcsw, usage.ru_nivcsw, tlb)
