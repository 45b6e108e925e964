"""The proxy's instantiate-only request on the native path (``wasmlab serve --beside-lab``'s lab figure), run for real
in C on a pooling engine: wasmtime makes one instance per request (counted by the driver where wasmtime made it), each
request gives its slot back (a pool of one proxy instance serves any number), the request needs the wasi:http imports
the driver links, and the timing refuses figures whose requests did not each make an instance."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import _native, capi
from wasmlab.config import EngineConfig
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.native import library
from wasmlab.host.engine import build_engine
from wasmlab.host.native_proxy import NativeProxyInstances, proxy_plan
from wasmlab.measure.instantiate_only import time_blocks
from wasmlab.workloads.proxy import proxy


def _one_instance_pool() -> EngineConfig:
    """A pool of exactly one proxy instance (its two core instances)."""
    config = small_pool_engine(1)
    return config.replace(pool=config.pool.replace(total_core_instances=2))


@pytest.fixture
def served():
    instances = NativeProxyInstances(_one_instance_pool(), proxy("proxy").wasm)
    yield instances
    instances.close()


def test_each_request_makes_its_own_instance_and_gives_its_slot_back(served):
    ns = served.block(7)
    assert served.made == 7
    ns = np.append(ns, served.block(5))
    assert served.made == 12 and len(ns) == 12 and (ns > 0).all()


def test_a_kept_instance_leaves_no_slot_for_a_request(served):
    """What the test above rests on: while one proxy instance lives on the engine, the C request finds no slot."""
    served.block(1)
    store = wasmtime.Store(served.engine)
    store.set_wasi(wasmtime.WasiConfig())
    capi.context_set_wasi_http(store._context())
    linker = wasmtime.component.Linker(served.engine)
    linker.add_wasip2()
    linker.add_wasi_http()
    component = wasmtime.component.Component(served.engine, proxy("proxy").wasm)
    kept = capi.component_instance_t()
    assert not capi.component_linker_instantiate(linker.ptr(), store._context(), component.ptr(), ctypes.byref(kept))
    with pytest.raises(RuntimeError, match=r"3 of 3 requests failed, the first with: .*maximum concurrent"):
        served.block(3)
    assert served.made == 1
    del store
    served.block(2)
    assert served.made == 3


def test_reused_instances_are_counted_as_the_instances_wasmtime_made():
    """The driver's count is wasmtime's instances, not requests: with instance reuse 4, 8 requests make 2."""
    engine = build_engine(_one_instance_pool())
    driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=1, reuse=4)
    try:
        index = driver.add_component(proxy_plan(proxy("proxy").wasm))
        records = np.zeros((8, _native.RECORD_WORDS), dtype=np.int64)
        driver.run(np.full(8, index, dtype=np.int32), records)
        assert (records[:, 1] == _native.OUT_OK).all()
        assert records[:, 5].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]  # fresh instance or reused
        assert driver.take_stats()["component_instances"] == 2
    finally:
        driver.close()


def test_timed_requests_are_each_an_instance_and_give_figures_over_repetitions(served):
    figures = time_blocks(served.block, lambda: served.made, repetitions=3, requests=20, warmup=5)
    assert figures.instances == served.made == 5 + 3 * 20
    assert len(figures.p50_by_repetition) == figures.p50_us.repetitions == 3
    assert 0 < figures.p50_us.low <= figures.p50_us.point <= figures.p50_us.high
    with pytest.raises(RuntimeError, match="9 requests made 0 instances"):
        time_blocks(served.block, lambda: 0, repetitions=2, requests=4, warmup=1)


def test_the_request_needs_the_wasi_http_imports_the_driver_links():
    engine = build_engine(_one_instance_pool())
    driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=1)
    try:
        plan = proxy_plan(proxy("proxy").wasm)
        index = driver.add_component(type(plan)(**{**plan.__dict__, "wasi_http": False}))
        records = np.zeros((1, _native.RECORD_WORDS), dtype=np.int64)
        _, message = driver.run(np.full(1, index, dtype=np.int32), records)
        assert records[0, 1] != _native.OUT_OK and "wasi:http" in message
    finally:
        driver.close()


def test_a_component_without_the_handler_is_one_line():
    instances = NativeProxyInstances(small_pool_engine(1), bytes(wasmtime.wat2wasm("(component)")))
    try:
        with pytest.raises(ConfigError, match=r"no function export 'wasi:http/incoming-handler@0.2.0#handle' \(.*not found"):
            instances.block(1)
        assert instances.made == 0
    finally:
        instances.close()
