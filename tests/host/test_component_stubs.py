"""Component imports stubbed by a recipe (issue 25): ``imports:`` names a component function import as
``INSTANCE#FUNCTION`` (a top-level one by its bare name) with a WAVE constant as its result (``null``: none); the stub
is a host function returning it, on the lean, api and native paths (every variant without ``pre``).  The component
below answers with what its imports return, so a stub that is not honoured (its constant ignored, zero returned)
fails every path; bad stubs are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from tests.host.component_guests import BUMP_REALLOC, LIBC, wasi_environment
from wasmlab.cli import main
from wasmlab.errors import ConfigError
from wasmlab.host.component_stubs import merged
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import load_workload

HOST = "pkg:ns/host@1.0.0"
# Written for these tests in the component text format.  It imports an instance holding a u32-returning `get`, a
# string-returning `name`, a record-returning `point` and a `note` without a result, and a top-level `log` without one.
# `run` answers get() + 1 (calling `note` and `log` first), `len` the length of name(), `sum` point's x + y.
STUBBED_WAT = f"""(component
  (import "pkg:ns/host@1.0.0" (instance $host
    (type $point' (record (field "x" u32) (field "y" u32)))
    (export "point-type" (type $point (eq $point')))
    (export "get" (func (result u32)))
    (export "name" (func (result string)))
    (export "point" (func (result $point)))
    (export "note" (func (param "x" u32)))))
  (import "log" (func $log (param "x" u32)))
  (core module $mem
    (memory (export "memory") 1)
    {BUMP_REALLOC})
  (core instance $mi (instantiate $mem))
  (core func $get (canon lower (func $host "get")))
  (core func $name (canon lower (func $host "name") (memory (core memory $mi "memory")) (realloc (core func $mi "realloc"))))
  (core func $point (canon lower (func $host "point") (memory (core memory $mi "memory"))))
  (core func $note (canon lower (func $host "note")))
  (core func $log (canon lower (func $log)))
  (core module $m
    (import "mem" "memory" (memory 1))
    (import "host" "get" (func $get (result i32)))
    (import "host" "name" (func $name (param i32)))
    (import "host" "point" (func $point (param i32)))
    (import "host" "note" (func $note (param i32)))
    (import "host" "log" (func $log (param i32)))
    (func (export "run") (result i32)
      (call $note (i32.const 1))
      (call $log (i32.const 2))
      (i32.add (call $get) (i32.const 1)))
    (func (export "len") (result i32) (call $name (i32.const 64)) (i32.load (i32.const 68)))
    (func (export "sum") (result i32) (call $point (i32.const 80)) (i32.add (i32.load (i32.const 80)) (i32.load (i32.const 84)))))
  (core instance $i (instantiate $m
    (with "mem" (instance $mi))
    (with "host" (instance (export "get" (func $get)) (export "name" (func $name)) (export "point" (func $point))
                           (export "note" (func $note)) (export "log" (func $log))))))
  (func (export "run") (result u32) (canon lift (core func $i "run")))
  (func (export "len") (result u32) (canon lift (core func $i "len")))
  (func (export "sum") (result u32) (canon lift (core func $i "sum"))))"""

PATHS = "lean,api,native"
VARIANTS = ("baseline", "cached", "pooled", "pooled+cached")
STUBS = {f"{HOST}#get": "41", f"{HOST}#name": "'\"hello\"'", f"{HOST}#point": "'{x: 3, y: 4}'", f"{HOST}#note": "null",
         "log": "null"}


@pytest.fixture(scope="module")
def component(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stubs") / "stubbed.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(STUBBED_WAT)))
    return path


def recipe(folder: Path, component: Path, invoke: str = "run()", expect: str = "42", **changed: str | None) -> Path:
    """A recipe calling ``invoke`` with the stubs above (``changed``: replaced, ``None`` left out)."""
    stubs = {**STUBS, **changed}
    lines = "".join(f"  {name}: {value}\n" for name, value in stubs.items() if value is not None)
    path = folder / "stubbed.yaml"
    path.write_text(f"module: {component}\ninvoke: {invoke}\nimports:\n{lines}expect:\n  result: {expect}\n")
    return path


def run(path: Path, variants: tuple[str, ...] = VARIANTS, requests: int = 10) -> scenarios.Measurement:
    return scenarios.run(scenarios.Scenario(recipe=str(path), requests=requests, repeats=1, warmup=1, slots=2, call_path=PATHS,
                                            variants=variants))


def every(variants: tuple[str, ...]) -> set[str]:
    return {f"{v}{suffix}" for v in variants for suffix in ("", "@api", "@native")}


def test_the_recipe_binds_each_stub_to_its_import_typed_by_its_result(component, tmp_path):
    w = load_workload(str(recipe(tmp_path, component)))
    assert [(s.name, s.value) for s in w.stubs] == [
        ("log", None), (f"{HOST}#get", 41), (f"{HOST}#name", "hello"), (f"{HOST}#note", None), (f"{HOST}#point", {"x": 3, "y": 4})]
    assert w.stubs[1].instance == (HOST,) and w.stubs[1].function == "get" and w.stubs[0].instance == ()


@pytest.mark.parametrize("invoke, expect", [("run()", "42"), ("len()", "5"), ("sum()", "7")])
def test_a_stubbed_import_answers_its_constant_on_every_path_and_variant(component, tmp_path, invoke, expect):
    """41 + 1 through a u32, "hello" through a string, {x: 3, y: 4} through a record: each variant without pre."""
    m = run(recipe(tmp_path, component, invoke, expect))
    assert not m.errors, dict(m.errors)
    table = m.variants(None)
    assert len(table) == 12 and (table["outcome_ok"] == 10).all()


@pytest.mark.parametrize("invoke, stub, value, expect", [("run()", f"{HOST}#get", "40", "42"),
                                                         ("len()", f"{HOST}#name", "'\"hell\"'", "5"),
                                                         ("sum()", f"{HOST}#point", "'{x: 3, y: 3}'", "7")])
def test_a_stub_that_answers_otherwise_is_a_mismatch_on_every_path(component, tmp_path, invoke, stub, value, expect):
    m = run(recipe(tmp_path, component, invoke, expect, **{stub: value}), ("cached", "pooled+cached"), requests=3)
    assert set(m.errors) == every(("cached", "pooled+cached")), dict(m.errors)
    assert all(e.startswith("ResultMismatch: ") for e in m.errors.values()), dict(m.errors)


def test_a_runtime_serving_two_workloads_defines_a_shared_stub_once_and_refuses_two_constants(component, tmp_path):
    first = load_workload(str(recipe(tmp_path, component)))
    again = load_workload(str(recipe(tmp_path, component)))
    assert [s.name for s in merged([first, again])] == [s.name for s in first.stubs]
    other = load_workload(str(recipe(tmp_path, component, **{f"{HOST}#get": "40"})))
    with pytest.raises(ConfigError, match=f"recipe imports.{HOST}#get: workloads 'stubbed' and 'stubbed' stub it differently"):
        merged([first, other])


BAD_STUBS = [
    ("a stub of an import the component does not have", {f"{HOST}#gets": "41"},
     f"recipe imports: function import of {{}} '{HOST}#gets' is not allowed; allowed: log, {HOST}#get, {HOST}#name, "
     f"{HOST}#note, {HOST}#point"),
    ("a constant that does not fit the result", {f"{HOST}#get": "'\"x\"'"}, f"recipe imports.{HOST}#get"),
    ("a record missing a field", {f"{HOST}#point": "'{x: 3}'"}, f"recipe imports.{HOST}#point"),
    ("null for a function with a result", {f"{HOST}#get": "null"},
     f"recipe imports.{HOST}#get: null, but {HOST}#get returns u32; allowed: a WAVE value of that type"),
    ("a constant for a function without one", {"log": "1"}, "recipe imports.log: 1, but log returns nothing; allowed: null"),
    ("a function import left unstubbed", {f"{HOST}#note": None},
     f"recipe imports: {{}} imports function {HOST}#note, which nothing defines; allowed: WASI p2 imports, or a stub"),
    ("a stub of a WASI import", {"wasi:cli/environment@0.2.0#get-environment": "'[]'"},
     "recipe imports.wasi:cli/environment@0.2.0#get-environment: WASI imports are satisfied by WASI p2, not stubbed"),
]


@pytest.mark.parametrize("what, changed, message", BAD_STUBS, ids=[row[0] for row in BAD_STUBS])
def test_a_bad_stub_is_one_line_and_status_2(component, tmp_path, what, changed, message):
    path = recipe(tmp_path, component, **changed)
    done = CliRunner().invoke(main, ["reproduce", "--recipe", str(path), "--requests", "2", "--repeats", "1", "--warmup", "1",
                                     "--out", str(tmp_path / "out")], catch_exceptions=True)
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert message.format(component) in lines[0], lines[0]


def test_a_component_with_an_import_and_no_stub_names_the_recipe_key(component, tmp_path):
    done = CliRunner().invoke(main, ["reproduce", "--workload", str(component), "--entry", "run", "--requests", "2", "--repeats",
                                     "1", "--warmup", "1", "--out", str(tmp_path / "out")], catch_exceptions=True)
    assert done.exit_code == 2 and "has an import the lab cannot satisfy" in done.stderr and "imports:" in done.stderr, done.stderr


def test_the_native_driver_defines_the_stubs_once_and_refuses_a_stale_or_malformed_stub(component, tmp_path):
    """The C glue directly: the stubs of the first plan are defined on the driver's linker, a later plan's (the same,
    merged) are not defined again (wasmtime would refuse a second definition), and each stub is checked in one line."""
    import dataclasses
    import hashlib

    import numpy as np

    from wasmlab import _native, capi
    from wasmlab.host import native_boundary as boundary
    from wasmlab.host.callpaths.native import library
    from wasmlab.host.callpaths.native_component import plan, stub_plans

    w = load_workload(str(recipe(tmp_path, component)))
    stubs = stub_plans(merged([w]))
    engine = wasmtime.Engine()
    driver = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=4)
    try:
        stale = (dataclasses.replace(stubs[0], version=boundary.BOUNDARY_VERSION + 1), *stubs[1:])
        with pytest.raises(ValueError, match=rf"^ComponentStubPlan version {boundary.BOUNDARY_VERSION + 1}; this build"):
            driver.add_component(plan(w, None, stale))
        odd = (dataclasses.replace(stubs[1], result=boundary.ComponentValue(99)), *stubs[2:])
        with pytest.raises(ValueError, match="kind 99"):
            driver.add_component(plan(w, None, odd))
        first, again = driver.add_component(plan(w, None, stubs)), driver.add_component(plan(w, None, stubs))
        records = np.zeros((4, _native.RECORD_WORDS), dtype=np.int64)
        driver.run(np.array([first, again, first, again], dtype=np.int32), records, None, None, None)
        assert records[:, 1].tolist() == [_native.OUT_OK] * 4
    finally:
        driver.close()
    bare = _native.Driver(library(), capi.address(engine.ptr()), cache_capacity=4)
    try:  # without its stubs the component cannot be instantiated: the request fails, it does not answer 42
        records = np.zeros((1, _native.RECORD_WORDS), dtype=np.int64)
        index = bare.add_component(boundary.ComponentPlan(w.wasm, hashlib.sha256(w.wasm).digest(), plan(w).calls))
        _, message = bare.run(np.array([index], dtype=np.int32), records, None, None, None)
        assert records[0, 1] == _native.OUT_ERROR and "pkg:ns/host@1.0.0" in message, message
    finally:
        bare.close()


# A component command (exports wasi:cli/run) that imports WASI p2 beside a `bench` instance, as sightglass's component
# benchmarks do: run returns ok only when bench.start() answers 7 and the command got two arguments (WASI's own
# get-arguments, served by WASI p2 on the same linker as the stubs).
BENCH_WAT = f"""(component
  (import "bench" (instance $bench (export "start" (func (result u32))) (export "end" (func))))
  {wasi_environment(environment=False)}
  {LIBC}
  (core func $start (canon lower (func $bench "start")))
  (core func $end (canon lower (func $bench "end")))
  (core func $get-args (canon lower (func $env "get-arguments") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "libc" "mem" (memory 1))
    (import "host" "start" (func $start (result i32)))
    (import "host" "end" (func $end))
    (import "host" "get-args" (func $get-args (param i32)))
    (func (export "run") (result i32) (local $ok i32)
      call $start i32.const 7 i32.eq local.set $ok
      i32.const 128 call $get-args
      call $end
      local.get $ok i32.const 128 i32.load offset=4 i32.const 2 i32.eq i32.and i32.eqz))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance (export "start" (func $start)) (export "end" (func $end)) (export "get-args" (func $get-args))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run)))"""


def bench_recipe(folder: Path, start: str | None) -> Path:
    (folder / "bench.wasm").write_bytes(bytes(wasmtime.wat2wasm(BENCH_WAT)))
    stubs = "" if start is None else f"  bench#start: {start}\n"
    path = folder / "bench.yaml"
    path.write_text(f"module: bench.wasm\nwasi: {{argv: [bench, x]}}\nimports:\n{stubs}  bench#end: null\nexpect: {{exit: 0}}\n")
    return path


def test_a_component_command_with_wasi_and_a_stubbed_bench_instance_runs_on_every_path(tmp_path):
    w = load_workload(str(bench_recipe(tmp_path, "7")))
    assert w.command and w.wasi and [s.name for s in w.stubs] == ["bench#end", "bench#start"]
    m = run(bench_recipe(tmp_path, "7"), ("cached", "pooled+cached"))
    assert not m.errors and (m.variants(None)["outcome_ok"] == 10).all(), dict(m.errors)
    m = run(bench_recipe(tmp_path, "8"), ("pooled+cached",), requests=3)  # run returns err: the exit status 1 fails each path
    table = m.variants(None)
    assert len(table) == 3 and (table["outcome_ok"] == 0).all() and (table["outcome_exit"] + table["failed_requests"] > 0).all()
    with pytest.raises(ConfigError, match="imports function bench#start, which nothing defines"):
        load_workload(str(bench_recipe(tmp_path, None)))


def test_a_release_without_the_stub_functions_serves_components_but_refuses_stubs_in_one_line(component, tmp_path):
    """wasmtime 38 has the component C API but no wasmtime_component_val_clone (and calls a host function without its
    type): it still serves components, and a plan with stubs is refused naming the function."""
    from wasmlab import _native
    from wasmlab.host.callpaths.native_component import plan, stub_plans

    library_path = Path(__file__).resolve().parents[2] / "data" / "workloads" / "cache" / "releases" / "38.0.0" / "_libwasmtime.so"
    if not library_path.exists():
        pytest.skip("release 38.0.0 is not fetched (wasmlab releases fetch 38)")
    library = _native.Library(path=str(library_path))
    assert library.component_refusal() is None
    w = load_workload(str(recipe(tmp_path, component)))
    driver = _native.Driver(library, _native.Engine(library, None), cache_capacity=4)
    try:
        with pytest.raises(LookupError, match="^this libwasmtime has no function wasmtime_component_val_clone: it serves no "
                                              "stubs of component imports$"):
            driver.add_component(plan(w, None, stub_plans(merged([w]))))
    finally:
        driver.close()


def test_inspect_instantiates_a_stubbed_component_through_the_runtimes_linker(component, tmp_path):
    from wasmlab.experiments.pool_fit import inspect

    found = inspect(load_workload(str(recipe(tmp_path, component))))
    assert found.requirements["max_memories_per_component"] == 1 and not found.presets["seed"]
