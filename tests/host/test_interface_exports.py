"""Functions inside exported interfaces (issue 25): a component exporting ``pkg:ns/iface@1.0.0`` (and an interface
inside an interface) is called as ``INTERFACE#FUNCTION`` on the lean, api and native paths, by ``--invoke``, a recipe's
``invoke:`` steps and ``--entry``; the name is resolved in one place (``ComponentTypes.resolve``), every result checked,
and a wrong expected value fails every path and every native variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from tests.host.component_guests import BUMP_REALLOC
from wasmlab.errors import ConfigError
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import introspect, load_workload

IFACE = "pkg:ns/iface@1.0.0"
# Written for these tests in the component text format.  The interface holds a record-taking, a record-returning and
# a string-echoing function (lifted and lowered through memory and realloc), and a `seven` that answers 8, so a call
# that reaches the top-level `seven` (7) instead is caught; `deep` sits in an interface inside an interface.
INTERFACES_WAT = f"""(component
  (core module $m
    (memory (export "memory") 1)
    {BUMP_REALLOC}
    (func (export "seven") (result i32) i32.const 7)
    (func (export "eight") (result i32) i32.const 8)
    (func (export "sum") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func (export "swap") (param i32 i32) (result i32)
      (i32.store (i32.const 16) (local.get 1))
      (i32.store (i32.const 20) (local.get 0))
      i32.const 16)
    (func (export "echo") (param i32 i32) (result i32)
      (i32.store (i32.const 32) (local.get 0))
      (i32.store (i32.const 36) (local.get 1))
      i32.const 32))
  (core instance $i (instantiate $m))
  (type $point' (record (field "x" u32) (field "y" u32)))
  (export $point "point" (type $point'))
  (func $seven (export "seven") (result u32) (canon lift (core func $i "seven")))
  (func $eight (result u32) (canon lift (core func $i "eight")))
  (func $sum (param "p" $point) (result u32) (canon lift (core func $i "sum")))
  (func $swap (param "p" $point) (result $point) (canon lift (core func $i "swap") (memory (core memory $i "memory"))))
  (func $echo (param "s" string) (result string)
    (canon lift (core func $i "echo") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (instance $api (export "seven" (func $eight)) (export "sum" (func $sum)) (export "swap" (func $swap)) (export "echo" (func $echo)))
  (export "pkg:ns/iface@1.0.0" (instance $api))
  (instance $inner (export "deep" (func $seven)) (export "sum" (func $sum)))
  (instance $outer (export "inner" (instance $inner)))
  (export "pkg:ns/outer@1.0.0" (instance $outer)))"""

PATHS = "lean,api,native"
VARIANTS = ("baseline", "cached", "pooled+cached")


def write_component(folder: Path) -> Path:
    """The component above as a file, as a user gives one."""
    path = folder / "interfaces.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(INTERFACES_WAT)))
    return path


@pytest.fixture(scope="module")
def component(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_component(tmp_path_factory.mktemp("interfaces"))


@pytest.fixture(scope="module")
def types(component: Path) -> introspect.ComponentTypes:
    return introspect.component_types(component.read_bytes())


def run(component: Path, variants: tuple[str, ...] = ("cached", "pooled+cached"), **workload: object):
    return scenarios.run(scenarios.Scenario(workload=str(component), requests=20, repeats=1, warmup=1, slots=2, call_path=PATHS,
                                            variants=variants, **workload))


def test_the_functions_include_those_inside_interfaces_and_nested_interfaces(types):
    assert set(types.functions) == {"seven", f"{IFACE}#seven", f"{IFACE}#sum", f"{IFACE}#swap", f"{IFACE}#echo",
                                    "pkg:ns/outer@1.0.0#inner#deep", "pkg:ns/outer@1.0.0#inner#sum"}
    assert sorted(types.interfaces[IFACE]) == ["echo", "seven", "sum", "swap"]
    assert types.interfaces["pkg:ns/outer@1.0.0"] == [] and types.interfaces["pkg:ns/outer@1.0.0#inner"] == ["deep", "sum"]


@pytest.mark.parametrize("name, full", [(f"{IFACE}#sum", f"{IFACE}#sum"), ("swap", f"{IFACE}#swap"), ("deep", "pkg:ns/outer@1.0.0#inner#deep"),
                                        (f"{IFACE}#seven", f"{IFACE}#seven"), ("#seven", "seven"), ("seven", "seven")])
def test_a_name_resolves_to_its_full_name(types, name, full):
    assert types.resolve(name, "x") == full
    assert types.resolve(full, "x") == full  # a full name resolves to itself


@pytest.mark.parametrize("name, message", [
    ("sum", f"x: function 'sum' is ambiguous; allowed: one of its full names, {IFACE}#sum, pkg:ns/outer@1.0.0#inner#sum"),
    ("pkg:ns/nothing@1.0.0#sum", f"x: exported interface 'pkg:ns/nothing@1.0.0' is not allowed; allowed: {IFACE}, pkg:ns/outer@1.0.0, "
                                 "pkg:ns/outer@1.0.0#inner"),
    (f"{IFACE}#absent", f"x: function of interface {IFACE} 'absent' is not allowed; allowed: echo, seven, sum, swap"),
    ("absent", "x: function 'absent' is not allowed; allowed: pkg:ns/iface"),
    ("#sum", "x: top-level function '#sum' is not allowed; allowed: #seven"),
])
def test_a_name_that_does_not_resolve_is_refused_in_one_line(types, name, message):
    with pytest.raises(ConfigError) as caught:
        types.resolve(name, "x")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


# (the call in WAVE, what it returns in WAVE): a record in, a record out, a string both ways, the two `seven`s, a nested
# interface's function.
CALLS = [(f"{IFACE}#sum({{x: 3, y: 4}})", "7"), ("pkg:ns/outer@1.0.0#inner#sum({x: 3, y: 5})", "8"), (f"{IFACE}#swap({{x: 3, y: 4}})", "{x: 4, y: 3}"), ('echo("héllo, wörld")', '"héllo, wörld"'),
         (f"{IFACE}#seven()", "8"), ("#seven()", "7"), ("seven()", "7"), ("pkg:ns/outer@1.0.0#inner#deep()", "7")]


@pytest.mark.parametrize("call, result", CALLS, ids=[c for c, _ in CALLS])
def test_every_interface_function_is_served_on_every_path_with_its_result_checked(component, call, result):
    m = run(component, invoke=call, expect_value=result)
    assert not m.errors, dict(m.errors)
    table = m.variants(None)
    assert len(table) == 6 and (table["outcome_ok"] == 20).all()


@pytest.mark.parametrize("call, wrong", [(f"{IFACE}#swap({{x: 3, y: 4}})", "{x: 4, y: 4}"), ('echo("héllo")', '"hello"'),
                                         (f"{IFACE}#seven()", "7")])
def test_a_wrong_expected_value_fails_every_path_and_every_native_variant(component, call, wrong):
    m = run(component, VARIANTS, invoke=call, expect_value=wrong)
    assert set(m.errors) == {f"{v}{suffix}" for v in VARIANTS for suffix in ("", "@api", "@native")}
    assert all(e.startswith("ResultMismatch: ") for e in m.errors.values()), dict(m.errors)


@pytest.mark.parametrize("entry, full, result", [(f"{IFACE}#seven", f"{IFACE}#seven", 8), ("deep", "pkg:ns/outer@1.0.0#inner#deep", 7),
                                                 ("#seven", "seven", 7), ("seven", "seven", 7)])
def test_the_entry_names_an_interface_function_and_is_honoured_on_every_path(component, entry, full, result):
    scenario = scenarios.Scenario(workload=str(component), entry=entry, expect=result)
    assert [w.entry for w in scenario.workload.build()] == [full]
    assert not run(component, entry=entry, expect=result).errors
    m = run(component, entry=entry, expect=result + 1)  # honoured: the other function's answer is a mismatch on every path
    assert len(m.errors) == 6 and all(e.startswith("ResultMismatch: ") for e in m.errors.values()), dict(m.errors)


def test_a_recipes_earlier_invoke_steps_call_interface_functions(component, tmp_path):
    recipe = tmp_path / "calls.yaml"
    recipe.write_text(f"module: {component}\nsteps:\n  - invoke: '{IFACE}#sum({{x: 1, y: 2}})'\n    expect: 3\n"
                      f"  - invoke: '{IFACE}#swap({{x: 1, y: 2}})'\n    expect: '{{x: 2, y: 1}}'\n"
                      f"  - invoke: '#seven()'\n  - invoke: 'echo(\"a\")'\nexpect:\n  result: '\"a\"'\n")
    w = load_workload(str(recipe))
    assert w.entry == f"{IFACE}#echo" and [c.entry for c in w.before] == [f"{IFACE}#sum", f"{IFACE}#swap", "seven"]
    m = scenarios.run(scenarios.Scenario(recipe=str(recipe), requests=20, repeats=1, warmup=1, slots=2, call_path="lean,api",
                                         variants=("pooled+cached",)))
    assert not m.errors and (m.variants(None)["outcome_ok"] == 20).all(), dict(m.errors)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(recipe.read_text().replace("expect: 3", "expect: 4"))
    m = scenarios.run(scenarios.Scenario(recipe=str(wrong), requests=5, repeats=1, warmup=1, slots=2, call_path="lean,api",
                                         variants=("pooled+cached",)))
    assert set(m.errors) == {"pooled+cached", "pooled+cached@api"} and all("returned 3, expected 4" in e for e in m.errors.values())
