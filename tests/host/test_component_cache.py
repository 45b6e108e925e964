"""The native driver's compiled-component cache (issue 25): keyed by the component's bytes and the exports its calls name,
the least recently used entry evicted when full, as the core modules' cache (and the lean path's cachetools LRU) do."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import wasmtime

from wasmlab import _native, capi
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.native import library


def constant_component(value: int) -> bytes:
    """A component whose ``run() -> u32`` answers ``value``: distinct bytes per value, so a distinct cache key."""
    return bytes(wasmtime.wat2wasm(f"""(component
  (core module $m (func (export "run") (result i32) i32.const {value}))
  (core instance $i (instantiate $m))
  (func (export "run") (result u32) (canon lift (core func $i "run"))))"""))


@pytest.fixture
def driver_of():
    made = []

    def make(capacity: int):
        engine = wasmtime.Engine()
        driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=capacity)
        made.append((driver, engine))
        indices = []
        for value in range(4):
            wasm = constant_component(value)
            call = boundary.ComponentCallPlan(b"run", (), True, _native.CHECK_EXPECTED, boundary.ComponentValue(6, value))
            indices.append(driver.add_component(boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), (call,))))
        return driver, indices

    yield make
    for driver, _ in made:
        driver.close()


def serve(driver, order: list[int]) -> dict[str, int]:
    records = np.zeros((len(order), _native.RECORD_WORDS), dtype=np.int64)
    _, message = driver.run(np.asarray(order, dtype=np.int32), records, None, None, None)
    assert (records[:, 1] == _native.OUT_OK).all(), message  # each answer compared in C with its own constant
    return {k: int(v) for k, v in driver.take_stats().items() if k in ("hits", "misses", "evictions")}


def test_the_least_recently_used_component_is_evicted_when_the_cache_is_full(driver_of):
    driver, (a, b, c, _) = driver_of(2)
    assert serve(driver, [a, b]) == {"hits": 0, "misses": 2, "evictions": 0}
    assert serve(driver, [a]) == {"hits": 1, "misses": 0, "evictions": 0}  # a is now the most recent
    assert serve(driver, [c]) == {"hits": 0, "misses": 1, "evictions": 1}  # b, the least recent, goes
    assert serve(driver, [a, c]) == {"hits": 2, "misses": 0, "evictions": 0}
    assert serve(driver, [b]) == {"hits": 0, "misses": 1, "evictions": 1}


def test_a_cycle_longer_than_the_cache_misses_every_time_under_lru(driver_of):
    driver, (a, b, c, _) = driver_of(2)
    assert serve(driver, [a, b, c] * 4) == {"hits": 0, "misses": 12, "evictions": 10}


def test_no_cache_compiles_every_request_and_keeps_nothing(driver_of):
    driver, (a, b, _, _) = driver_of(0)
    assert serve(driver, [a, a, b]) == {"hits": 0, "misses": 3, "evictions": 0}


def test_a_cache_large_enough_compiles_each_component_once(driver_of):
    driver, indices = driver_of(16)
    assert serve(driver, indices * 5) == {"hits": 16, "misses": 4, "evictions": 0}
