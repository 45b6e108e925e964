"""Machine hygiene as pyperf does it: CPU pinning, and the load average and other processes' CPU time
across a run, with a flag when the machine was busy."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

# Other processes' CPU use, in cores, above which a run is flagged as taken on a busy machine.
BUSY_CORES = 0.25


class Hygiene:
    """Load average and other processes' CPU time across a run."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.load_before = os.getloadavg()
        self._system = self._busy_seconds()
        self._own = self._own_seconds()
        self._wall = time.monotonic()

    @staticmethod
    def _busy_seconds() -> float:
        t = psutil.cpu_times()
        return float(sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")))

    def _own_seconds(self) -> float:
        t = self._proc.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def finish(self) -> dict[str, Any]:
        wall = max(time.monotonic() - self._wall, 1e-9)
        other = max(0.0, (self._busy_seconds() - self._system) - (self._own_seconds() - self._own))
        load_after = os.getloadavg()
        other_cores = other / wall
        return {
            "loadavg_1m_before": self.load_before[0],
            "loadavg_1m_after": load_after[0],
            "other_cpu_cores": other_cores,
            "run_wall_s": wall,
            "machine_busy": other_cores > BUSY_CORES,
        }


def pin(cpu: int | None) -> set[int] | None:
    if cpu is None:
        return None
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return previous
