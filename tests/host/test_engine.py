import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import _native
from wasmlab.config import EngineConfig
from wasmlab.host.engine import build_engine
from wasmlab.host.outcomes import classify, failure_kind
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
    with pytest.raises(wasmtime.WasmtimeError, match=f"maximum concurrent limit of {slots} for core instances reached") as refused:
        wasmtime.Instance(extra, module, ())
    # One place recognises it, from wasmtime's exception, its message or the C driver's code for it.
    assert failure_kind(refused.value) == failure_kind(str(refused.value)) == classify(refused.value) == "pool_exhausted"
    assert failure_kind(_native.ERROR_POOL_EXHAUSTED) == "pool_exhausted" and failure_kind(_native.ERROR_OTHER) == "error"
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


@pytest.mark.parametrize("slots", [1, 7, 20, 1000])
def test_the_engine_the_releases_run_and_the_advisors_code_agree_on_the_pool_totals(slots, monkeypatch):
    """One slots -> totals mapping: what the in-process engine sets on wasmtime's pooling config, what a release's
    child is told to set, and what the advisor tells a host to paste are the same five totals."""
    import re

    from wasmlab import capi
    from wasmlab.config import SLOT_TOTALS, PoolConfig
    from wasmlab.experiments.advisor.needs import ServingNeeds
    from wasmlab.experiments.advisor.snippets import SERVE_OPTIONS, release_symbols, rust, wasmtime_serve
    from wasmlab.experiments.advisor.space import Candidate
    from wasmlab.host.engine import build_config
    from wasmlab.measure.release_run import pooling_knobs

    engine_set: dict[str, int] = {}
    for name, setter in list(capi.POOLING_SETTERS.items()):
        def recording(ptr, value, name=name, setter=setter):
            engine_set[name] = value
            setter(ptr, value)  # the real C setter still configures the real pool
        monkeypatch.setitem(capi.POOLING_SETTERS, name, recording)
    build_config(EngineConfig(allocator="pooling", pool=PoolConfig(slots=slots)))
    engine_totals = {k: v for k, v in engine_set.items() if k.startswith("total_")}

    release_totals = {k: v for k, v in pooling_knobs(slots, {}).items() if k.startswith("total_")}

    needs = ServingNeeds(("seed",), 65536, 65536, 0, 0, 1, 1)
    release, has_symbol = release_symbols()
    code = rust(Candidate("pooling", slots), needs, release, has_symbol)
    rust_totals = {name: int(value) for name, value in re.findall(r"\.(total_\w+)\((\d+)\)", code)}
    serve = wasmtime_serve(Candidate("pooling", slots), needs)
    by_option = {option: name for name, option in SERVE_OPTIONS.items()}
    serve_totals = {by_option[o]: int(v) for o, v in re.findall(r"-O (pooling-total-[\w-]+)=(\d+)", serve)}

    expected = {name: slots for name in SLOT_TOTALS}
    assert "total_component_instances" in expected
    assert engine_totals == release_totals == rust_totals == serve_totals == expected
