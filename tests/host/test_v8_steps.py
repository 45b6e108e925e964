"""Recipe steps on the v8 runtime (issue 28): calls (nested, named), writes, reads, ``{load:}`` and pointer arrays run
in node on a real V8 instance, every request checked as the lab checks it on wasmtime.

- hash-wasm's SHA-256 and MD5 recipes serve and check on every v8 variant; a digest expectation changed by one hex
  digit fails the variant with the lab's own message (the first outcome is judged by the lab's checker);
- a guest whose read bytes, or whose last result, turn wrong at request K of a reused instance stops the variant at
  request K: a driver that checked the first request only, or skipped the reads' comparison, serves them all;
- i64 values cross exactly (BigInt, past 2**53); what V8 cannot serve of a recipe is one line naming why.
"""

from __future__ import annotations

import json
import shutil

import pytest
import wasmtime

from tests.e2e.test_cli import wasmlab
from tests.host.test_v8 import COUNTED, REUSING, V8_VARIANTS, K, close_all, v8_runtimes
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe import parse, to_workload

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the v8 runtime runs the machine's Node.js")
BIG = 2**62 + 1  # an i64 no float holds: a driver passing Numbers would round it

# A library guest: a buffer it hands out, an in-place upper-casing that leaves the length at 512 (read back through
# {load: 512}), a sum of n i32 words, a malloc, an i64 add, and a per-instance counter (tick) that, on its Kth call,
# plants the fault named in FAULT (nothing, a wrong byte in the buffer, or a result one off).
GUEST = """(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (global $calls (mut i32) (i32.const 0))
  (global $off (mut i64) (i64.const 0))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "buffer") (result i32) (i32.const 256))
  (func (export "upper") (param $p i32) (param $n i32) (result i32) (local $i i32) (local $c i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (i32.const 512) (local.get $n))
    (local.get $n))
  (func (export "sum") (param $p i32) (param $n i32) (result i32) (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $s (i32.add (local.get $s) (i32.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $s))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (i64.add (local.get 0) (local.get 1)) (global.get $off)))
  (func (export "tick")
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eq (global.get $calls) (i32.const K)) (then FAULT))))"""
FAULTS = {"none": "(nop)", "bytes": "(i32.store8 (i32.const 256) (i32.const 33))", "result": "(global.set $off (i64.const 1))"}
# 9 (the length upper returns) + 256 + 256 (the buffer, named and by a nested call) + 7: the allocated array's sum.
TOTAL = 9 + 256 + 256 + 7
RECIPE = {
    "module": "guest.wasm",
    "steps": [
        {"call": "buffer", "as": "buf"},
        {"write": {"at": "buf", "text": "hello, v8"}},
        {"call": "upper", "args": ["buf", 9], "as": "n"},
        {"call": "tick"},
        {"read": {"at": "buf", "length": {"load": 512}, "as": "text"}},
        {"call": "sum", "args": [{"ptr_array": ["n", "buf", {"call": "buffer"}, 7]}, 4], "as": "total"},
        {"call": "sum", "args": [{"ptr_array": [1, 2, 3], "at": "buf+100"}, 3]},
        {"read": {"at": "buf+100", "length": 12, "as": "array"}},
        {"call": "add64", "args": [BIG, "total"]},
    ],
    "expect": {"result": BIG + TOTAL, "bytes": {"text": {"text": "HELLO, V8"}, "array": {"hex": "010000000200000003000000"}}},
}


def recipe_guest(fault: str = "none", **changes) -> Workload:
    wasm = bytes(wasmtime.wat2wasm(GUEST.replace("K", str(K)).replace("FAULT", FAULTS[fault])))
    return to_workload(parse({**RECIPE, **changes}), wasm)


def serve(workload: Workload, variants=(*V8_VARIANTS, *REUSING), n: int = 20) -> None:
    runtimes = v8_runtimes([workload], variants)
    try:
        for name, runtime in runtimes.items():
            if runtime.block is None:  # a wasmtime path serving one request at a time
                for _ in range(n):
                    runtime.handle(0)
                continue
            failures: list = []
            runtime.block([0] * n, [0] * n, failures)
            assert failures == [], (name, failures[:1])
    finally:
        close_all(runtimes)


