"""What a request does when the pool has no free slot: ``fail`` at once, or ``wait`` for one.

``fail`` is the default because a gateway should shed load visibly rather than queue it; ``wait``
retries with exponential backoff (20 µs doubling to 1 ms) until a slot frees or
``wait_timeout_ms`` passes, and counts how often and how long requests waited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import wasmtime

from wasmlab.errors import PoolExhausted
from wasmlab.host.outcomes import classify


class SlotWait:
    """The exhaustion policy of one runtime, with its counters (``waits``, ``wait_ns``)."""

    def __init__(self, policy: str = "fail", timeout_ms: float = 100.0) -> None:
        self.policy = policy
        self.timeout_ms = timeout_ms
        self.waits = 0
        self.wait_ns = 0

    def retry(self, attempt: Callable[[], None], first_error: BaseException) -> None:
        """Called when ``attempt`` (an instantiation) failed with ``first_error``: re-raise anything but pool
        exhaustion; under ``fail`` raise :class:`PoolExhausted`; under ``wait`` retry until it succeeds."""
        if classify(first_error) != "pool_exhausted":
            raise first_error
        if self.policy != "wait":
            raise PoolExhausted(str(first_error).splitlines()[0])
        start = time.perf_counter_ns()
        deadline = start + int(self.timeout_ms * 1e6)
        pause = 20e-6
        self.waits += 1
        while True:
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)
            try:
                attempt()
                self.wait_ns += time.perf_counter_ns() - start
                return
            except wasmtime.WasmtimeError as exc:
                if classify(exc) != "pool_exhausted":
                    raise
                if time.perf_counter_ns() >= deadline:
                    waited = time.perf_counter_ns() - start
                    self.wait_ns += waited
                    raise PoolExhausted(f"no pool slot freed within {self.timeout_ms} ms", waited) from None
