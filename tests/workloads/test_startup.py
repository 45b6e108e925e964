"""The heavy start-up guest (startup-heavy) and a recipe's start-up function (init:)."""

from __future__ import annotations

import pytest
import wasmtime

from wasmlab.errors import ConfigError
from wasmlab.workloads import listing, load_workload
from wasmlab.workloads.recipe import Call, parse, to_workload
from wasmlab.workloads.startup import checksum, startup_heavy

SEED_WAT = '(module (memory 1) (func (export "run") (param i32) (result i32) local.get 0 i32.const 1 i32.add))'
SETUP_WAT = """(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 0))
  (func (export "setup") i32.const 7 global.set $g)
  (func (export "wizer.initialize") i32.const 9 global.set $g)
  (func (export "run") (param i32) (result i32) global.get $g local.get 0 i32.add))"""


def _calls(wasm: bytes, *names: str) -> list[int]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)
    out = []
    for name in names:
        result = exports[name](store, 41) if name == "run" else exports[name](store)
        if name == "run":
            out.append(result)
    return out


def test_the_guest_returns_the_checksum_only_after_exactly_one_start_up():
    """No start-up (an empty table, the count 0) and a second start-up (the count 2) both return -1: what makes a
    snapshot taken before the start-up, or a snapshot whose start-up is called again, fail every request."""
    w = startup_heavy(kib=8)
    assert _calls(w.wasm, "run", "wizer.initialize", "run", "wizer.initialize", "run") == [-1, checksum(8), -1]


def test_the_start_up_is_the_first_step_of_every_request_and_the_result_is_checked():
    w = load_workload("startup-heavy:kib=4")
    assert w.init == "wizer.initialize" and w.name == "startup-heavy:kib=4" and w.parameters == {"kib": 4}
    assert [s.export for s in w.recipe.steps] == ["wizer.initialize", "run"]
    assert w.expectation.result.value == checksum(4) and w.size_bytes < 1024


def test_the_catalog_lists_it_and_refuses_a_size_out_of_range():
    assert any(line.startswith("startup-heavy (kib=1024)") for _, lines in listing() for line in lines)
    with pytest.raises(ConfigError, match="startup-heavy kib = 0 is out of range; allowed: an integer from 1 to 65536"):
        load_workload("startup-heavy:kib=0")


def test_a_recipe_names_its_start_up_or_gets_wizer_initialize_when_exported():
    wasm = bytes(wasmtime.wat2wasm(SETUP_WAT))
    named = to_workload(parse({"module": "m.wasm", "init": "setup", "expect": {"result": 48}, "invoke": "run(41)"}), wasm)
    assert named.init == "setup" and named.recipe.steps[0] == Call("setup", (), None, "init")
    default = to_workload(parse({"module": "m.wasm", "expect": {"result": 50}, "invoke": "run(41)"}), wasm)
    assert default.init == "wizer.initialize" and [s.export for s in default.recipe.steps] == ["wizer.initialize", "run"]
    # Without steps, the plain call follows the start-up.
    plain = to_workload(parse({"module": "m.wasm", "init": "setup"}), wasm)
    assert [s.export for s in plain.recipe.steps] == ["setup", "run"]
    seed = to_workload(parse({"module": "seed.wasm", "invoke": "run(41)"}), bytes(wasmtime.wat2wasm(SEED_WAT)))
    assert seed.init == "" and [s.export for s in seed.recipe.steps] == ["run"]


@pytest.mark.parametrize("init, message", [
    ("run", "recipe init: export 'run' takes 1 argument(s) and returns 1 value(s); allowed: a start-up function that takes no "
            "arguments and returns nothing"),
    ("boot", "recipe init: export 'boot' is not allowed; allowed: run, setup, wizer.initialize"),
])
def test_a_bad_init_is_refused_against_the_module(init, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_workload(parse({"module": "m.wasm", "init": init}), bytes(wasmtime.wat2wasm(SETUP_WAT)))


@pytest.mark.parametrize("value", [42, "", " setup", None])
def test_an_init_that_is_not_an_export_name_is_refused_when_parsed(value):
    with pytest.raises(ConfigError, match=f"recipe init: {value!r} is not an export name"):
        parse({"module": "m.wasm", "init": value})


def test_init_on_a_component_is_refused():
    from wasmlab.workloads.components import component_seed

    with pytest.raises(ConfigError, match="recipe init: c.wasm is a component; allowed: init for a core module"):
        to_workload(parse({"module": "c.wasm", "init": "setup", "invoke": "run(1)"}), component_seed().wasm)
