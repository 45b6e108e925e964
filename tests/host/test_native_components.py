"""Components on the native call path (issue 25): the lab's middleware served by the C loop on every variant with every
result compared in C, a wrong expectation (at the top of the value tree or deep inside it) failing every native variant
at the first request, requests of several calls (a recipe's invoke steps) made in one instance with every call checked
and stamped, and what the path refuses in one line."""

from __future__ import annotations

import dataclasses

import pytest

from wasmlab import _native, capi
from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.native_component import ComponentServer, plan
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import load_workload, middleware
from wasmlab.workloads.signature import Case

VARIANTS = ("baseline", "cached", "pooled+cached")
POOL = EngineConfig(pool=PoolConfig(slots=2, max_memory_size=1 << 20), memory_reservation=1 << 20)


def with_expected(spec: str, expected: object):
    w = load_workload(spec)
    return dataclasses.replace(w, expected=expected)


@pytest.mark.parametrize("request_name", list(middleware.REQUESTS))
def test_every_middleware_request_is_served_on_the_native_path_by_every_variant(request_name):
    m = scenarios.run(scenarios.Scenario(workload=f"middleware:request={request_name},headers=4,body=64", requests=20, repeats=1,
                                         warmup=2, slots=2, call_path="native,lean", variants=VARIANTS))
    assert not m.errors, m.errors
    table = m.variants(None)
    assert len(table) == 6 and (table["outcome_ok"] == 20).all()


def test_the_native_path_serves_many_requests_with_the_checked_answer():
    w = load_workload("middleware")
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [w], "native")["pooled+cached"]
    for _ in range(300):
        runtime.handle(0)  # each compared in C with the expected tree; a difference raises


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_wrong_expected_action_fails_every_native_variant_at_the_first_request(variant):
    wrong = with_expected("middleware:request=auth-missing", Case("reject", 403))
    runtime = build_runtimes([variant], POOL, CacheConfig(), [wrong], "native")[variant]
    # The same words as the lean path's: the result is lifted once, to name it.
    with pytest.raises(ResultMismatch, match="returned reject\\(401\\), expected reject\\(403\\)"):
        runtime.handle(0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_difference_deep_in_the_result_tree_is_caught(variant):
    right = load_workload("middleware").expected
    payload = dict(right.value)
    payload["set-headers"] = [(payload["set-headers"][0][0], "4b4224eebccafced")]  # one character of a nested string
    wrong = with_expected("middleware", Case(right.tag, payload))
    runtime = build_runtimes([variant], POOL, CacheConfig(), [wrong], "native")[variant]
    with pytest.raises(ResultMismatch, match="returned modify.*4b4224eebccafcec.*expected modify.*4b4224eebccafced"):
        runtime.handle(0)


def test_a_mismatch_in_a_block_stops_it_at_the_first_request():
    wrong = with_expected("middleware:request=auth-missing", Case("reject", 403))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [wrong], "native")["pooled+cached"]
    server = ComponentServer(runtime.parts, [wrong])
    _, message, records = server.run([0, 0, 0])
    assert records[0, 1] == _native.OUT_MISMATCH and (records[1:, 1] == -1).all() and "expected value" in message


def test_pre_is_refused_on_components_with_the_reason():
    with pytest.raises(ConfigError, match="no InstancePre for components"):
        build_runtimes(["pooled+cached+pre"], POOL, CacheConfig(), [load_workload("middleware")], "native")


def test_the_plan_lowers_the_arguments_and_the_expectation_once_as_value_trees():
    w = load_workload("middleware")
    (p,) = plan(w).calls
    assert p.check == _native.CHECK_EXPECTED and p.returns and p.entry == b"on-request"
    assert p.expected is not None and p.expected.kind == 16 and p.expected.text == b"modify"  # a variant
    assert len(p.args) == 1 and p.args[0].kind == 14  # the request record
    (first,) = plan(dataclasses.replace(w, check="first-result")).calls
    assert first.check == _native.CHECK_FIRST and first.expected is None


def test_value_trees_keep_float_bits_and_scalars_unsigned():
    for shape_kind, value, bits in (("f32", -0.0, 0x8000_0000), ("s32", -1, 0xFFFF_FFFF_FFFF_FFFF)):
        slot = capi.component_val_t()
        slot.kind = {"f32": 9, "s32": 5}[shape_kind]
        setattr(slot.of, shape_kind, value)
        tree = boundary.value_tree(slot)
        assert tree.number == bits


def test_a_first_result_check_learns_in_c_and_holds():
    w = dataclasses.replace(load_workload("middleware"), check="first-result")
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [w], "native")["cached"]
    for _ in range(20):
        runtime.handle(0)


