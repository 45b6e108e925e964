import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.callpaths import PHASES, call_paths
from wasmlab.host.runtime import build_runtimes
from wasmlab.host.variant import NAMED_VARIANTS, parse_variant
from wasmlab.workloads import Workload, distinct_copies, load_workload

SPECS = ["seed", "compile-heavy:functions=20", "data-heavy:kib=64", "dirty-memory:kib=128"]


@pytest.mark.parametrize("call_path", call_paths())
def test_every_variant_serves_every_workload_and_checks_the_result(call_path):
    workloads = [load_workload(s) for s in SPECS]
    runtimes = build_runtimes(NAMED_VARIANTS, small_pool_engine(4), CacheConfig(size=8), workloads, call_path)
    for runtime in runtimes.values():
        for i, workload in enumerate(workloads):
            for _ in range(3):
                assert runtime.handle(i) == workload.expected
            stamps = [0] * (len(PHASES) + 1)
            assert runtime.handle_phased(i, stamps) == workload.expected
            assert stamps == sorted(stamps) and stamps[0] > 0


def test_cached_variants_compile_once_and_baseline_every_time(seed_workload):
    runtimes = build_runtimes(["baseline", "pooled+cached+pre"], small_pool_engine(2), CacheConfig(), [seed_workload])
    for runtime in runtimes.values():
        for _ in range(5):
            runtime.handle(0)
    assert runtimes["baseline"].cache.stats.misses == 5
    assert runtimes["pooled+cached+pre"].cache.stats.misses == 1
    assert runtimes["pooled+cached+pre"].cache.stats.hits == 4


def test_a_request_that_returns_the_wrong_value_is_caught(seed_workload):
    wrong = Workload(**{**seed_workload.__dict__, "expected": 43, "sha256": ""})
    for call_path in call_paths():
        runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [wrong], call_path)["cached"]
        with pytest.raises(ResultMismatch, match="returned 42, expected 43"):
            runtime.handle(0)


def test_lean_path_reports_traps_as_wasmtime_does():
    trapping = Workload(
        name="trap",
        wasm=bytes(wasmtime.wat2wasm('(module (func (export "run") (param i32) (result i32) unreachable))')),
        entry="run",
        params=("i32",),
        results=("i32",),
        args=(1,),
        expected=0,
    )
    runtime = build_runtimes(["pooled+cached"], small_pool_engine(2), CacheConfig(), [trapping], "lean")["pooled+cached"]
    for _ in range(3):  # the trap slot is reset, and the pool slot returned, after each trap
        with pytest.raises(wasmtime.Trap, match="unreachable"):
            runtime.handle(0)


def test_declared_type_must_match_the_export(seed_workload):
    lying = Workload(**{**seed_workload.__dict__, "params": ("i64",), "sha256": ""})
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [lying], "lean")["cached"]
    with pytest.raises(ConfigError, match=r"has type \('i32',\) -> \('i32',\), declared \('i64',\)"):
        runtime.handle(0)


def test_distinct_copies_are_distinct_modules_with_the_same_behaviour():
    copies = distinct_copies("seed", 5)
    assert len({w.sha256 for w in copies}) == 5
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(size=8), copies)["cached"]
    assert [runtime.handle(i) for i in range(5)] == [42] * 5
    assert runtime.cache.stats.misses == 5


@pytest.mark.parametrize("name", ["fast", "pooled+pooled", "", "cached+turbo", "baseline+pooled"])
def test_unknown_variants_are_refused(name):
    with pytest.raises(ConfigError, match="variant .* is not allowed; allowed: "):
        parse_variant(name)


def test_variant_names_are_canonical():
    assert parse_variant("pre+cached+pooled").name == "pooled+cached+pre"


def test_cached_variant_with_no_cache_is_a_contradiction(seed_workload):
    with pytest.raises(ConfigError, match="cache policy is 'none'"):
        build_runtimes(["cached"], EngineConfig(), CacheConfig(policy="none"), [seed_workload])


def test_unknown_call_path_is_refused(seed_workload):
    with pytest.raises(ConfigError, match="call path 'fast' is not allowed; allowed: api, lean"):
        build_runtimes(["cached"], EngineConfig(), CacheConfig(), [seed_workload], "fast")
