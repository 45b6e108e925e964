"""WAVE values parsed and typed against a component's own types, with errors at the column; a component of a
world of its own driven through WAVE on both component paths; the middleware's requests as WAVE recipes."""

import pytest
import wasmtime
import wasmtime.component as wc
import yaml

from tests.host.component_guests import BUMP_REALLOC
from tests.workloads.recipe_guests import serving, write_recipe
from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.runtime import build_runtimes
from wasmlab.workloads import load_workload
from wasmlab.workloads.guests.middleware import policy
from wasmlab.workloads.signature import Case, Signature
from wasmlab.workloads.wave import parse_call, parse_value, typed

# A world of its own: a record with an option field, two enums, a string (lowered through realloc into memory).
VERDICT = f"""(component
  (core module $m
    (memory (export "memory") 1)
    {BUMP_REALLOC}
    (func (export "score") (param i32 i32 i32) (result i32)
      (i32.add (local.get 0) (select (local.get 2) (i32.const 0) (local.get 1))))
    (func (export "decide") (param i32) (result i32) (local.get 0))
    (func (export "length") (param i32 i32) (result i32) (local.get 1)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "realloc" (core func $realloc))
  (type $bonus' (option u32))
  (type $req' (record (field "weight" u32) (field "bonus" $bonus')))
  (export $req "req" (type $req'))
  (type $level' (enum "low" "high"))
  (export $level "level" (type $level'))
  (type $verdict' (enum "allow" "deny"))
  (export $verdict "verdict" (type $verdict'))
  (func (export "score") (param "r" $req) (result u32) (canon lift (core func $i "score")))
  (func (export "decide") (param "l" $level) (result $verdict) (canon lift (core func $i "decide")))
  (func (export "length") (param "s" string) (result u32)
    (canon lift (core func $i "length") (memory $mem) (realloc $realloc) string-encoding=utf8)))"""


