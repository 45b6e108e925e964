"""The settings as code: every Rust method named exists in the targeted release's wasmtime; the others mirror it."""

import re

import pytest

from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.needs import serving_needs
from wasmlab.experiments.advisor.snippets import SERVE_OPTIONS, release_symbols, rust, spin, wasmtime_serve
from wasmlab.experiments.advisor.space import Candidate

EVERY_KNOB = Candidate("pooling", 4, "tight", keep_resident=64 * 1024, table_keep_resident=4096, warm_slots="0",
                       decommit_batch=4, cow=False, pre=True)


@pytest.fixture(scope="module")
def needs():
    return serving_needs(["dirty-memory:kib=64"])


def methods(snippet: str) -> tuple[set[str], set[str]]:
    """The PoolingAllocationConfig and Config methods a snippet calls."""
    pool_chain = snippet[snippet.index("pool."):snippet.index(";", snippet.index("pool."))]
    return set(re.findall(r"\.(\w+)\(", pool_chain)), set(re.findall(r"^config\.(\w+)\(", snippet, re.MULTILINE))


def test_the_rust_snippet_names_only_methods_the_installed_release_has(needs):
    release, has_symbol = release_symbols()
    code = rust(EVERY_KNOB, needs, release, has_symbol)
    pool, config = methods(code)
    assert {"total_memories", "max_memory_size", "linear_memory_keep_resident", "table_keep_resident",
            "max_unused_warm_slots", "decommit_batch_size"} <= pool
    assert {"memory_reservation", "memory_guard_size", "memory_init_cow", "allocation_strategy"} == config
    # wasmtime's C API wraps each method m as wasmtime_pooling_allocation_config_m_set (wasmtime_config_m_set for Config).
    assert all(has_symbol(f"wasmtime_pooling_allocation_config_{m}_set") for m in pool)
    assert all(has_symbol(f"wasmtime_config_{m}_set") for m in config - {"allocation_strategy"})
    assert code.startswith(f"// wasmtime {release}")


def test_a_release_without_a_method_is_refused_rather_than_guessed(needs):
    # 30.0.0's C API has no pooling functions (they arrived in 32.0.0); the CI fetches it for the releases tests.
    release, has_symbol = release_symbols("30")
    with pytest.raises(ConfigError, match="wasmtime 30.0.0 has no PoolingAllocationConfig::"):
        rust(EVERY_KNOB, needs, release, has_symbol)
    # An on-demand candidate needs only Config methods, which 30.0.0 has.
    assert "allocation_strategy" not in rust(Candidate("on-demand", 0, "tight"), needs, release, has_symbol)


def test_wasmtime_serve_and_spin_carry_the_same_numbers(needs):
    serve = wasmtime_serve(EVERY_KNOB, needs)
    assert "-O pooling-allocator=y" in serve and "-O pooling-memory-keep-resident=65536" in serve
    assert "-O memory-reservation=131072" in serve and "-O memory-init-cow=n" in serve
    assert set(re.findall(r"-O (pooling-[\w-]+)=", serve)) - {"pooling-allocator"} <= set(SERVE_OPTIONS.values())
    env = spin(EVERY_KNOB, needs)
    assert "SPIN_WASMTIME_POOLING=1" in env and "SPIN_WASMTIME_TOTAL_MEMORIES=4" in env
    assert "not settable there: " in env and "linear_memory_keep_resident" in env.splitlines()[1]


def test_an_on_demand_candidate_turns_wasmtime_serves_default_pool_off(needs):
    # wasmtime serve pools by default: leaving the allocator unsaid would serve the on-demand advice from a pool.
    assert wasmtime_serve(Candidate("on-demand", 0, "tight"), needs).startswith("wasmtime serve -O pooling-allocator=n ")
