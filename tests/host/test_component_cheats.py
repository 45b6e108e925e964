"""Tests built to catch a cheating request loop on the component paths, each by construction (issue 26; the core
modules' are in test_cheats.py).  Every test serves every variant that serves components (no ``pre``: the component C
API has no InstancePre) on every component call path (lean, api, native).

- No path or variant reuses an instance: a component that counts its calls in a global and in its memory answers 101
  in a fresh instance and something else (202, ...) in a reused one, so a reused instance fails at request 2.
- Every result is checked, not only the first: a component's answer cannot be made wrong at request k by the host yet
  (the lab stubs no component imports, and a fresh instance of a component without imports always answers the same),
  so two honest ways stand in for it.  (1) A first-result check over a component whose every answer differs: it
  imports ``wasi:random/random`` (the WASI context's secure generator; two equal u64 draws have odds of 2^-64), so the
  check must fail at request 2, and a loop that only learns the first result serves them all.  (2) At request k of
  one run, the same component added as a second workload whose expectation is wrong: the requests before it pass, it
  fails, and a loop that checks only its first request (or a block's) serves it.  The earlier calls of a request of
  several calls are checked too: the wrong value sits at the first of two calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import small_pool_engine
from tests.workloads.recipe_guests import write_recipe
from wasmlab import _native
from wasmlab.config import CacheConfig
from wasmlab.errors import ResultMismatch
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.host.variant import NAMED_VARIANTS
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload

PATHS = ("lean", "api", "native")
VARIANTS = tuple(v for v in NAMED_VARIANTS if "pre" not in v)
K = 4  # the request whose answer is wrong: late enough that a loop checking only request 1 misses it

# next() adds one to a global and one to a word of memory and answers global + 100 * memory: 101 in a fresh instance;
# 202 (both kept), 102 or 201 (one of them reset) in a reused one.
COUNTING = """(component
  (core module $m
    (memory 1)
    (global $n (mut i32) (i32.const 0))
    (func (export "next") (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
      (i32.add (global.get $n) (i32.mul (i32.load (i32.const 64)) (i32.const 100)))))
  (core instance $i (instantiate $m))
  (func (export "next") (result u32) (canon lift (core func $i "next"))))"""

# draw() answers a fresh random u64 from the WASI context on every call.
RANDOM = """(component
  (import "wasi:random/random@0.2.0" (instance $random (export "get-random-u64" (func (result u64)))))
  (core func $get (canon lower (func $random "get-random-u64")))
  (core module $m
    (import "wasi" "get" (func $get (result i64)))
    (func (export "draw") (result i64) (call $get)))
  (core instance $w (export "get" (func $get)))
  (core instance $i (instantiate $m (with "wasi" (instance $w))))
  (func (export "draw") (result u64) (canon lift (core func $i "draw"))))"""

# Two calls per request: the first answers 101 (checked against its step's expect), the second 202 (expect.result).
TWO_CALLS = {"steps": [{"invoke": "next()", "expect": 101}, {"invoke": "next()"}], "expect": {"result": 202}}


def recipe(folder, wat: str, body: dict, name: str) -> Workload:
    return load_workload(write_recipe(folder, wat, body, name))


def runtimes(path: str, workloads: list[Workload], slots: int = 2):
    return build_runtimes(VARIANTS, small_pool_engine(slots), CacheConfig(), workloads, call_path=path, engines=EnginePool())


def handled(runtime, index: int, n: int) -> None:
    """``n`` requests of workload ``index``, one at a time (each checked by the path; a mismatch raises)."""
    for _ in range(n):
        runtime.handle(index)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_no_component_path_or_variant_reuses_an_instance(tmp_path, path):
    """More requests than pool slots, one at a time, in blocks and phased: each must find a fresh instance."""
    one = recipe(tmp_path, COUNTING, {"invoke": "next()", "expect": {"result": 101}}, "one")
    two = recipe(tmp_path, COUNTING, TWO_CALLS, "two")
    for name, runtime in runtimes(path, [one, two]).items():
        try:
            for index in (0, 1):
                handled(runtime, index, 5)
                for _ in range(5):
                    runtime.handle_phased(index, [0] * 8)
                if runtime.block is not None:  # the native loop: one C call per block
                    failures: list = []
                    runtime.block([index] * 20, [0] * 20, failures)
                    assert failures == [], (name, failures[:1])
                    ok, _ = runtime.block_phased([index] * 20, np.zeros((20, _native.STAMPS), dtype=np.int64))
                    assert ok.all(), name
        finally:
            runtime.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_first_result_check_fails_at_request_2_when_every_answer_differs(tmp_path, path):
    """A loop that learns the first result and never compares again would serve every request of ``draw``."""
    w = recipe(tmp_path, RANDOM, {"invoke": "draw()"}, "draw")
    assert w.check == "first-result" and w.wasi
    for name, runtime in runtimes(path, [w]).items():
        try:
            if runtime.block is not None:
                server = runtime.block.func.__self__
                _, message, records = server.run([0] * 6)
                assert records[:, 1].tolist() == [_native.OUT_OK, _native.OUT_MISMATCH] + [-1] * 4, (name, message)
                assert "differs from the first request's" in message
            else:
                runtime.handle(0)
                with pytest.raises(ResultMismatch, match="first request"):
                    runtime.handle(0)
        finally:
            runtime.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", [{"invoke": "next()", "expect": {"result": 101}}, TWO_CALLS], ids=["one-call", "two-calls"])
@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_answer_at_request_k_stops_every_component_variant_at_k(tmp_path, path, body):
    """Requests 1..K-1 are right, request K (the same component, its expectation wrong at its first call) is wrong:
    plain and phased, one at a time and, on the native path, within one C block."""
    right = recipe(tmp_path, COUNTING, body, "right")
    wrong_body = {**body, "expect": {"result": 7}} if "invoke" in body else {**body, "steps": [{"invoke": "next()", "expect": 7}, body["steps"][1]]}
    wrong = recipe(tmp_path, COUNTING, wrong_body, "wrong")
    assert wrong.sha256 == right.sha256  # one component: on cached variants one compiled copy serves both
    order = [0] * (K - 1) + [1] + [0] * 3
    for name, runtime in runtimes(path, [right, wrong]).items():
        try:
            if runtime.block is not None:
                server = runtime.block.func.__self__
                _, message, records = server.run(order)
                assert records[:, 1].tolist() == [_native.OUT_OK] * (K - 1) + [_native.OUT_MISMATCH] + [-1] * 3, (name, message)
                assert message.startswith("request 1, call 1 of ")  # the wrong workload's first request, its first call
                stamps = np.zeros((len(order), _native.STAMPS), dtype=np.int64)
                with pytest.raises(ResultMismatch, match="returned 101, expected 7"):
                    runtime.block_phased(order, stamps)
            else:
                handled(runtime, 0, K - 1)
                with pytest.raises(ResultMismatch, match="returned 101, expected 7"):
                    runtime.handle(1)
                for _ in range(K - 1):
                    runtime.handle_phased(0, [0] * 8)
                with pytest.raises(ResultMismatch, match="returned 101, expected 7"):
                    runtime.handle_phased(1, [0] * 8)
        finally:
            runtime.close()
