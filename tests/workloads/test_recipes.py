"""Request recipes: parsed and checked before anything runs, then the four request shapes served and verified."""

import hashlib

import pytest
import wasmtime

from tests.workloads.recipe_guests import APPENDER, EXIT_CODE, LIBRARY, RANDOM_WRITER, REACTOR, WRITER, serving, write_recipe
from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.errors import ConfigError, NativeFailure, RecipeError, ResultMismatch
from wasmlab.host.recipes import dry_run
from wasmlab.host.runtime import build_runtimes
from wasmlab.workloads import load_workload

TRANSFORMED = bytes(b ^ 0x5A for b in b"a" * 300)


recipe = write_recipe


SHAPES = {
    "exit-code": (EXIT_CODE, {"wasi": {"argv": ["solver"]}, "expect": {"exit": 10, "stdout_match": "^sat"}}),
    "writer": (WRITER, {"wasi": {"dirs": [{"guest": "/out", "writable": True}]},
                        "expect": {"files": {"/out/result.txt": {"sha256": hashlib.sha256(b"rendered\n").hexdigest()}}}}),
    "reactor": (REACTOR, {"steps": [{"call": "_initialize"}, {"call": "malloc", "args": [64], "as": "buf"},
                                    {"write": {"at": "buf", "text": "ab\0cde\0"}},
                                    {"call": "init_argv", "args": [2, {"ptr_array": ["buf", "buf+3"]}]},
                                    {"call": "argv_total"}],
                          "expect": {"result": 5}}),
    "library": (LIBRARY, {"steps": [{"call": "get_buffer", "as": "input"},
                                    {"write": {"at": "input", "repeat": {"byte": 97, "count": 300}}},
                                    {"call": "transform", "args": [300]},
                                    {"read": {"at": {"call": "get_output"}, "length": 300, "as": "digest"}}],
                          "expect": {"result": 300, "bytes": {"digest": {"sha256": hashlib.sha256(TRANSFORMED).hexdigest()}}}}),
}



@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_each_request_shape_is_served_and_verified_on_every_request(tmp_path, shape, call_path):
    wat, body = SHAPES[shape]
    workload = load_workload(recipe(tmp_path, wat, body))
    dry_run(workload)
    runtimes = build_runtimes(["cached", "pooled+cached"], EngineConfig(), CacheConfig(), [workload], call_path)
    try:
        for runtime in runtimes.values():
            for _ in range(3):
                runtime.handle(0)  # raises ResultMismatch if a request's outcome differs from expect
            if runtime.block is not None:  # the native path: a block of requests in C, each compared with the first
                failures: list = []
                runtime.block([0] * 50, [0] * 50, failures)
                assert not failures
    finally:
        for runtime in runtimes.values():
            runtime.close()


@pytest.mark.parametrize("shape,change,message", [
    ("exit-code", {"expect": {"exit": 0}}, "Exited with i32 exit status 10"),
    ("writer", {"expect": {"files": {"/out/result.txt": {"regex": "^drawn"}}}}, "/out/result.txt does not match"),
    ("reactor", {"expect": {"result": 6}}, "(result|returned) 5, expected 6"),
    ("library", {"expect": {"bytes": {"digest": {"sha256": "0" * 64}}}}, "bytes 'digest' sha256"),
])
@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_a_wrong_expectation_fails_the_request(tmp_path, shape, change, message, call_path):
    wat, body = SHAPES[shape]
    workload = load_workload(recipe(tmp_path, wat, {**body, **change}))
    with serving([workload], call_path, "pooled+cached") as runtime:
        # A command that exits otherwise than expected ends as wasmtime's exit (the outcome "exit"), the rest as a mismatch.
        if shape == "exit-code" and call_path == "native":
            with pytest.raises(NativeFailure, match="exited with status 10") as info:
                runtime.handle(0)
            assert info.value.kind == "exit(10)"
            return
        with pytest.raises(wasmtime.ExitTrap if shape == "exit-code" else ResultMismatch, match=message):
            runtime.handle(0)


