"""Freshness and tenant isolation: no request may see what an earlier one left in memory, a global or a table,
on any variant, call path, slot-reset setting or preset; and the check catches an instance reused across requests."""

from __future__ import annotations

import ctypes

import pytest
import wasmtime

from wasmlab.config import PRESETS
from wasmlab.host.variant import NAMED_VARIANTS
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.harness import MeasureConfig, measure
from wasmlab.measure.traces import repeat
from wasmlab.workloads import load_workload
from wasmlab.workloads.synthetic import FRESH_LEAKS


def clean(m) -> None:
    """Every variant finished and every request ended ok: the guest saw nothing an earlier request left."""
    assert m.errors == {}
    table = m.variants(None)
    assert (table["outcome_ok"] == table["requests"]).all(), table[["variant", "outcome_ok", "requests"]]


def run(**changes):
    base = dict(workload="fresh", requests=30, repeats=1, warmup=3, slots=2)
    return scenarios.run(scenarios.Scenario(**{**base, **changes}))


def test_a_fresh_instance_sees_nothing_and_a_reused_one_sees_every_secret():
    w = load_workload("fresh")
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    run_export = wasmtime.Instance(store, wasmtime.Module(engine, w.wasm), ()).exports(store)["run"]
    assert run_export(store, 41) == 0
    assert run_export(store, 41) == sum(FRESH_LEAKS)  # memory at 4 places, the global and the table slot


def test_every_variant_on_every_call_path_serves_fresh_instances():
    clean(run(variants=NAMED_VARIANTS, call_path="all"))


@pytest.mark.parametrize("pool", [
    {"linear_memory_keep_resident": 65536, "table_keep_resident": 65536},
    {"linear_memory_keep_resident": 1 << 20, "table_keep_resident": 1 << 20, "max_unused_warm_slots": 2},
    {"max_unused_warm_slots": 0},
    {"decommit_batch_size": 8},
])
def test_slot_reset_settings_never_show_one_request_to_the_next(pool):
    clean(run(variants=("pooled+cached", "pooled+cached+pre", "pooled+cached@api", "pooled+cached@native", "pooled+cached+pre@native"),
              pool=pool))


def test_without_copy_on_write_and_with_a_one_slot_pool():
    clean(run(variants=("pooled+cached", "pooled+cached@api", "pooled+cached@native"), engine={"memory_init_cow": False}, slots=1))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_serves_fresh_instances(preset):
    clean(run(variants=("pooled+cached", "pooled+cached+pre"), preset=preset, slots=None,
              engine={"memory_reservation": 1 << 20, "memory_guard_size": 1 << 16},
              pool={"max_memory_size": 1 << 20}))


def test_the_check_catches_a_lean_path_that_reuses_its_store_and_instance(monkeypatch):
    """A deliberately broken lean path, built here from the lab's own: its C functions patched so that the
    first request's store and instance serve every later request.  The lab's own result check must fail it."""
    from wasmlab import capi

    real_new, real_instantiate = capi.store_new, capi.instance_new
    kept: dict[str, object] = {}

    def store_new(engine, data, finalizer):
        if "store" not in kept:
            kept["store"] = real_new(engine, data, finalizer)
        return kept["store"]

    def instance_new(context, module, imports, count, instance_ref, trap_ref):
        target = instance_ref._obj
        if "instance" not in kept:
            err = real_instantiate(context, module, imports, count, instance_ref, trap_ref)
            kept["instance"] = ctypes.string_at(ctypes.addressof(target), ctypes.sizeof(target))
            return err
        ctypes.memmove(ctypes.addressof(target), kept["instance"], ctypes.sizeof(target))
        return None

    monkeypatch.setattr(capi, "store_new", store_new)
    monkeypatch.setattr(capi, "store_delete", lambda store: None)
    monkeypatch.setattr(capi, "instance_new", instance_new)
    scenario = scenarios.Scenario(workload="fresh", variants=("pooled+cached",), requests=10, repeats=1, warmup=0, slots=2)
    m = measure(scenario.build_runtimes(), repeat(10), MeasureConfig(warmup=0, repeats=1))
    assert "returned 63, expected 0" in m.errors["pooled+cached"]