def block_fails(workload: Workload, variant: str, requests: int, match: str) -> None:
    """Serving ``requests`` of ``workload`` on ``variant`` in one block fails with a ResultMismatch matching ``match``."""
    runtimes = v8_runtimes([workload], (variant,))
    try:
        with pytest.raises(ResultMismatch, match=match):
            runtimes[variant].block([0] * requests, [0] * requests, [])
    finally:
        close_all(runtimes)


@pytest.mark.timeout(60)
def test_every_step_kind_runs_in_node_with_every_request_checked():
    """Names, a nested call, {load:}, pointer arrays (allocated and placed), writes, reads and an i64 past 2**53: the
    expected result and bytes hold on every variant, fresh and reused (a fault-free guest), and on wasmtime's paths."""
    serve(recipe_guest(), (*V8_VARIANTS, *REUSING, "cached", "cached@api"))


@pytest.mark.timeout(60)
def test_a_wrong_read_or_result_at_request_k_of_a_reused_instance_stops_the_variant_there():
    for fault, message in (("bytes", f"bytes 'text' '{b'!ELLO, V8'.hex()}' differ from the first request's '{b'HELLO, V8'.hex()}'"),
                           ("result", f"result {BIG + TOTAL + 1}, expected {BIG + TOTAL}")):
        block_fails(recipe_guest(fault), "cached+reuse16@v8", 8, f"recipe 'guest': {message} \\(request {K} of a block of 8")
    serve(recipe_guest("bytes"), V8_VARIANTS)  # a fresh instance per request: the Kth tick never comes


@pytest.mark.timeout(60)
def test_first_result_checking_compares_every_read_and_result_with_the_first_request_s():
    """Without expect, the outcome is the first request's: a read or the result changed at request K fails there."""
    for fault, message in (("bytes", "bytes 'text' '[0-9a-f]+' differ from the first request's '[0-9a-f]+'"),
                           ("result", f"result {BIG + TOTAL + 1}, but its first request's was {BIG + TOTAL}")):
        block_fails(recipe_guest(fault, expect=None), "baseline+reuse16@v8", 8, f"{message} \\(request {K} of")


@pytest.mark.timeout(60)
def test_hash_wasm_recipes_serve_and_a_digest_off_by_one_digit_fails_with_the_lab_s_message():
    for name in ("hash-wasm-sha256", "hash-wasm-md5"):
        serve(load_workload(name), ("baseline@v8", "cached@v8", "cached+reuse4@v8"), n=6)
    recipe = load_workload("hash-wasm-sha256").recipe
    digest = recipe.expect.bytes["digest"][1]
    wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    workload = load_workload("hash-wasm-sha256")
    planted = to_workload(parse({"module": "hash-wasm-sha256", "steps": RECIPE_SHA256, "expect": {"bytes": {"digest": {"hex": wrong}}}}),
                          workload.wasm)
    block_fails(planted, "cached@v8", 3, f"recipe 'hash-wasm-sha256': bytes 'digest' hex '{digest}', expected '{wrong}'")


RECIPE_SHA256 = [
    {"call": "Hash_GetBuffer", "as": "buffer"},
    {"write": {"at": "buffer", "repeat": {"byte": 97, "count": 16384}}},
    {"call": "Hash_Calculate", "args": [16384, 256]},
    {"read": {"at": "buffer", "length": 32, "as": "digest"}},
]


@pytest.mark.timeout(60)
def test_a_recipe_without_steps_is_its_plain_call_checked_against_the_first_request_s_result():
    """A core recipe without steps calls ``run``, its result compared with the first request's on every request."""
    serve(to_workload(parse({"module": "m.wasm"}), bytes(wasmtime.wat2wasm(COUNTED))), V8_VARIANTS, n=5)
    runtimes = v8_runtimes([to_workload(parse({"module": "m.wasm"}), bytes(wasmtime.wat2wasm(COUNTED)))], ("cached+reuse16@v8",))
    try:
        with pytest.raises(ResultMismatch, match=f"returned 41, but its first request returned 42.*request {K} of"):
            runtimes["cached+reuse16@v8"].block([0] * 8, [0] * 8, [])
    finally:
        close_all(runtimes)