@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_a_writable_copy_is_fresh_for_every_request_and_leaves_its_source_alone(tmp_path, call_path):
    """The guest appends to a file its directory starts with: only a fresh copy per request gives the same file every time."""
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "result.txt").write_bytes(b"seed\n")
    (tmp_path / "seed" / "nested").mkdir()
    (tmp_path / "seed" / "nested" / "kept.bin").write_bytes(bytes(range(256)))
    body = {"wasi": {"dirs": [{"host": "seed", "guest": "/out", "writable": True}]},
            "expect": {"files": {"/out/result.txt": {"sha256": hashlib.sha256(b"seed\nrendered\n").hexdigest()}}}}
    workload = load_workload(recipe(tmp_path, APPENDER, body))
    with serving([workload], call_path, "pooled+cached") as runtime:
        for _ in range(3):
            runtime.handle(0)
        if runtime.block is not None:
            failures: list = []
            runtime.block([0] * 50, [0] * 50, failures)
            assert not failures
    assert (tmp_path / "seed" / "result.txt").read_bytes() == b"seed\n"
    assert sorted(p.name for p in (tmp_path / "seed").rglob("*")) == ["kept.bin", "nested", "result.txt"]


@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_without_expectations_files_that_change_between_requests_fail(tmp_path, call_path):
    workload = load_workload(recipe(tmp_path, RANDOM_WRITER, {"wasi": {"dirs": [{"guest": "/out", "writable": True}]}}))
    assert workload.check == "first-result"
    with serving([workload], call_path, "pooled+cached") as runtime:
        runtime.handle(0)
        with pytest.raises(ResultMismatch, match="written /out/result.txt .*differs from the first request's"):
            runtime.handle(0)


@pytest.mark.parametrize("wrong", [False, True])
def test_the_native_path_checks_every_file_the_first_request_left_even_nested_or_empty(tmp_path, wrong):
    """The first request's files reach Python as the C driver lists them; each named one is checked, however deep."""
    (tmp_path / "seed" / "deep").mkdir(parents=True)
    (tmp_path / "seed" / "deep" / "a.bin").write_bytes(b"\0" * 70000)
    (tmp_path / "seed" / "z.txt").write_bytes(b"")
    digest = hashlib.sha256(b"\1" if wrong else b"\0" * 70000).hexdigest()
    body = {"wasi": {"dirs": [{"host": "seed", "guest": "/out", "writable": True}]},
            "expect": {"files": {"/out/deep/a.bin": {"sha256": digest}, "/out/z.txt": {"sha256": hashlib.sha256(b"").hexdigest()},
                                 "/out/result.txt": {"regex": "^rendered$"}}}}
    with serving([load_workload(recipe(tmp_path, WRITER, body))], "native", "cached") as runtime:
        if wrong:
            with pytest.raises(ResultMismatch, match="/out/deep/a.bin has sha256 "):
                runtime.handle(0)
        else:
            for _ in range(3):
                runtime.handle(0)


REACTOR_STEPS = SHAPES["reactor"][1]["steps"]


@pytest.mark.parametrize("body,message", [
    ({"stpes": []}, "recipe key 'stpes' is not allowed; allowed: allocator, driver, expect, imports, init, input, invoke, memory, module"),
    ({"steps": [{"call": "malloc", "args": [64], "as": "buf"}, {"call": "nope"}]}, "export 'nope' is not allowed; allowed: _initialize"),
    ({"steps": [{"call": "malloc", "args": [1, 2]}]}, "steps[0]: export 'malloc' takes 1 argument(s) (i32), the step gives 2"),
    ({"steps": [{"read": {"at": "buf", "length": 4, "as": "x"}}]}, "steps[0].read.at: name 'buf' is never set before this step"),
    ({"steps": [{"write": {"at": 0, "txt": "x"}}]}, "steps[0].write key 'txt' is not allowed"),
    ({"steps": REACTOR_STEPS, "expect": {"bytes": {"out": {"sha256": "0" * 64}}}}, "expect.bytes.out: no step reads 'out'"),
    ({"wasi": {"dirs": [{"guest": "/in"}]}}, "wasi.dirs[0]: a read-only directory needs host:"),
])
def test_a_bad_recipe_is_refused_in_one_line_naming_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as refused:
        load_workload(recipe(tmp_path, REACTOR, body))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_write_past_the_memorys_end_is_refused_before_measuring(tmp_path):
    body = {"steps": [{"call": "_initialize"}, {"write": {"at": 65530, "text": "0123456789"}}]}
    with pytest.raises(RecipeError, match=r"steps\[1\].write: 10 bytes at 65530 run past the memory's end \(65536 bytes\)"):
        dry_run(load_workload(recipe(tmp_path, REACTOR, body)))


def test_without_expectations_the_first_requests_outcome_is_the_expectation(tmp_path):
    body = {"steps": [{"call": "_initialize"}, {"call": "malloc", "args": [8], "as": "p"}, {"read": {"at": "p", "length": 8, "as": "m"}}]}
    workload = load_workload(recipe(tmp_path, REACTOR, body))
    assert workload.check == "first-result"
    with serving([workload], "lean", "pooled+cached") as runtime:
        for _ in range(3):
            runtime.handle(0)


