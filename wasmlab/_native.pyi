"""Types of the C extension ``wasmlab._native`` (its source: ``wasmlab/_native.c``)."""

from typing import Any

OUT_OK: int
OUT_TRAP: int
OUT_EXIT: int
OUT_ERROR: int
OUT_MISMATCH: int
OUT_NO_EXPORT: int
OUT_COMPILE_ERROR: int
CHECK_NONE: int
CHECK_EXPECTED: int
CHECK_FIRST: int
RECORD_WORDS: int
STAMPS: int
ERROR_OTHER: int
ERROR_POOL_EXHAUSTED: int
ERROR_MEMORY_LIMIT: int

def layout() -> dict[str, int]: ...
def monotonic_ns() -> int: ...

class Library:
    def __init__(self, handle: int = 0, path: str | None = None) -> None: ...
    @classmethod
    def functions(cls) -> tuple[str, ...]: ...

class Engine:
    address: int
    def __init__(self, library: Library, pooling: dict[str, int] | None = None) -> None: ...
    def compile(self, wasm: bytes, repeats: int = 1) -> list[int]: ...

class Driver:
    def __init__(self, library: Library, engine: int | Engine, cache_capacity: int = 0, pre: bool = False, linker: int = 0,
                 fuel: int = -1, epoch_ticks: int = 0, limiter: tuple[int, ...] | None = None,
                 wait_ns: int = -1) -> None: ...
    def add_workload(self, wasm: bytes, sha256: bytes, entry: bytes, args: tuple[int, ...], arg_kinds: str, result_kind: str,
                     check: int = 0, expected: int = 0) -> int: ...
    def run(self, indices: Any, records: Any, stamps: Any = None, schedule: Any = None) -> tuple[int, str | None]: ...
    def take_stats(self) -> dict[str, int]: ...
    def expectation(self, index: int) -> int | None: ...
    def cached(self) -> int: ...
    def close(self) -> None: ...
