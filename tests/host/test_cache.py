from hypothesis import given, settings
from hypothesis import strategies as st

from wasmlab.config import CACHE_POLICIES, CacheConfig
from wasmlab.host.cache import ModuleCache


class Builder:
    """Counts builds, so a test can tell a hit from a recompile."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def __call__(self, key: str) -> str:
        self.built.append(key)
        return f"compiled {key}"


def run(cache: ModuleCache, keys: str) -> Builder:
    builder = Builder()
    for key in keys:
        assert cache.get(key, builder, key) == f"compiled {key}"
    return builder


def test_hit_never_rebuilds():
    cache = ModuleCache(CacheConfig(policy="lru", size=4))
    builder = run(cache, "aaaa")
    assert builder.built == ["a"]
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (3, 1, 0)
    assert cache.stats.compile_ns > 0


def test_lru_evicts_the_least_recently_used():
    cache = ModuleCache(CacheConfig(policy="lru", size=2))
    run(cache, "aba")  # b is now least recently used
    run(cache, "c")
    assert "a" in cache and "b" not in cache and cache.stats.evictions == 1


def test_fifo_evicts_the_oldest_insert_even_if_used():
    cache = ModuleCache(CacheConfig(policy="fifo", size=2))
    run(cache, "aba")
    run(cache, "c")
    assert "a" not in cache and "b" in cache


def test_lfu_keeps_the_most_used():
    cache = ModuleCache(CacheConfig(policy="lfu", size=2))
    run(cache, "aaab")
    run(cache, "c")
    assert "a" in cache and "b" not in cache


def test_clear_when_full_drops_everything_at_once():
    cache = ModuleCache(CacheConfig(policy="clear-when-full", size=3))
    run(cache, "abc")
    builder = run(cache, "dabc")
    assert builder.built == ["d", "a", "b", "c"]  # the stampede: all of them compile again
    assert cache.stats.evictions == 3 + 3


def test_none_compiles_every_time():
    cache = ModuleCache(CacheConfig(policy="none"))
    assert run(cache, "aaa").built == ["a", "a", "a"]
    assert cache.stats.hits == 0 and len(cache) == 0


def test_ttl_expires_entries_after_their_time():
    now = [0.0]
    cache = ModuleCache(CacheConfig(policy="ttl", size=4, ttl_seconds=10), clock=lambda: now[0])
    run(cache, "a")
    now[0] = 5
    assert run(cache, "a").built == []
    now[0] = 11
    assert run(cache, "a").built == ["a"]
    assert cache.stats.evictions == 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CACHE_POLICIES), st.integers(1, 6), st.lists(st.sampled_from("abcdefghij"), max_size=60))
def test_any_sequence_keeps_size_within_capacity_and_counters_consistent(policy, size, keys):
    cache = ModuleCache(CacheConfig(policy=policy, size=size, ttl_seconds=1e9))
    builder = run(cache, keys)
    assert len(cache) <= max(size, 0 if policy == "none" else size)
    assert cache.stats.hits + cache.stats.misses == len(keys)
    assert cache.stats.misses == len(builder.built)
    # Everything built is either still cached or was evicted.
    assert cache.stats.misses - cache.stats.evictions >= len(cache) or policy == "none"