# A WASI reactor: _initialize sets a word, run prints "ran <word>" through fd_write and exits with the word's value + 1;
# steps after the exit never run (a read of a word run never writes).
REACTOR = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "env" "base" (func $base (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 64) "ran 2\\n")
  (global $word (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $word (i32.wrap_i64 (call $base))))
  (func (export "run") (param $code i32)
    (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.add (global.get $word) (local.get $code))))
  (func (export "mark") (i32.store (i32.const 200) (i32.const 1))))"""


def reactor(**expect) -> Workload:
    steps = [{"call": "_initialize"}, {"call": "run", "args": [1]}, {"call": "mark"}, {"read": {"at": 200, "length": 4, "as": "mark"}}]
    return to_workload(parse({"module": "r.wasm", "imports": {"env.base": 2}, "steps": steps, "expect": expect}),
                       bytes(wasmtime.wat2wasm(REACTOR)))


@pytest.mark.timeout(60)
def test_a_wasi_reactor_s_steps_run_through_node_wasi_with_stubs_exit_and_output_checked():
    """node:wasi gets the instance's memory without _initialize (the steps call it); the recipe's stub (an i64) reaches
    the guest; proc_exit ends the steps (the last read never runs: an empty read); exit and stdout are checked."""
    serve(reactor(exit=3, stdout_match="^ran 2$", bytes={"mark": {"hex": ""}}), (*V8_VARIANTS, "cached", "cached@api"), n=6)
    for expect, message in (({"exit": 4}, "recipe 'r': exit 3, expected exit 4"),
                            ({"exit": 3, "stdout_match": "^walked"}, "stdout does not match"),
                            ({"exit": 3, "bytes": {"mark": {"hex": "01000000"}}}, "bytes 'mark' hex '', expected '01000000'")):
        block_fails(reactor(**expect), "cached@v8", 2, message)


# Exits 3 or 4 by a random bit: every WASI request is a fresh instance, so only a check of each request's status in node
# (not the first's in the lab) can see a later one end otherwise.  20 requests all alike: 2 in a million.
COIN = """(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "flip")
    (drop (call $random (i32.const 0) (i32.const 1)))
    (call $exit (i32.add (i32.const 3) (i32.and (i32.load8_u (i32.const 0)) (i32.const 1))))))"""


@pytest.mark.timeout(60)
def test_every_wasi_request_s_exit_status_is_checked_in_node():
    coin = bytes(wasmtime.wat2wasm(COIN))
    for expect, message in (({"exit": 3}, "exit 4, expected exit 3"), ({"exit": 4}, "exit 3, expected exit 4"),
                            (None, "exit [34], but its first request's was [34]")):
        block_fails(to_workload(parse({"module": "c.wasm", "steps": [{"call": "flip"}], "expect": expect}), coin), "cached@v8", 20,
                    f"recipe 'c': {message} \\(request [0-9]+ of a block of 20")


@pytest.mark.timeout(60)
def test_a_core_module_s_imports_are_the_recipe_s_stubs():
    stubbed = bytes(wasmtime.wat2wasm('(module (import "env" "now" (func $now (result i32))) (import "env" "tick" (func))'
                                      ' (func (export "run") (result i32) (call 1) (i32.add (call $now) (i32.const 1))))'))
    stubs = {"env.now": 7, "env.tick": 0}
    serve(to_workload(parse({"module": "m.wasm", "imports": stubs, "steps": [{"call": "run"}], "expect": {"result": 8}}), stubbed),
          (*V8_VARIANTS, "cached"), n=3)
    serve(to_workload(parse({"module": "m.wasm", "imports": stubs}), stubbed), V8_VARIANTS, n=3)  # the plain call of run
    runtimes = v8_runtimes([to_workload(parse({"module": "m.wasm", "imports": {**stubs, "env.now": 8}, "steps": [{"call": "run"}],
                                               "expect": {"result": 8}}), stubbed)], ("cached@v8",))
    try:
        with pytest.raises(ResultMismatch, match="recipe 'm': result 9, expected 8"):
            runtimes["cached@v8"].block([0], [0], [])
    finally:
        close_all(runtimes)


@pytest.mark.timeout(60)
def test_quickjs_evaluates_through_its_recipe_on_v8():
    """The catalog's QuickJS-NG reactor (WASI, six env stubs): 42 read back from guest memory on every request."""
    serve(load_workload("data/recipes/quickjs-eval.yaml"), ("cached@v8",), n=4)