@pytest.fixture(scope="module")
def component(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wave")
    (folder / "verdict.wat").write_text(VERDICT)
    return folder


def signature(folder, name: str) -> Signature:
    engine = wasmtime.Engine()
    exports = wc.Component(engine, bytes(wasmtime.wat2wasm((folder / "verdict.wat").read_text()))).type.exports(engine)
    return Signature.of(exports[name].ty)


def test_values_are_typed_by_the_exports_own_types(component):
    (_, req), = signature(component, "score").params
    assert typed(parse_value("{weight: 3, bonus: some(4)}"), req) == {"weight": 3, "bonus": 4}
    assert typed(parse_value("{weight: 3}"), req) == {"weight": 3, "bonus": None}  # an option field may be left out
    assert typed(parse_value("{bonus: none, weight: 0x10}"), req) == {"weight": 16, "bonus": None}
    name, args = parse_call('on-request({method: "GET", path: "/a\\u{41}", headers: [("x-role", "user")], body: [104, 105]})')
    assert name == "on-request" and len(args) == 1


@pytest.mark.parametrize("text,message", [
    ('{weight: "3"}', 'column 10: the string "3" is not a u32'),
    ("{weight: 3, bnus: none}", "column 13: field 'bnus' is not in record"),
    ("{weight: -1}", "column 10: -1 is out of range for u32; allowed: 0..4294967295"),
    ("{weight: 3, bonus: 4}", "column 20: the number 4 is not a option<u32>; allowed: none or some(value)"),
    ("{weight: 3,, }", "column 12: cannot read"),
    ("{bonus: some(1)}", "field 'weight' of record {weight: u32, bonus: option<u32>} is missing"),
])
def test_a_value_that_does_not_parse_or_fit_points_at_its_column(component, text, message):
    (_, req), = signature(component, "score").params
    with pytest.raises(ConfigError, match="^WAVE value at ") as refused:
        typed(parse_value(text), req)
    assert message in str(refused.value)


def write(folder, body: dict) -> str:
    return write_recipe(folder, VERDICT, body, "verdict")


@pytest.mark.parametrize("invoke,expected", [
    ("score({weight: 3, bonus: some(4)})", "7"),
    ("score({weight: 3})", "3"),
    ("decide(high)", "deny"),
    ('length("héllo")', "6"),
])
@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_a_component_of_its_own_world_is_served_through_wave_on_both_paths(component, invoke, expected, call_path):
    workload = load_workload(write(component, {"invoke": invoke, "expect": {"result": expected}}))
    assert workload.component and workload.check == "expected"
    runtime = build_runtimes(["cached", "pooled+cached"], EngineConfig(), CacheConfig(), [workload], call_path)
    try:
        for r in runtime.values():
            for _ in range(2):
                r.handle(0)
    finally:
        for r in runtime.values():
            r.close()


def test_a_wrong_expected_value_fails_the_request_and_a_bad_call_is_refused_before(component):
    workload = load_workload(write(component, {"invoke": "decide(low)", "expect": {"result": "deny"}}))
    with serving([workload], "lean", "cached") as runtime:
        with pytest.raises(ResultMismatch, match="returned 'allow', expected 'deny'"):
            runtime.handle(0)
    for body, message in (({"invoke": "decide(medium)"}, "the name medium is not a case of enum {low, high}"),
                          ({"invoke": "judge(low)"}, "recipe invoke: verdict.wat: function 'judge' is not allowed; allowed: decide, length, score"),
                          ({"invoke": "decide(low, high)"}, "decide takes 1 argument(s) (l), the call gives 2"),
                          ({"invoke": "decide(low)", "expect": {"result": "maybe"}}, "recipe expect.result at column 1"),
                          ({}, "recipe invoke: missing")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{").replace("}", r"\}")):
            load_workload(write(component, body))


def test_the_middlewares_requests_are_recipes_in_wave_with_the_policys_answers():
    for name, expected in (("middleware-reject", Case("reject", 401)),
                           ("middleware-5xx", Case("modify", {"set-headers": [], "remove-headers": [], "status": 503}))):
        workload = load_workload(f"data/recipes/{name}.yaml")
        assert workload.expected == expected
    # The policy computes the request id an authorised request gets; written in WAVE, the guest must return it.
    rid = policy.request_id("GET", "/v1/items", b"")
    recipe = {"module": "../../wasmlab/workloads/guests/middleware/middleware.wat",
              "invoke": 'on-request({method: "GET", path: "/v1/items", headers: [("X-Api-Key", "let-me-in")], body: []})',
              "expect": {"result": f'modify({{set-headers: [("x-request-id", "{rid}")], remove-headers: ["x-api-key"], status: none}})'}}
    path = "data/recipes/.auth-ok.yaml"
    try:
        open(path, "w").write(yaml.safe_dump(recipe))
        workload = load_workload(path)
        with serving([workload], "lean", "pooled+cached") as runtime:
            assert runtime.handle(0) == workload.expected
    finally:
        import os
        os.remove(path)


# State inside one instance: add accumulates, get reads it; a fresh instance per request starts from 0 again.
COUNTER = """(component
  (core module $m
    (global $n (mut i32) (i32.const 0))
    (func (export "add") (param i32) (result i32)
      (global.set $n (i32.add (global.get $n) (local.get 0))) (global.get $n))
    (func (export "get") (result i32) (global.get $n)))
  (core instance $i (instantiate $m))
  (func (export "add") (param "k" u32) (result u32) (canon lift (core func $i "add")))
  (func (export "get") (result u32) (canon lift (core func $i "get"))))"""

CALLS = {"steps": [{"invoke": "add(40)", "expect": 40}, {"invoke": "add(2)"}, {"invoke": "get()"}], "expect": {"result": 42}}


@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_a_component_request_of_several_calls_runs_them_in_order_in_one_instance(tmp_path, call_path):
    workload = load_workload(write_recipe(tmp_path, COUNTER, CALLS))
    assert [c.entry for c in workload.before] == ["add", "add"] and workload.entry == "get" and workload.expected == 42
    assert workload.step_labels == ("1. invoke add", "2. invoke add", "3. invoke get")
    for variant in ("cached", "pooled+cached"):
        with serving([workload], call_path, variant) as runtime:
            for _ in range(3):  # 42 every time: each request's calls see only their own instance's state
                assert runtime.handle(0) == 42
            stamps = [0] * 8
            runtime.handle_phased(0, stamps)
            steps = runtime.step_stamps[0]
            assert len(steps) == 4 and steps == sorted(steps) and stamps[4] <= steps[0] and steps[-1] <= stamps[5]
    # An earlier call's expectation is checked too, on both paths.
    wrong = {**CALLS, "steps": [{"invoke": "add(40)", "expect": 41}, *CALLS["steps"][1:]]}
    with serving([load_workload(write_recipe(tmp_path, COUNTER, wrong, "wrong"))], call_path, "cached") as runtime:
        with pytest.raises(ResultMismatch, match=r"\(call add\)' returned 40, expected 41"):
            runtime.handle(0)


def test_component_steps_are_calls_in_wave_and_core_invoke_steps_take_integers(tmp_path):
    for body, message in (({"steps": [{"call": "get"}]}, "recipe steps[0]: counter.wat is a component, whose steps are calls in WAVE"),
                          ({"steps": [{"invoke": "add(1, 2)"}]}, "add takes 1 argument(s) (k), the call gives 2"),
                          ({"steps": [{"invoke": "get()", "expect": "yes"}]}, "recipe steps[0].expect")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
            load_workload(write_recipe(tmp_path, COUNTER, body, "counter"))
    core = '(module (global $n (mut i32) (i32.const 0)) (func (export "add") (param i32) (result i32) ' \
           '(global.set $n (i32.add (global.get $n) (local.get 0))) (global.get $n)))'
    workload = load_workload(write_recipe(tmp_path, core, {"steps": [{"invoke": "add(40)"}, {"invoke": "add(2)"}], "expect": {"result": 42}}, "core"))
    with serving([workload], "lean", "pooled+cached") as runtime:
        runtime.handle(0)
    with pytest.raises(ConfigError, match=r"recipe steps\[0\].expect: a core module's calls are checked through expect.result"):
        load_workload(write_recipe(tmp_path, core, {"steps": [{"invoke": "add(40)", "expect": 40}]}, "core2"))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from wasmlab.workloads import as_recipe, middleware  # noqa: E402
from wasmlab.workloads.wave import format_call, format_value  # noqa: E402

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=150, deadline=None)
@given(method=_text, path=_text, headers=st.lists(st.tuples(_text, _text), max_size=4), body=st.binary(max_size=24),
       status=st.none() | st.integers(0, 65535))
def test_wave_written_by_the_lab_reads_back_as_the_same_values(method, path, headers, body, status):
    signatures = middleware.signatures()
    request = signatures["on-request"]
    (_, shape), = request.params
    value = {"method": method, "path": path, "headers": headers, "body": body}
    name, trees = parse_call(format_call("on-request", (value,), request.params))
    assert name == "on-request" and typed(trees[0], shape) == value  # quotes, backslashes, control characters included
    action = request.result
    for case in (Case("continue"), Case("reject", status or 0),
                 Case("modify", {"set-headers": headers, "remove-headers": [h for h, _ in headers], "status": status})):
        assert typed(parse_value(format_value(case, action)), action) == case


def test_the_middlewares_own_requests_are_recipes_and_print_as_one(tmp_path):
    for request in middleware.REQUESTS:
        recipe = as_recipe(f"middleware:request={request},headers=3,body=40")
        assert recipe == {"module": "middleware", **middleware.request_recipe(request, 3, 40)}
        path = tmp_path / f"{request}.yaml"
        path.write_text(yaml.safe_dump(recipe))
        from_recipe, built_in = load_workload(str(path)), middleware.middleware(request, 3, 40)
        assert (from_recipe.entry, from_recipe.args, from_recipe.expected) == (built_in.entry, built_in.args, built_in.expected)
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump(as_recipe("seed")))
    with serving([load_workload(str(seed))], "lean", "pooled+cached") as runtime:
        runtime.handle(0)
    command = tmp_path / "hello.wat"
    command.write_text('(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1) '
                       '(func (export "_start")))')
    with pytest.raises(ConfigError, match="is a WASI command or a library with host imports; allowed: a workload whose request is one call"):
        as_recipe(str(command))
