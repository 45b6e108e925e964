"""Components in a pool on the native path, as core modules are (issue 25's "must hold"): a run survives 1000
trapping requests and an exhausted pool with every failure counted by its kind, and a pool knob set too small for a
component is one line naming the knob and the value it needs, on every call path, instead of wasmtime's words."""

from __future__ import annotations

import threading

import pytest
import wasmtime
import wasmtime.component
from click.testing import CliRunner

from tests.conftest import small_pool_engine
from wasmlab.cli import main
from wasmlab.config import CacheConfig, EngineConfig, Limits, PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.host.engine import EnginePool
from wasmlab.host.outcomes import classify
from wasmlab.host.pool_sizing import requirements, sized_for
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.workloads import load_workload
from wasmlab.workloads.components import component_seed, component_workload
from wasmlab.workloads.model import Workload

# Two core instances (so a pool's per-component limit of 1 refuses it): ``run`` adds one, ``boom`` traps.
TWO_INSTANCES = """(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "add") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
  (core module $t
    (func (export "boom") (param i32) (result i32) unreachable))
  (core instance $i (instantiate $m))
  (core instance $j (instantiate $t))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "add")))
  (func (export "boom") (param "x" u32) (result u32) (canon lift (core func $j "boom"))))"""


def two_instances(entry: str = "run") -> Workload:
    wasm = bytes(wasmtime.wat2wasm(TWO_INSTANCES))
    return component_workload(f"two-instances-{entry}", wasm, entry, (41,), 42 if entry == "run" else None)


def native(workloads: list[Workload], slots: int = 2) -> Runtime:
    return build_runtimes(["pooled+cached"], small_pool_engine(slots), CacheConfig(), workloads, "native")["pooled+cached"]


def test_a_native_component_run_survives_1000_trapping_requests_and_then_serves():
    trapping, good = two_instances("boom"), component_seed()
    runtime = native([trapping, good])
    try:
        failures: list[tuple[int, BaseException]] = []
        runtime.block([0] * 1000, [0] * 1000, failures)
        assert len(failures) == 1000 and {classify(exc) for _, exc in failures} == {"trap"}
        assert "unreachable" in str(failures[0][1])
        # The process is alive and the pool's slots came back: good requests are served and checked in C.
        served: list[tuple[int, BaseException]] = []
        runtime.block([1] * 50, [0] * 50, served)
        assert served == []  # each result compared in C with the seed's 42
    finally:
        runtime.close()


def held_instance(runtime: Runtime, workload: Workload) -> wasmtime.Store:
    """A live instance of ``workload`` on ``runtime``'s engine, holding a pool slot until its store is closed."""
    store = wasmtime.Store(runtime.engine)
    component = wasmtime.component.Component(runtime.engine, workload.wasm)
    wasmtime.component.Linker(runtime.engine).instantiate(store, component)
    return store


def test_an_exhausted_pool_fails_component_requests_as_pool_exhausted_and_frees_again():
    workload = two_instances()
    runtime = native([workload], slots=1)
    try:
        store = held_instance(runtime, workload)  # the pool's one component slot (and both core instance slots)
        failures: list[tuple[int, BaseException]] = []
        runtime.block([0] * 200, [0] * 200, failures)
        assert len(failures) == 200 and {classify(exc) for _, exc in failures} == {"pool_exhausted"}, failures[:2]
        store.close()
        served: list[tuple[int, BaseException]] = []
        runtime.block([0] * 50, [0] * 50, served)
        assert served == []
    finally:
        runtime.close()


@pytest.mark.parametrize("call_path", ["lean", "native"])
def test_an_exhausted_pool_under_wait_serves_once_the_slot_frees(call_path):
    """Under ``--exhaustion wait`` a component request waits for the held slot (freed after 200 ms), as a core one does."""
    workload = two_instances()
    runtime = build_runtimes(["pooled+cached"], small_pool_engine(1), CacheConfig(), [workload], call_path,
                             limits=Limits(exhaustion="wait", wait_timeout_ms=5000.0))["pooled+cached"]
    try:
        # Compiled first: the first compilation's import check instantiates once, in a slot of its own.
        runtime.handle(0)
        store = held_instance(runtime, workload)
        threading.Timer(0.2, store.close).start()
        for _ in range(20):
            runtime.handle(0)  # raises the request's failure
        assert runtime.pool_waits > 0
    finally:
        runtime.close()


