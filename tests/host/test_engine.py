import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab.config import EngineConfig
from wasmlab.host.engine import build_engine
from wasmlab.workloads import load_workload


def test_pool_of_s_slots_refuses_instance_s_plus_one_until_one_is_released(seed_workload):
    slots = 4
    engine = build_engine(small_pool_engine(slots))
    module = wasmtime.Module(engine, seed_workload.wasm)
    live = []
    for _ in range(slots):
        store = wasmtime.Store(engine)
        wasmtime.Instance(store, module, ())
        live.append(store)
    extra = wasmtime.Store(engine)
    with pytest.raises(wasmtime.WasmtimeError, match=f"maximum concurrent limit of {slots} for core instances reached"):
        wasmtime.Instance(extra, module, ())
    live.pop().close()
    wasmtime.Instance(extra, module, ())  # the released slot serves the next instance


def test_on_demand_engine_has_no_such_limit(seed_workload):
    engine = build_engine(EngineConfig())
    module = wasmtime.Module(engine, seed_workload.wasm)
    stores = [wasmtime.Store(engine) for _ in range(30)]
    for store in stores:
        wasmtime.Instance(store, module, ())


def test_module_larger_than_the_pools_memory_is_refused():
    engine = build_engine(small_pool_engine(2))
    with pytest.raises(wasmtime.WasmtimeError, match="module memory does not fit in pooling allocator requirements"):
        wasmtime.Module(engine, load_workload("data-heavy:kib=2048").wasm)


def test_winch_and_cranelift_opt_levels_compile(seed_workload):
    for config in (EngineConfig(compiler="winch"), EngineConfig(opt_level="none"), EngineConfig(memory_init_cow=False)):
        engine = build_engine(config)
        store = wasmtime.Store(engine)
        instance = wasmtime.Instance(store, wasmtime.Module(engine, seed_workload.wasm), ())
        assert instance.exports(store)["run"](store, 41) == 42
