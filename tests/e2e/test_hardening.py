"""Hostile guests, limits, recovery, pool exhaustion, isolation and preflight: each tried and counted."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import wasmtime
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import small_pool_engine
from wasmlab.config import CacheConfig, EngineConfig, Limits, PoolConfig
from wasmlab.errors import ConfigError, PoolExhausted
from wasmlab.host.engine import build_engine
from wasmlab.host.outcomes import classify
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.host.variant import parse_variant
from wasmlab.measure import traces
from wasmlab.workloads import load_workload
from wasmlab.workloads.hostile import HOSTILE

WASMLAB = [sys.executable, "-m", "wasmlab.cli"]
BUDGET = ["--deadline-ms", "50", "--memory-limit", "4MiB"]


# Only the deadline's guest is timed (50 ms honoured within half again); the others count outcomes.
@pytest.mark.parametrize("guest", [pytest.param(g, marks=pytest.mark.timing) if g == "infinite-loop" else g for g in sorted(HOSTILE)])
def test_every_hostile_guest_ends_with_its_outcome_counted_within_budget(guest):
    """Both Python call paths in one run (variants ``X`` and ``X@api``): one process start per guest."""
    requests, repeats = 10, 2
    started = time.monotonic()
    done = subprocess.run([*WASMLAB, "reproduce", "--workload", guest, "--variants", "pooled+cached,cached", "--slots", "2",
                           "--requests", str(requests), "--repeats", str(repeats), "--warmup", "2", "--call-path", "lean,api",
                           *BUDGET, "--no-save", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    data = json.loads(done.stdout)
    assert set(data["variants"]) == {"pooled+cached", "cached", "pooled+cached@api", "cached@api"}
    kind = load_workload(guest).expected_outcome.split("(")[0]
    for variant, figures in data["variants"].items():
        assert figures[f"outcome_{kind}"] == requests * repeats, (variant, figures)
        assert figures["outcome_ok"] == 0
        assert figures["first_failure"], figures
    if kind == "timeout":  # the deadline is honoured: 50 ms plus a tick or two, not the guest's "forever"
        assert all(data["variants"][v]["latency_us_p50"] < 50_000 * 1.5 for v in ("pooled+cached", "pooled+cached@api"))


def test_fuel_stops_an_infinite_loop_as_fuel():
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [load_workload("infinite-loop")],
                             limits=Limits(fuel=100_000))["cached"]
    with pytest.raises(wasmtime.Trap) as info:
        runtime.handle(0)
    assert classify(info.value) == "fuel"


@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_the_pools_memory_cap_is_named_as_oom(call_path):
    runtime = build_runtimes(["pooled+cached"], small_pool_engine(2), CacheConfig(), [load_workload("memory-bomb")],
                             call_path)["pooled+cached"]
    assert runtime.memory_limit == 1024 * 1024
    with pytest.raises(wasmtime.Trap) as info:
        runtime.handle(0)
    assert info.value.wasmlab_memory_bytes == 1024 * 1024
    assert classify(info.value, runtime.memory_limit) == "oom"


def test_an_unbounded_loop_without_a_budget_is_refused():
    from wasmlab.measure import scenario as scenarios

    with pytest.raises(ConfigError, match="never returns, so it needs a budget"):
        scenarios.Scenario(workload="infinite-loop").build_runtimes()


@pytest.mark.timing
@pytest.mark.parametrize("hostile, limits", [("trap", Limits()), ("infinite-loop", Limits(fuel=50_000)),
                                             ("memory-bomb", Limits(memory_bytes=2 << 20))])
def test_after_1000_failing_requests_the_next_1000_succeed_at_normal_speed(hostile, limits):
    """Pool slots come back and the cache is not poisoned: a pool of 2 slots would be exhausted at
    once if a failed request kept its slot."""
    workloads = [load_workload(hostile), load_workload("seed")]
    used = build_runtimes(["pooled+cached"], small_pool_engine(2), CacheConfig(), workloads, limits=limits)["pooled+cached"]
    fresh = build_runtimes(["pooled+cached"], small_pool_engine(2), CacheConfig(), workloads, limits=limits)["pooled+cached"]
    for _ in range(1000):
        with pytest.raises((wasmtime.Trap, wasmtime.WasmtimeError)):
            used.handle(0)
    # Both warmed alike (the first seed request of each compiles it), then measured in alternating blocks so a
    # shift in the shared machine's speed lands on both sides.
    for _ in range(200):
        used.handle(1)
        fresh.handle(1)

    def times(runtime: Runtime) -> list[int]:
        samples = []
        for _ in range(100):
            t0 = time.perf_counter_ns()
            assert runtime.handle(1) == 42
            samples.append(time.perf_counter_ns() - t0)
        return samples

    after: list[int] = []
    reference: list[int] = []
    for _ in range(10):
        after += times(used)
        reference += times(fresh)
    assert used.cache.stats.misses == 2  # one compile per module, despite 1000 failures
    assert np.median(after) < 1.5 * np.median(reference), (np.median(after), np.median(reference))


def _holder(engine: wasmtime.Engine, seed_module: wasmtime.Module) -> wasmtime.Store:
    store = wasmtime.Store(engine)
    wasmtime.Instance(store, seed_module, ())
    return store


@pytest.mark.timing
@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_exhaustion_fail_refuses_at_once_and_wait_gets_the_freed_slot(call_path):
    seed = load_workload("seed")
    for policy in ("fail", "wait"):
        engine = build_engine(small_pool_engine(1))
        held = _holder(engine, wasmtime.Module(engine, seed.wasm))
        runtime = Runtime(parse_variant("pooled+cached"), engine, CacheConfig(), [seed], call_path,
                          limits=Limits(exhaustion=policy, wait_timeout_ms=2000), memory_limit=1 << 20)
        if policy == "fail":
            started = time.monotonic()
            with pytest.raises(PoolExhausted):
                runtime.handle(0)
            assert time.monotonic() - started < 0.5
        else:
            threading.Timer(0.05, held.close).start()
            assert runtime.handle(0) == 42
            assert runtime.pool_waits == 1 and runtime.pool_wait_ns >= 40e6


def test_wait_gives_up_after_its_timeout():
    seed = load_workload("seed")
    engine = build_engine(small_pool_engine(1))
    held = _holder(engine, wasmtime.Module(engine, seed.wasm))
    runtime = Runtime(parse_variant("pooled+cached"), engine, CacheConfig(), [seed], limits=Limits(exhaustion="wait", wait_timeout_ms=30))
    with pytest.raises(PoolExhausted, match="no pool slot freed within 30"):
        runtime.handle(0)
    assert runtime.pool_wait_ns >= 30e6
    held.close()


def test_threads_sharing_one_slot_fail_or_wait_as_told():
    from wasmlab.experiments.concurrency import concurrency
    from wasmlab.measure.scenario import Scenario

    def one_slot(**limits):
        return Scenario(variants=("pooled+cached",), preset=None, slots=1, requests=3000, warmup=50, limits=limits)

    fail = concurrency(one_slot(exhaustion="fail"), 2, "shared")
    wait = concurrency(one_slot(exhaustion="wait", wait_timeout_ms=1000), 2, "shared")
    assert fail["outcome_pool_exhausted"] > 0 and fail["outcome_ok"] + fail["outcome_pool_exhausted"] == 6000
    # Refused requests are never throughput: it counts the served ones, and the refused are reported beside them.
    assert fail["served_requests"] == fail["outcome_ok"] and fail["failed_requests"] == fail["outcome_pool_exhausted"]
    assert fail["throughput_rps"] == pytest.approx(fail["served_requests"] / (fail["wall_ms"] / 1e3))
    assert fail["offered_rps"] > fail["throughput_rps"]
    assert wait["outcome_pool_exhausted"] == 0 and wait["outcome_ok"] == 6000


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def test_preflight_refuses_a_pool_the_address_space_cannot_hold_instead_of_aborting():
    done = subprocess.run([*WASMLAB, "reproduce", "--variants", "pooled+cached", "--requests", "10", "--no-save"],
                          capture_output=True, text=True, preexec_fn=_limit_address_space, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("wasmlab: error: a pool of 20 memories reserves at least 80.7 GiB")
    assert len(done.stderr.strip().splitlines()) == 1


def test_isolate_turns_a_runtime_abort_into_the_outcome_crash_and_keeps_the_rest(tmp_path):
    """With the preflight off, wasmtime aborts the child (SIGABRT) when the pool cannot be reserved."""
    done = subprocess.run([*WASMLAB, "reproduce", "--isolate", "--child-address-space", "8GiB", "--engine", "preflight=false",
                           "--variants", "cached,pooled+cached", "--requests", "50", "--repeats", "2", "--warmup", "5",
                           "--format", "json", "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["errors"]["pooled+cached"].startswith("crash (SIGABRT): ")
    assert "Cannot allocate memory" in data["errors"]["pooled+cached"]
    assert data["variants"]["cached"]["requests"] == 100 and data["variants"]["cached"]["outcome_ok"] == 100
    import pandas as pd

    summary = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    crashed = summary[summary["variant"] == "pooled+cached"]
    assert list(crashed["status"]) == ["crash"] and int(crashed["outcome_crash"].iloc[0]) == 1


def test_a_contradictory_pool_is_refused_not_aborted():
    with pytest.raises(ConfigError, match="pool.max_memory_size = 4294967296 exceeds engine.memory_reservation = 1048576"):
        EngineConfig(allocator="pooling", memory_reservation=1 << 20)
    EngineConfig(allocator="pooling", memory_reservation=1 << 20, pool=PoolConfig(max_memory_size=1 << 20))


@given(st.sampled_from(["uniform", "zipf"]), st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**31), st.floats(0.2, 3.0))
def test_traces_are_reproducible_from_their_seed(distribution, requests, modules, seed, s):
    a = traces.make_trace(distribution, requests, modules, seed, s)
    b = traces.make_trace(distribution, requests, modules, seed, s)
    assert a == b and len(a) == requests and all(0 <= i < modules for i in a.indices)


@given(st.builds(Limits, fuel=st.one_of(st.none(), st.integers(1, 10**9)), deadline_ms=st.one_of(st.none(), st.floats(0.1, 1e4)),
                 memory_bytes=st.one_of(st.none(), st.integers(0, 2**32)), exhaustion=st.sampled_from(["fail", "wait"])))
def test_limits_round_trip_through_their_dict_form(limits):
    assert Limits.from_dict(json.loads(json.dumps(limits.to_dict()))) == limits
