"""The proxy's instantiate-only request (``wasmlab serve --beside-lab``'s lab side), run for real on a pooling engine:
each request makes its own store and instance (counted at the C calls themselves) and gives its slot back, so a pool of
one instance serves any number of requests; the timing refuses figures whose requests did not each make an instance."""

from __future__ import annotations

import ctypes

import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.proxy_instances import ProxyInstances
from wasmlab.measure.instantiate_only import time_requests
from wasmlab.workloads.proxy import proxy

PER_REQUEST = ("wasmtime_store_new", "wasmtime_context_set_wasi", "wasmtime_context_set_wasi_http",
               "wasmtime_component_linker_instantiate", "wasmtime_component_instance_get_func", "wasmtime_store_delete")


def _one_instance_pool() -> ProxyInstances:
    """The proxy on a pool of exactly one proxy instance (its two core instances)."""
    config = small_pool_engine(1)
    return ProxyInstances(config.replace(pool=config.pool.replace(total_core_instances=2)), proxy("proxy").wasm)


def test_each_request_makes_its_own_instance_and_gives_its_slot_back():
    instances = _one_instance_pool()
    with capi.counting() as counted:
        request = instances.bind()
        for _ in range(5):
            request()
    assert {name: counted.by_name.get(name) for name in PER_REQUEST} == dict.fromkeys(PER_REQUEST, 5)
    assert instances.made == 5


def test_the_one_instance_pool_is_real_a_kept_instance_leaves_no_slot():
    """What the test above rests on: while one proxy instance lives, the pool has no slot for a request's."""
    instances = _one_instance_pool()
    store = wasmtime.Store(instances.engine)
    wasi = wasmtime.WasiConfig()
    store.set_wasi(wasi)
    capi.context_set_wasi_http(store._context())
    kept = capi.component_instance_t()
    err = capi.component_linker_instantiate(instances.linker.ptr(), store._context(), instances.component.ptr(),
                                            ctypes.byref(kept))
    assert not err
    with pytest.raises(wasmtime.WasmtimeError, match="maximum concurrent"):
        instances.bind()()
    assert instances.made == 0


def test_timed_requests_are_each_an_instance_and_give_figures_over_repetitions():
    instances = _one_instance_pool()
    with capi.counting() as counted:
        figures = time_requests(instances.bind(), lambda: instances.made, repetitions=3, requests=20, warmup=5)
    assert counted.by_name["wasmtime_component_linker_instantiate"] == figures.instances == 5 + 3 * 20
    assert len(figures.p50_by_repetition) == len(figures.mean_by_repetition) == figures.p50_us.repetitions == 3
    assert 0 < figures.p50_us.low <= figures.p50_us.point <= figures.p50_us.high
    assert min(figures.p50_by_repetition) <= figures.p50_us.point <= max(figures.p50_by_repetition)
    assert figures.as_dict()["instances_made"] == 65


def test_timing_refuses_requests_that_did_not_each_make_an_instance():
    instances = _one_instance_pool()
    request = instances.bind()
    with pytest.raises(RuntimeError, match="9 requests made 0 instances"):
        time_requests(request, lambda: 0, repetitions=2, requests=4, warmup=1)


def test_a_component_without_the_handler_is_one_line():
    empty = bytes(wasmtime.wat2wasm("(component)"))
    with pytest.raises(ConfigError, match="no export 'wasi:http/incoming-handler@0.2.0#handle'"):
        ProxyInstances(small_pool_engine(1), empty)
