import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from wasmlab.config import CACHE_POLICIES, PRESETS, CacheConfig, EngineConfig, PoolConfig, get_preset
from wasmlab.errors import ConfigError


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: PoolConfig(slots=-1), "pool.slots = -1 is out of range"),
        (lambda: PoolConfig(slots=0), "pool.slots = 0"),
        (lambda: PoolConfig(slots=1.5), "is not an integer"),
        (lambda: PoolConfig(max_memory_size=-4), "pool.max_memory_size = -4"),
        (lambda: PoolConfig(slots=4, max_unused_warm_slots=5), "exceeds the pool's 4 core instance slots"),
        (lambda: CacheConfig(policy="lru", size=0), "cache.size = 0 is out of range"),
        (lambda: CacheConfig(policy="mru"), "cache.policy 'mru' is not allowed; allowed: clear-when-full, fifo, lfu, lru, none, rr, ttl"),
        (lambda: CacheConfig(policy="ttl", ttl_seconds=0), "cache.ttl_seconds = 0"),
        (lambda: EngineConfig(allocator="slab"), "engine.allocator 'slab' is not allowed; allowed: on-demand, pooling"),
        (lambda: EngineConfig(compiler="llvm"), "allowed: cranelift, winch"),
        (lambda: EngineConfig(memory_init_cow="yes"), "engine.memory_init_cow = 'yes' is not a boolean"),
        (lambda: get_preset("nginx"), "preset 'nginx' is not allowed; allowed: seed, spin, wasmtime-serve"),
        (lambda: PoolConfig().replace(slotz=3), "PoolConfig key 'slotz' is not allowed"),
        (lambda: EngineConfig(allocator="pooling", memory_reservation=65536), "pool.max_memory_size = 4294967296 exceeds engine.memory_reservation = 65536"),
    ],
)
def test_bad_values_name_the_value_and_what_is_allowed(build, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        build()
    assert fragment in str(info.value)


def test_slots_fill_every_total_unless_given():
    pool = PoolConfig(slots=7, total_stacks=3)
    assert pool.resolved("total_core_instances") == 7
    assert pool.resolved("total_memories") == 7
    assert pool.resolved("total_stacks") == 3


def test_cache_size_is_ignored_only_when_nothing_is_cached():
    assert CacheConfig(policy="none", size=0).size == 0


def test_presets_carry_the_hosts_settings():
    assert PRESETS["seed"].pool.slots == 20 and PRESETS["seed"].cache.policy == "lru"
    spin = PRESETS["spin"].pool
    assert spin.resolved("total_core_instances") == 4 * spin.slots
    assert spin.linear_memory_keep_resident == 2 * 1024 * 1024
    assert PRESETS["wasmtime-serve"].pool.max_unused_warm_slots == 100
    assert PRESETS["wasmtime-serve"].engine["memory_guard_size"] == 32 * 1024 * 1024


pools = st.builds(
    PoolConfig,
    slots=st.integers(1, 2000),
    max_memory_size=st.one_of(st.none(), st.integers(0, 2**33)),
    linear_memory_keep_resident=st.one_of(st.none(), st.integers(0, 2**24)),
    decommit_batch_size=st.one_of(st.none(), st.integers(1, 64)),
)
@st.composite
def engines(draw: st.DrawFn) -> EngineConfig:
    """Valid engine configurations; contradictory ones are refused by design (tested above)."""
    try:
        return EngineConfig(
            allocator=draw(st.sampled_from(["on-demand", "pooling"])),
            pool=draw(pools),
            compiler=draw(st.sampled_from(["cranelift", "winch"])),
            memory_init_cow=draw(st.booleans()),
            memory_reservation=draw(st.one_of(st.none(), st.integers(0, 2**34))),
        )
    except ConfigError:
        assume(False)
        raise


@given(engines())
def test_engine_config_round_trips_through_yaml(config):
    assert EngineConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


@given(st.sampled_from(CACHE_POLICIES), st.integers(1, 500), st.floats(0.001, 1e6))
def test_cache_config_round_trips_through_yaml(policy, size, ttl):
    config = CacheConfig(policy=policy, size=size, ttl_seconds=ttl)
    assert CacheConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