@pytest.mark.parametrize("k", [2, 7])
def test_a_block_fails_at_the_request_whose_result_differs(k):
    # Each request is a fresh instance, so a guest cannot change its answer between requests without host state; a
    # request of another workload whose expectation is wrong, at position k of the block, stands in for it: the C loop
    # checks every request, not the first only.
    right = load_workload("middleware:request=auth-missing")
    wrong = with_expected("middleware:request=auth-missing", Case("reject", 403))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [right, wrong], "native")["pooled+cached"]
    server = ComponentServer(runtime.parts, [right, wrong])
    _, _, records = server.run([0] * (k - 1) + [1] + [0] * 3)
    assert (records[:k - 1, 1] == _native.OUT_OK).all()
    assert records[k - 1, 1] == _native.OUT_MISMATCH and (records[k:, 1] == -1).all()


# A component written in the text format: core functions lifted as component exports, to reach the C loop directly.
SMALL = """(component
  (core module $m
    (func (export "trap") (result i32) unreachable)
    (func (export "neg0") (result f32) f32.const -0.0)
    (func (export "seven") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func (export "trap") (result u32) (canon lift (core func $i "trap")))
  (func (export "neg0") (result f32) (canon lift (core func $i "neg0")))
  (func $seven (export "seven") (result u32) (canon lift (core func $i "seven")))
  (instance $api (export "seven" (func $seven)))
  (export "pkg:ns/iface@1.0.0" (instance $api)))"""


@pytest.fixture(scope="module")
def small_driver():
    import hashlib

    import wasmtime

    from wasmlab.host.callpaths.native import library

    wasm = bytes(wasmtime.wat2wasm(SMALL))
    engine = wasmtime.Engine()
    driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=4)

    def add(entry: bytes, check: int, expected: boundary.ComponentValue | None = None) -> int:
        call = boundary.ComponentCallPlan(entry, (), True, check, expected)
        return driver.add_component(boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), (call,)))

    yield driver, add, engine
    driver.close()


def serve(driver, index: int, n: int):
    import numpy as np

    records = np.zeros((n, _native.RECORD_WORDS), dtype=np.int64)
    _, message = driver.run(np.full(n, index, dtype=np.int32), records, None, None, None)
    return records[:, 1].tolist(), message


def test_a_native_component_run_survives_1000_trapping_requests(small_driver):
    driver, add, _ = small_driver
    outcomes, message = serve(driver, add(b"trap", _native.CHECK_NONE), 1000)
    assert outcomes == [_native.OUT_TRAP] * 1000 and "unreachable" in message
    assert serve(driver, add(b"seven", _native.CHECK_EXPECTED, boundary.ComponentValue(6, 7)), 5)[0] == [_native.OUT_OK] * 5


def test_floats_are_compared_by_their_bits(small_driver):
    driver, add, _ = small_driver
    # -0.0 == 0.0 in Python; in C the bits differ, so the check fails at the first request and the block stops.
    assert serve(driver, add(b"neg0", _native.CHECK_EXPECTED, boundary.ComponentValue(9, 0)), 3)[0] == [_native.OUT_MISMATCH, -1, -1]
    assert serve(driver, add(b"neg0", _native.CHECK_EXPECTED, boundary.ComponentValue(9, 0x8000_0000)), 3)[0] == [_native.OUT_OK] * 3


def test_a_missing_export_and_a_wrong_kind_stop_the_block(small_driver):
    driver, add, _ = small_driver
    assert serve(driver, add(b"absent", _native.CHECK_NONE), 2)[0] == [_native.OUT_NO_EXPORT, -1]
    assert serve(driver, add(b"seven", _native.CHECK_EXPECTED, boundary.ComponentValue(5, 7)), 2)[0] == [_native.OUT_MISMATCH, -1]


def test_a_malformed_value_tree_is_refused_in_one_line(small_driver):
    _, add, _ = small_driver
    with pytest.raises(ValueError, match="kind 99"):
        add(b"seven", _native.CHECK_EXPECTED, boundary.ComponentValue(99))
    with pytest.raises(ValueError, match="as many names as items"):
        add(b"seven", _native.CHECK_EXPECTED, boundary.ComponentValue(14, items=(boundary.ComponentValue(0),)))
    with pytest.raises(ValueError, match="version"):
        add(b"seven", _native.CHECK_EXPECTED, boundary.ComponentValue(6, 7, version=0))


