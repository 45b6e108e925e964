"""Compiled-module cache with pluggable eviction policies and honest counters.

Policies ``lru``, ``lfu``, ``fifo``, ``rr`` and ``ttl`` are cachetools caches;
``clear-when-full`` is the naive map the seed replaced (a full map is cleared whole,
so every module must be compiled again: the "stampede"); ``none`` never keeps
anything, so every request compiles.

Keys are content hashes (``Workload.sha256``), computed once when a workload is
loaded, so a hit never re-compiles and no request pays for hashing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import cachetools

from wasmlab.config import CacheConfig

V = TypeVar("V")
A = TypeVar("A")


@dataclass
class CacheStats:
    """Counters of one cache; ``hits + misses == lookups`` always holds."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    compile_ns: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_evictions": self.evictions,
            "cache_hit_rate": self.hit_rate,
            "compile_ms_total": self.compile_ns / 1e6,
        }


def _counting(base: type) -> type:
    """Subclass a cachetools cache so that every eviction it makes is counted."""

    class Counting(base):  # type: ignore[misc]  # a cachetools class, untyped (no stubs), chosen at run time
        def __init__(self, *args: Any, on_evict: Callable[[], None], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._on_evict = on_evict

        def popitem(self) -> Any:
            item = super().popitem()
            self._on_evict()
            return item

        if hasattr(base, "expire"):

            def expire(self, time: Any = None) -> Any:  # noqa: A002 - cachetools' own name
                expired = super().expire(time)
                for _ in expired or ():
                    self._on_evict()
                return expired

    Counting.__name__ = f"Counting{base.__name__}"
    return Counting


class _ClearWhenFull(dict[Hashable, Any]):
    """The seed's replaced strategy: a map that is cleared whole when it is full."""

    def __init__(self, maxsize: int, on_evict: Callable[[], None]) -> None:
        super().__init__()
        self.maxsize = maxsize
        self._on_evict = on_evict

    def __setitem__(self, key: Hashable, value: Any) -> None:
        if key not in self and len(self) >= self.maxsize:
            for _ in range(len(self)):
                self._on_evict()
            self.clear()
        super().__setitem__(key, value)


class _NoCache(dict[Hashable, Any]):
    """Keeps nothing: every lookup misses."""

    maxsize = 0

    def __setitem__(self, key: Hashable, value: Any) -> None:
        pass


_CACHETOOLS = {
    "lru": cachetools.LRUCache,
    "lfu": cachetools.LFUCache,
    "fifo": cachetools.FIFOCache,
    "rr": cachetools.RRCache,
}


class ModuleCache(Generic[V]):
    """Maps a content hash to a compiled value, building it on a miss.

    ``build`` is timed on every miss, so ``stats.compile_ns`` is the time this cache
    made requests spend compiling.
    """

    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.stats = CacheStats()
        self._store: MutableMapping[Hashable, V] = self._make_store(config, clock)

    def _evicted(self) -> None:
        self.stats.evictions += 1

    def _make_store(self, config: CacheConfig, clock: Callable[[], float]) -> MutableMapping[Hashable, V]:
        if config.policy == "none":
            return _NoCache()
        if config.policy == "clear-when-full":
            return _ClearWhenFull(config.size, self._evicted)
        if config.policy == "ttl":
            timed: MutableMapping[Hashable, V] = _counting(cachetools.TTLCache)(config.size, config.ttl_seconds, timer=clock,
                                                                                  on_evict=self._evicted)
            return timed
        bounded: MutableMapping[Hashable, V] = _counting(_CACHETOOLS[config.policy])(config.size, on_evict=self._evicted)
        return bounded

    def get(self, key: Hashable, build: Callable[[A], V], arg: A) -> V:
        """The cached value for ``key``, or ``build(arg)``'s result (then cached).

        ``build`` takes its argument rather than being a closure so that a hit allocates nothing.
        """
        store = self._store
        try:
            value = store[key]
        except KeyError:
            pass
        else:
            self.stats.hits += 1
            return value
        self.stats.misses += 1
        start = time.perf_counter_ns()
        value = build(arg)
        self.stats.compile_ns += time.perf_counter_ns() - start
        store[key] = value
        return value

    # Whether ``lookup`` may be read without a lock: a call path then inlines a hit (``lookup(key)``,
    # then ``stats.hits += 1``) and calls ``get`` only on a miss, saving a Python frame per request.
    lock_free = True

    @property
    def lookup(self) -> Callable[[Hashable], V]:
        """The cached value for a key, or ``KeyError`` (nothing counted): the caller counts a hit in
        ``stats.hits`` and calls :meth:`get` on a miss, which counts it and builds."""
        return self._store.__getitem__

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._store

    @property
    def capacity(self) -> int:
        return int(getattr(self._store, "maxsize", 0))

    def clear(self) -> None:
        """Drop every entry (not counted as evictions) and keep the counters."""
        self._store.clear()

    def reset_stats(self) -> None:
        """Zero the counters in place (a call path that counts hits inline holds this very object)."""
        self.stats.__init__()  # type: ignore[misc]  # a dataclass's __init__ sets every field to its default


class LockedModuleCache(ModuleCache[V]):
    """A module cache several threads can share: cachetools caches are not thread-safe."""

    lock_free = False

    def __init__(self, config: CacheConfig) -> None:
        super().__init__(config)
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[A], V], arg: A) -> V:
        with self._lock:
            return super().get(key, build, arg)
