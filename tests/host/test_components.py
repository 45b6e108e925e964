"""Components: the middleware guests, the lean component call path, WASI p2 and component pools."""

from __future__ import annotations

import ctypes

import pytest
import wasmtime
import wasmtime.component as wc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.experiments.components import component_call_costs
from wasmlab.experiments.pool_fit import inspect
from wasmlab.host.callpaths.api_component import api_args as _api_args
from wasmlab.host.component_values import PreparedArgs, ResultSlot
from wasmlab.host.pool_sizing import size_pool_for_components
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.harness import MeasureConfig, measure
from wasmlab.measure.traces import repeat
from wasmlab.report.text import binding_table
from wasmlab.workloads import load_workload, middleware
from wasmlab.workloads.signature import Case


class HeldInstance:
    """One instance of the hand-written middleware in one store, called both ways."""

    def __init__(self, wasm: bytes) -> None:
        self.engine = wasmtime.Engine()
        self.component = wc.Component(self.engine, wasm)
        self.store = wasmtime.Store(self.engine)
        self.instance = wc.Linker(self.engine).instantiate(self.store, self.component)
        self.funcs: dict[str, tuple[wc.Func, object]] = {}

    def lean(self, entry: str, args: tuple) -> object:
        from wasmtime import _bindings as ffi

        signature = middleware.signatures()[entry]
        prepared, slot = PreparedArgs(signature, args), ResultSlot(signature.result)
        func = ffi.wasmtime_component_func_t()
        index = self.component.get_export_index(entry)
        assert ffi.wasmtime_component_instance_get_func(ctypes.byref(self.instance._instance), self.store._context(),
                                                        index.ptr(), ctypes.byref(func))
        err = ffi.wasmtime_component_func_call(ctypes.byref(func), self.store._context(), prepared.array, prepared.count,
                                               slot.ref, 1)
        assert not err
        try:
            return slot.take()
        finally:
            prepared.close()

    def api(self, entry: str, args: tuple) -> object:
        signature = middleware.signatures()[entry]
        func = self.instance.get_func(self.store, entry)
        result = func(self.store, *(shape.to_api(a) for (_, shape), a in zip(signature.params, args)))
        return signature.result.from_api(result)


@pytest.fixture(scope="module")
def held() -> HeldInstance:
    return HeldInstance(middleware.wat_component())


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=24)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "DELETE"]),
       path=st.sampled_from(["/", "/v1", "/v1/", "/v1/items", "/v10", "/health", "/V1/items"]),
       headers=st.lists(st.tuples(st.sampled_from(["x-api-key", "X-API-KEY", "accept", "x-request-id"]) | header_text,
                                  st.sampled_from(["let-me-in", "let-me-out", ""]) | header_text), max_size=10),
       body=st.binary(max_size=700))
def test_both_guests_paths_agree_with_the_policy_on_any_request(held, method, path, headers, body):
    """The hand-written guest, called lean and through wasmtime-py, decides what policy.py decides."""
    args = ({"method": method, "path": path, "headers": headers, "body": body},)
    expected = middleware._action(middleware.policy.on_request(method, path, headers, body))
    assert held.lean("on-request", args) == expected
    assert held.api("on-request", args) == expected


@pytest.mark.parametrize("status", [200, 404, 500, 503])
def test_on_response_rewrites_500_only(held, status):
    args = ({"status": status, "headers": [("server", "upstream")], "body": b"oops"},)
    expected = Case("modify", {"set-headers": [], "remove-headers": [], "status": 503}) if status == 500 else Case("continue")
    assert held.lean("on-response", args) == expected == held.api("on-response", args)


def test_prepared_arguments_serve_many_calls_and_stores_with_the_same_answer():
    w = load_workload("middleware")
    runtime = build_runtimes(["pooled+cached"], EngineConfig(pool=PoolConfig(slots=2, max_memory_size=1 << 20), memory_reservation=1 << 20),
                             CacheConfig(), [w])["pooled+cached"]
    results = {repr(runtime.handle(0)) for _ in range(300)}
    assert results == {repr(w.expected)}


@pytest.mark.parametrize("request_name", list(middleware.REQUESTS))
def test_every_middleware_request_is_served_on_both_paths_by_every_variant(request_name):
    m = scenarios.run(scenarios.Scenario(workload=f"middleware:request={request_name},headers=4,body=64", requests=20, repeats=1,
                             warmup=2, slots=2, call_path="both", variants=("baseline", "cached", "pooled+cached")))
    assert not m.errors, m.errors
    table = m.variants(None)
    assert len(table) == 6 and (table["outcome_ok"] == 20).all()


def test_a_guest_that_answers_differently_is_caught_on_both_paths():
    w = load_workload("middleware:request=auth-missing")
    wrong = type(w)(**{**{f: getattr(w, f) for f in w.__dataclass_fields__}, "expected": Case("reject", 403)})
    for path in ("lean", "api"):
        runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [wrong], path)["cached"]
        with pytest.raises(ResultMismatch, match="returned reject\\(401\\), expected reject\\(403\\)"):
            runtime.handle(0)