def test_a_component_plan_of_another_version_or_of_no_calls_is_refused_in_one_line(small_driver):
    import hashlib

    driver, _, _ = small_driver
    wasm = bytes(wasmtime_wat2wasm(SMALL))
    stale = boundary.ComponentCallPlan(b"seven", (), True, _native.CHECK_NONE, version=boundary.BOUNDARY_VERSION + 1)
    with pytest.raises(ValueError, match=rf"^ComponentCallPlan version {boundary.BOUNDARY_VERSION + 1}; this build"):
        driver.add_component(boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), (stale,)))
    with pytest.raises(ValueError, match="^ComponentPlan.calls is empty"):
        driver.add_component(boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), ()))
    odd = boundary.ComponentCallPlan(b"seven", (), True, 9)
    with pytest.raises(ValueError, match="^ComponentCallPlan.check 9; allowed: CHECK_NONE, CHECK_EXPECTED, CHECK_FIRST$"):
        driver.add_component(boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), (odd,)))


def wasmtime_wat2wasm(text: str) -> bytes:
    import wasmtime

    return bytes(wasmtime.wat2wasm(text))


def test_a_function_inside_an_exported_interface_is_found_by_its_parent_index(small_driver):
    driver, add, _ = small_driver
    seven = boundary.ComponentValue(6, 7)
    assert serve(driver, add(b"pkg:ns/iface@1.0.0#seven", _native.CHECK_EXPECTED, seven), 3)[0] == [_native.OUT_OK] * 3
    assert serve(driver, add(b"pkg:ns/iface@1.0.0#absent", _native.CHECK_NONE), 1)[0] == [_native.OUT_NO_EXPORT]
    assert serve(driver, add(b"pkg:ns/nothing#seven", _native.CHECK_NONE), 1)[0] == [_native.OUT_NO_EXPORT]


@pytest.mark.slow  # the 18 MB componentize-py guest: compiles for seconds
def test_the_componentize_py_middleware_gets_wasi_p2_on_the_native_path():
    # CPython inside, importing wasi:*: without WASI p2 on the linker and a context on each store it cannot instantiate
    # (or wasmtime aborts at its first WASI call).  One compile (10-18 s), then every request checked in C.
    middleware.build_py_component()
    w = load_workload("middleware-py")
    assert w.wasi and plan(w).wasi
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [w], "native")["cached"]
    for _ in range(3):
        runtime.handle(0)


# A request of several calls in one instance (a recipe's invoke steps): set writes the instance's memory, bump adds one
# to it, get reads it back; 6 from bump and get holds only when all three calls reach the same instance.
MEMORY = """(component
  (core module $m
    (memory 1)
    (func (export "set") (param i32) (i32.store (i32.const 64) (local.get 0)))
    (func (export "bump") (result i32)
      (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1))) (i32.load (i32.const 64)))
    (func (export "get") (result i32) (i32.load (i32.const 64))))
  (core instance $i (instantiate $m))
  (func (export "set") (param "v" u32) (canon lift (core func $i "set")))
  (func (export "bump") (result u32) (canon lift (core func $i "bump")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))"""

STEPS = {"steps": [{"invoke": "set(5)"}, {"invoke": "bump()", "expect": 6}, {"invoke": "get()"}], "expect": {"result": 6}}


def memory_recipe(tmp_path, body=None, name="memory"):
    from tests.workloads.recipe_guests import write_recipe

    return load_workload(write_recipe(tmp_path, MEMORY, body or STEPS, name))