@pytest.mark.timeout(60)
def test_what_v8_cannot_serve_of_a_recipe_is_one_line_naming_why():
    exits = to_workload(parse({"module": "m.wasm", "steps": [{"call": "spin", "args": [1]}], "expect": {"exit": 3}}),
                        bytes(wasmtime.wat2wasm(SPIN)))
    cases = ((exits, ("cached@v8",), "is a recipe expecting exit 3 of a module without WASI"),
             (reactor(exit=3), ("cached+reuse4@v8",), "which node:wasi starts once per instance"),
             (load_workload("data/recipes/middleware-reject.yaml"), ("cached@v8",), "is a component; the v8 runtime serves"))
    for workload, variants, why in cases:
        with pytest.raises(ConfigError, match=why) as caught:
            v8_runtimes([workload], variants)
        assert len(str(caught.value).splitlines()) == 1


# A loop of n iterations returning n: what a request's steps cost grows with n.
SPIN = """(module (func (export "spin") (param $n i32) (result i32) (local $i i32)
  (block $done (loop $next (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $next)))
  (local.get $i)))"""


@pytest.mark.timing
@pytest.mark.timeout(60)
def test_the_steps_run_inside_each_request_s_time():
    """Two recipes in one node child, side by side: steps spinning 30,000,000 iterations against 10; a driver timing the
    instance but not its steps would give both about a fresh instance's cost (measured: ~10 ms against 20-80 µs on a busy machine; 20x asked)."""
    wasm = bytes(wasmtime.wat2wasm(SPIN))
    spins = [to_workload(parse({"module": "spin.wasm", "steps": [{"call": "spin", "args": [n]}], "expect": {"result": n}}), wasm)
             for n in (30_000_000, 10)]
    runtimes = v8_runtimes(spins, ("cached@v8",))
    try:
        medians = []
        for index in (0, 1):
            out = [0] * 5
            runtimes["cached@v8"].block([index] * 5, out, [])
            medians.append(sorted(out)[2])
        assert medians[0] > 20 * medians[1], medians
    finally:
        close_all(runtimes)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_reproduce_serves_a_recipe_on_v8_and_fails_a_wrong_digest(tmp_path):
    small = ("--requests", "20", "--repeats", "1", "--warmup", "2", "--no-save")
    done = wasmlab("reproduce", "--recipe", "data/recipes/hash-wasm-md5.yaml", "--runtime", "v8", "--variants", "baseline,cached",
                   *small, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data["variants"]) == {"baseline@v8", "cached@v8"} and data["metadata"]["workload_check"] == "expected"
    assert all(v["latency_us_p50"] > 0 for v in data["variants"].values())
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(json.dumps({"module": "hash-wasm-md5", "steps": RECIPE_SHA256[:1] + [
        {"call": "Hash_Init"}, {"write": {"at": "buffer", "repeat": {"byte": 97, "count": 8192}}}, {"call": "Hash_Update", "args": [8192]},
        {"call": "Hash_Final"}, {"read": {"at": "buffer", "length": 16, "as": "digest"}}],
        "expect": {"bytes": {"digest": {"hex": "00" * 16}}}}))
    failed = wasmlab("reproduce", "--recipe", str(wrong), "--runtime", "v8", "--variants", "baseline,cached", *small)
    assert failed.returncode == 1 and failed.stdout.count("bytes 'digest' hex") == 2, failed.stdout[-600:]