@pytest.mark.timing
def test_lean_component_path_is_at_least_10x_faster_than_wasmtime_py_for_the_middleware_request_side_by_side():
    """The issue's bar, on full requests (8 headers, 512 B body, pooled+cached): ~20x here."""
    w = load_workload("middleware")
    assert len(w.args[0]["headers"]) == 8 and len(w.args[0]["body"]) == 512
    runtimes = build_runtimes(["pooled+cached", "pooled+cached@api"],
                              EngineConfig(pool=PoolConfig(slots=4, max_memory_size=1 << 20), memory_reservation=1 << 20), CacheConfig(), [w])
    m = measure(runtimes, repeat(150), MeasureConfig(warmup=20, repeats=3))
    row = binding_table(m).set_index("variant").loc["pooled+cached"]
    assert row["median_ratio"] >= 10, row


@pytest.mark.timing  # two call costs compared side by side: measured alone, not beside another test
def test_the_call_costs_split_the_binding_from_the_guest():
    rows = {r["part"]: r["us_per_call"] for r in component_call_costs("middleware", calls=30, repeats=3)}
    api, lean = rows["api call (wasmtime-py)"], rows["lean call (args built once, result read)"]
    assert api > 10 * lean
    # wasmtime-py's argument conversion is most of its call for a request with headers and a body
    assert rows["api: arguments converted to C values"] > 0.5 * api


def test_middleware_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="middleware request 'bogus' is not allowed; allowed: auth-missing, auth-ok"):
        load_workload("middleware:request=bogus")
    with pytest.raises(ConfigError, match="parameter headers='many' is not an integer"):
        load_workload("middleware:headers=many")
    with pytest.raises(ConfigError, match="has no parameter 'size'"):
        load_workload("middleware:size=3")
    signature = middleware.signatures()["on-request"]
    with pytest.raises(ConfigError, match="cannot be encoded as UTF-8"):
        signature.check_args(({"method": "GET", "path": "/\udc80", "headers": [], "body": b""},), "on-request")
    with pytest.raises(ConfigError, match="are not the fields of the record"):
        signature.check_args(({"method": "GET"},), "on-request")
    with pytest.raises(ConfigError, match="70000 is out of range for u16"):
        middleware.signatures()["on-response"].check_args(({"status": 70000, "headers": [], "body": b""},), "on-response")


def test_a_middleware_component_given_by_path_gets_the_middleware_requests(tmp_path):
    path = tmp_path / "mw.wasm"
    path.write_bytes(middleware.wat_component())
    w = load_workload(str(path))
    assert w.kind == "component" and w.entry == "on-request" and w.expected == load_workload("middleware").expected
    m = scenarios.run(scenarios.Scenario(workload=str(path), requests=10, repeats=1, warmup=1, slots=2, variants=("pooled+cached",)))
    assert not m.errors and (m.variants(None)["outcome_ok"] == 10).all()


def test_api_arguments_are_converted_once_per_workload():
    w = load_workload("middleware")
    record = _api_args(w)[0]
    assert isinstance(record, wc.Record) and record.method == "GET" and isinstance(record.body, bytes)


# -- the componentize-py middleware: CPython inside, WASI preview 2 ------------------------------------------


@pytest.fixture(scope="module")
def middleware_py():
    middleware.build_py_component()
    return load_workload("middleware-py")


@pytest.mark.slow  # the 18 MB componentize-py guest: compiles for seconds
def test_the_componentize_py_middleware_serves_pooled_requests_with_a_wasi_context_on_both_paths(middleware_py):
    assert middleware_py.wasi and middleware_py.size_bytes > 10 << 20
    # One variant and one request shape: every compilation of this 18 MB component costs seconds.  Every result is
    # checked against the workload's expected value, here the middleware's answer to an upstream 500.
    response_500 = load_workload("middleware-py:request=response-500")
    assert response_500.expected == Case("modify", {"set-headers": [], "remove-headers": [], "status": 503})
    m = scenarios.run(scenarios.Scenario(workload="middleware-py:request=response-500", requests=8, repeats=1, warmup=2, slots=2,
                                         call_path="both", variants=("pooled+cached",)))
    assert not m.errors, m.errors
    assert (m.variants(None)["outcome_ok"] == 8).all() and set(m.variants(None)["call_path"]) == {"lean", "api"}
    assert m.metadata["workload_check"] == "expected"


@pytest.mark.slow  # the 18 MB componentize-py guest: compiles for seconds
def test_a_pool_is_sized_per_component_and_inspect_confirms_it(middleware_py):
    result = inspect(middleware_py)
    needs = result.requirements
    assert result.confirmed
    assert needs["max_core_instances_per_component"] > 5 and needs["max_memory_size"] > 10 << 20
    pool = size_pool_for_components(PoolConfig(slots=3), [middleware_py])
    assert pool.total_core_instances == 3 * needs["max_core_instances_per_component"]
    assert pool.total_component_instances == 3
    assert "max_core_instances_per_component" in result.render()
    # the seed preset's 20 slots hold one instance of a 14-core-instance component at once
    assert result.concurrent["seed"] == 20 // needs["max_core_instances_per_component"]
    assert "its totals hold 1 instance(s) at once" in result.render()
