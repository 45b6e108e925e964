"""``--beside-lab``'s engine: the server's ``-O`` options read back into the lab's settings (the last of a key winning,
totals left unset at wasmtime's 1000), what the lab cannot take named, and a run without a pool or without a
1-connection load refused in one line before anything starts."""

from __future__ import annotations

import pytest

from wasmlab.errors import ConfigError
from wasmlab.experiments.serve import ServeSettings
from wasmlab.experiments.serve_beside import lab_engine


def test_the_servers_pool_options_become_the_labs_engine():
    options = ("pooling-allocator=n", "pooling-allocator=y", "pooling-total-core-instances=40", "pooling-total-memories=20",
               "pooling-memory-keep-resident=65536", "memory-guard-size=65536", "memory-init-cow=n", "pooling-total-memories=21",
               "inlining=y")
    engine = lab_engine(options)
    pool = engine.config.pool
    assert engine.config.pooled and pool.resolved("total_core_instances") == 40 and pool.resolved("total_memories") == 21
    assert pool.resolved("total_component_instances") == pool.resolved("total_tables") == 1000  # wasmtime's own totals
    assert pool.linear_memory_keep_resident == 65536
    assert engine.config.memory_guard_size == 65536 and engine.config.memory_init_cow is False
    assert engine.left_out == ("inlining=y",)
    assert "pooling-total-memories=21" in engine.applied and "pooling-total-memories=20" not in engine.applied


@pytest.mark.parametrize("options, message", [
    ((), "do not turn the pool on"),
    (("pooling-allocator=y", "pooling-allocator=n"), "do not turn the pool on"),
    (("pooling-allocator=y", "pooling-total-memories=lots"), "-O pooling-total-memories=lots is not a whole number"),
])
def test_what_the_lab_cannot_compare_is_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        lab_engine(options)


def test_beside_lab_needs_the_1_connection_load():
    with pytest.raises(ConfigError, match="--connections is '2,4'; allowed: connection counts including 1"):
        ServeSettings(connections=(2, 4), optimize=("pooling-allocator=y",), beside_lab=True)
    assert ServeSettings(connections=(1, 2), optimize=("pooling-allocator=y",), beside_lab=True).beside_lab


def test_the_labs_figure_is_the_native_paths_with_the_lean_one_beside_it():
    from tests.conftest import small_pool_engine
    from wasmlab.experiments.serve_beside import LabEngine, measure_lab
    from wasmlab.workloads.proxy import proxy

    beside = measure_lab(proxy("proxy").wasm, LabEngine(small_pool_engine(2), ("pooling-allocator=y",), ()), repetitions=2,
                         requests=10, warmup=3)
    lab = beside.as_dict()["lab"]
    assert lab["call_path"] == "native" and lab["instances_made"] == 23 and lab["repetitions"] == 2
    assert lab["lean"]["call_path"] == "lean" and lab["lean"]["instances_made"] == 23
    first, lean = beside.lines()[:2]
    assert "native path" in first and f"p50 {beside.lab.p50_us.point:.1f} µs" in first
    assert lean.startswith(f"The same request from Python (lean path, one ctypes call a step): p50 {beside.lean.p50_us.point:.1f} µs")


@pytest.mark.parametrize("lean_interval, said", [
    ((20.0, 19.0, 21.0), "6.0 µs of it the binding's"),  # apart: the binding's share is the difference
    ((14.5, 13.5, 15.5), "the binding's share within the noise (the intervals overlap)"),
    ((10.0, 9.5, 10.5), "below the native figure, beyond its interval"),  # never a negative share
])
def test_the_binding_s_share_is_said_only_where_the_intervals_are_apart(lean_interval, said):
    from tests.conftest import small_pool_engine
    from wasmlab.experiments.serve_beside import BesideLab, LabEngine
    from wasmlab.measure.instantiate_only import InstantiateOnly
    from wasmlab.measure.stats import Ratio

    def figures(point, low, high):
        return InstantiateOnly(Ratio(point, low, high, 5, "m"), Ratio(point, low, high, 5, "m"), (point,) * 5, (point,) * 5,
                               warmup=1, requests=10, instances=51)

    beside = BesideLab(figures(14.0, 13.0, 15.0), LabEngine(small_pool_engine(2), ("pooling-allocator=y",), ()),
                       lean=figures(*lean_interval))
    assert said in beside.lines()[1]