def test_the_native_path_refuses_a_write_past_the_memorys_end_in_one_line(tmp_path):
    """The C loop checks every address too: here past the end only at run time (the name comes from a call)."""
    body = {"steps": [{"call": "_initialize"}, {"call": "malloc", "args": [65520], "as": "p"},
                      {"write": {"at": "p+65000", "text": "0123456789"}}]}
    workload = load_workload(recipe(tmp_path, REACTOR, body))
    with serving([workload], "native", "pooled+cached") as runtime:
        with pytest.raises(Exception, match=r"recipe steps\[2\] \(write\): 10 bytes at 66024 run past the memory's end \(65536 bytes\)"):
            runtime.handle(0)


HOOKED = """(module
  (import "env" "host_hook" (func $hook (param i32) (result i32)))
  (import "env" "host_log" (func $log (param i32)))
  (func (export "run_hooked") (result i32) (call $log (i32.const 1)) (i32.add (call $hook (i32.const 9)) (i32.const 1))))"""


@pytest.mark.parametrize("call_path", ["lean", "api"])
def test_host_imports_a_recipe_stubs_return_their_constant(tmp_path, call_path):
    body = {"imports": {"env.host_hook": 41, "env.host_log": 0}, "steps": [{"call": "run_hooked"}], "expect": {"result": 42}}
    workload = load_workload(recipe(tmp_path, HOOKED, body))
    assert workload.linked
    with serving([workload], call_path, "pooled+cached") as runtime:
        runtime.handle(0)


def test_an_import_nothing_defines_is_one_line_suggesting_a_stub(tmp_path):
    with pytest.raises(ConfigError, match=r"imports env.host_log, which nothing defines; .* imports: \{env.host_log: 0\}"):
        load_workload(recipe(tmp_path, HOOKED, {"imports": {"env.host_hook": 1}, "steps": [{"call": "run_hooked"}]}))
    with pytest.raises(ConfigError, match="recipe imports: import of .* 'env.nope' is not allowed; allowed: env.host_hook, env.host_log"):
        load_workload(recipe(tmp_path, HOOKED, {"imports": {"env.host_hook": 1, "env.host_log": 0, "env.nope": 0}, "steps": []}))


def test_a_recipe_and_a_plain_module_share_one_lean_runtime(tmp_path):
    """The lean handler for a mixed set of workloads calls each as its own kind asks (recipe steps or one export)."""
    wat, body = SHAPES["reactor"]
    workloads = [load_workload(recipe(tmp_path, wat, body)), load_workload("seed")]
    with serving(workloads, "lean", "pooled+cached") as runtime:
        assert runtime.handle(0).result == 5
        assert runtime.handle(1) == workloads[1].expected
        stamps = [0] * 8
        runtime.handle_phased(0, stamps)
        assert stamps[3] <= stamps[4] <= stamps[5]


@pytest.mark.parametrize("call_path", ["lean", "api", "native"])
def test_phases_time_every_step_of_a_recipe_inside_its_call_phase(tmp_path, call_path):
    from wasmlab.measure import scenario as scenarios
    from wasmlab.report.text import phase_medians, step_medians

    wat, body = SHAPES["library"]
    path = recipe(tmp_path, wat, body)
    m = scenarios.run(scenarios.Scenario(recipe=path, requests=30, repeats=1, warmup=3, slots=2, phases=True,
                                         variants=("cached", "pooled+cached"), call_path=call_path))
    assert not m.errors
    steps = m.step_rows()
    assert list(dict.fromkeys(steps["step"])) == ["1. call get_buffer", "2. write 300 B", "3. call transform", "4. read digest"]
    # Stamped inside the call phase, so per request the steps add up to no more than it (one monotonic clock).
    calls = m.phase_rows().query("phase == 'call'").set_index(["variant", "request_index"])["duration_ns"]
    per_request = steps.groupby(["variant", "request_index"])["duration_ns"].sum()
    assert len(per_request) == len(calls) == 2 * 30
    assert (per_request <= calls.reindex(per_request.index)).all()
    # The table of phases keeps its seven phases; the steps have a table of their own.
    assert list(phase_medians(m).columns[:7]) == ["get_module", "new_store", "instantiate", "export_lookup", "call",
                                                  "drop_store", "read_output"]
    assert set(step_medians(m).index) == set(m.summary["variant"]) and len(step_medians(m)) == 2