# A cheat that keeps an instance (or a store) per request never frees its slot: bounded so it fails, not hangs.
@pytest.mark.timeout(30)
def test_two_threads_on_a_one_slot_component_pool_count_the_losers_requests_as_pool_exhausted():
    engines, workload = EnginePool(), two_instances()
    runtimes = [build_runtimes(["pooled+cached"], small_pool_engine(1), CacheConfig(), [workload], "native", engines=engines)
                ["pooled+cached"] for _ in range(2)]
    assert runtimes[0].engine is runtimes[1].engine
    failures: list[list[tuple[int, BaseException]]] = [[], []]
    start = threading.Barrier(2)

    def serve(k: int) -> None:
        start.wait()
        runtimes[k].block([0] * 3000, [0] * 3000, failures[k])
    threads = [threading.Thread(target=serve, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = [classify(exc) for found in failures for _, exc in found]
    assert kinds and set(kinds) == {"pool_exhausted"}, kinds[:5]
    assert len(kinds) < 6000  # some requests were served: the slot was returned after each
    for runtime in runtimes:
        runtime.close()


@pytest.mark.parametrize("knob, value, needed", [("max_core_instances_per_component", 1, 2), ("max_component_instance_size", 100, None),
                                                 ("total_core_instances", 1, 2)])
def test_a_pool_knob_too_small_for_a_component_is_one_line_naming_the_knob_and_the_value_needed(knob, value, needed):
    workload = two_instances()
    needed = needed or requirements(workload)[knob]
    config = small_pool_engine(2).replace(pool=PoolConfig(slots=2, max_memory_size=1 << 20, **{knob: value}))
    with pytest.raises(ConfigError, match=rf"pool\.{knob} = {value} is too small .* needs {needed}; allowed: --pool {knob}={needed}"):
        sized_for(config, [workload])
    # Exactly what it needs is accepted, and left as the user gave it.
    assert getattr(sized_for(config.replace(pool=config.pool.replace(**{knob: needed})), [workload]).pool, knob) == needed


@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_the_command_refuses_a_too_small_pool_for_a_component_on_every_call_path(tmp_path, monkeypatch, call_path):
    (tmp_path / "two.wat").write_text(TWO_INSTANCES)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["reproduce", "--workload", str(tmp_path / "two.wat"), "--entry", "run", "--args", "41",
                                     "--expect", "42", "--variants", "pooled+cached", "--requests", "30", "--repeats", "1",
                                     "--warmup", "2", "--rounds", "1", "--call-path", call_path, "--slots", "2",
                                     "--pool", "max_core_instances_per_component=1"])
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1, done.stderr
    assert "pool.max_core_instances_per_component = 1" in lines[0] and "needs 2" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before anything ran


def test_a_component_whose_memory_grows_is_served_by_a_pool_sized_for_it():
    """The pool sized for a component leaves max_memory_size at wasmtime's own: sized to what instantiation needs (64 KiB),
    every request of the middleware with a 64 KiB body (its memory grows to 128 KiB) trapped."""
    _serves_20_requests_ok("middleware:request=auth-ok,headers=4,body=65536",
                           EngineConfig(allocator="pooling", pool=PoolConfig(slots=1, total_stacks=1)))


def test_a_pool_sized_for_a_component_holds_it_whatever_the_engines_copy_on_write():
    """The probes measure instance sizes with copy-on-write on; off, the middleware's core instance is 492 bytes instead of
    433: a pool sized to the probed bytes refused it at compilation, so sizes get headroom."""
    _serves_20_requests_ok("middleware", EngineConfig(allocator="pooling", pool=PoolConfig(slots=1, total_stacks=1), memory_init_cow=False))


def _serves_20_requests_ok(spec: str, config: EngineConfig) -> None:
    """pooled+cached on the native path, its pool sized for the workload from ``config``, serves 20 requests, none failing."""
    runtime = build_runtimes(["pooled+cached"], config, CacheConfig(), [load_workload(spec)], "native")["pooled+cached"]
    try:
        failures: list[tuple[int, BaseException]] = []
        runtime.block([0] * 20, [0] * 20, failures)
        assert failures == [], failures[:1]
    finally:
        runtime.close()