@pytest.mark.parametrize("call_path", ["native", "lean"])
def test_a_request_of_several_calls_is_served_in_one_instance_with_every_call_checked(tmp_path, call_path):
    from tests.workloads.recipe_guests import serving

    w = memory_recipe(tmp_path)
    assert [c.entry for c in w.before] == ["set", "bump"] and w.entry == "get"
    calls = plan(w).calls
    assert [(c.entry, c.returns, c.check) for c in calls] == [
        (b"set", False, _native.CHECK_NONE), (b"bump", True, _native.CHECK_EXPECTED), (b"get", True, _native.CHECK_EXPECTED)]
    assert calls[0].args == (boundary.ComponentValue(6, 5),) and calls[1].expected == boundary.ComponentValue(6, 6)
    for variant in VARIANTS:
        with serving([w], call_path, variant) as runtime:
            for _ in range(30):
                runtime.handle(0)  # native: compared in C, none lifted; lean: 6 compared in Python
            if runtime.block is not None:
                failures: list = []
                runtime.block([0] * 100, [0] * 100, failures)
                assert failures == [], (variant, failures[:1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_wrong_expectation_at_the_second_call_fails_naming_that_call_and_the_request(tmp_path, variant):
    from tests.workloads.recipe_guests import serving

    body = {**STEPS, "steps": [STEPS["steps"][0], {"invoke": "bump()", "expect": 7}, STEPS["steps"][2]]}
    w = memory_recipe(tmp_path, body, "wrong")
    with serving([w], "native", variant) as runtime:
        with pytest.raises(ResultMismatch, match=r"'wrong \(call bump\)' returned 6, expected 7.*\(request 1, call 2 of 3\)$"):
            runtime.handle(0)
    # The last call's expectation is the recipe's expect.result: checked too, and named as the workload.
    w = memory_recipe(tmp_path, {**STEPS, "expect": {"result": 5}}, "last")
    with serving([w], "native", variant) as runtime:
        server = runtime.block.func.__self__
        _, message, records = server.run([0, 0, 0])
        assert records[:, 1].tolist() == [_native.OUT_MISMATCH, -1, -1]
        assert message == "request 1, call 3 of 3 (get): the result differs from the expected value"
        with pytest.raises(ResultMismatch, match=r"'last' returned 6, expected 5.*\(request 2, call 3 of 3\)$"):
            runtime.handle(0)


def test_calls_checked_against_the_first_request_learn_in_c_and_hold(tmp_path):
    from tests.workloads.recipe_guests import serving

    body = {"steps": [{"invoke": "set(5)"}, {"invoke": "bump()"}, {"invoke": "get()"}]}
    w = memory_recipe(tmp_path, body, "first")
    assert [c.check for c in plan(w).calls] == [_native.CHECK_NONE, _native.CHECK_FIRST, _native.CHECK_FIRST]
    with serving([w], "native", "pooled+cached") as runtime:
        failures: list = []
        runtime.block([0] * 50, [0] * 50, failures)
        assert failures == []


def test_phased_requests_stamp_each_call_inside_the_call_phase(tmp_path):
    import numpy as np

    from tests.workloads.recipe_guests import serving

    w = memory_recipe(tmp_path)
    with serving([w], "native", "pooled+cached") as runtime:
        stamps = [0] * 8
        runtime.handle_phased(0, stamps)
        steps = runtime.step_stamps[0]
        assert len(steps) == 4 and steps == sorted(steps) and stamps[4] <= steps[0] and steps[-1] <= stamps[5]
        block_stamps = np.zeros((5, _native.STAMPS), dtype=np.int64)
        ok, per_request = runtime.block_phased([0] * 5, block_stamps)
        assert ok.all() and all(len(s) == 4 and s == sorted(s) for s in per_request)
        assert all(p[4] <= s[0] and s[-1] <= p[5] for p, s in zip(block_stamps.tolist(), per_request))


def test_native_and_lean_serve_the_same_recipe_of_several_calls(tmp_path):
    from tests.workloads.recipe_guests import write_recipe

    path = write_recipe(tmp_path, MEMORY, STEPS, "memory")
    m = scenarios.run(scenarios.Scenario(workload=path, requests=200, repeats=1, warmup=10, slots=2,
                                         call_path="native,lean", variants=("cached", "pooled+cached")))
    assert not m.errors, m.errors
    table = m.variants(None)
    assert len(table) == 4 and (table["outcome_ok"] == 200).all()


def test_a_cached_component_serves_workloads_of_other_calls_with_their_own_export_indices(tmp_path):
    from tests.workloads.recipe_guests import serving

    # The same bytes called as [set, bump, get] and as [get]: one compiled copy each, keyed by the bytes and the calls'
    # exports (a key of the bytes alone would hand the second workload the first one's indices: set called with none).
    steps, alone = memory_recipe(tmp_path), memory_recipe(tmp_path, {"invoke": "get()", "expect": {"result": 0}}, "alone")
    assert steps.sha256 == alone.sha256
    with serving([steps, alone], "native", "cached") as runtime:
        failures: list = []
        runtime.block([0, 1, 0, 1, 1, 0], [0] * 6, failures)
        assert failures == []


def test_a_trap_in_one_of_several_calls_is_a_failed_request_naming_that_call(tmp_path):
    from tests.workloads.recipe_guests import serving, write_recipe

    trapping = MEMORY.replace('(func (export "get") (result i32) (i32.load (i32.const 64)))',
                              '(func (export "get") (result i32) unreachable)')
    w = load_workload(write_recipe(tmp_path, trapping, STEPS, "trapping"))
    with serving([w], "native", "pooled+cached") as runtime:
        failures: list = []
        runtime.block([0] * 3, [0] * 3, failures)  # a trap fails its request, not the variant: all three served
        assert [k for k, _ in failures] == [0, 1, 2]
        assert failures[0][1].kind == "trap" and str(failures[0][1]).startswith("call 3 of 3 (get): ")
