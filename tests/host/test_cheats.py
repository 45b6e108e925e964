"""Tests built to catch a cheating request loop, each by construction (issue 26).

- A loop that checks only the first request's result: a guest whose answer is wrong at request K > 1 only (it asks a
  counting host function which request it is), so the variant must stop at exactly request K.
- A loop that reuses one instance across requests: a guest that marks its memory and a global on each call and traps
  if it finds the mark (a fresh instance never does).
- A phase (the store delete) taken out of the timed region: every request's stamps lie inside its recorded time, and
  the time between requests is only the loop's bookkeeping, not a phase's work.

Every test serves every named variant on every core call path (lean, api, native): a cheat in any one is caught.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import _native
from wasmlab.config import CacheConfig
from wasmlab.errors import ResultMismatch
from wasmlab.host import linking
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.host.variant import NAMED_VARIANTS
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload

PATHS = ("lean", "api", "native")
K = 3  # the request whose answer is wrong: late enough that a loop checking only request 1 misses it
REQUESTS = 8

COUNTED = f"""(module
  (import "wasmlab_test_counter" "next" (func $next (result i32)))
  ;; 42 on every request but the {K}th, which returns 41: only a loop that checks each result sees it
  (func (export "run") (result i32)
    (if (result i32) (i32.eq (call $next) (i32.const {K})) (then (i32.const 41)) (else (i32.const 42)))))"""

MARKED = """(module
  (memory (export "memory") 1)
  (global $seen (mut i32) (i32.const 0))
  ;; a fresh instance finds neither mark; a reused one finds both and traps
  (func (export "run") (result i32)
    (if (i32.or (global.get $seen) (i32.load (i32.const 1024))) (then unreachable))
    (global.set $seen (i32.const 1))
    (i32.store (i32.const 1024) (i32.const 1))
    (i32.const 7)))"""


def guest(name: str, wat: str, expected: int, check: str = "expected", host_imports: str = "") -> Workload:
    wasm = bytes(wasmtime.wat2wasm(wat))
    return Workload(name=name, wasm=wasm, entry="run", params=(), results=("i32",), args=(), expected=expected,
                    sha256=hashlib.sha256(wasm).hexdigest(), check=check, host_imports=host_imports)


@pytest.fixture
def calls(monkeypatch):
    """The requests the counting host function has seen: a host-function set the lab's linker defines like any other."""
    seen = [0]
    real = linking.define_host_functions

    def define(linker: wasmtime.Linker, name: str) -> None:
        if name != "wasmlab_test_counter":
            real(linker, name)
            return

        def next_call() -> int:
            seen[0] += 1
            return seen[0]
        linker.define_func(name, "next", wasmtime.FuncType([], [wasmtime.ValType.i32()]), next_call)
    monkeypatch.setattr(linking, "define_host_functions", define)
    return seen


def runtimes(path: str, workload: Workload, slots: int = 4):
    return build_runtimes(NAMED_VARIANTS, small_pool_engine(slots), CacheConfig(), [workload], call_path=path, engines=EnginePool())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("check", ["expected", "first-result"])
@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_answer_at_request_k_stops_every_variant_at_k(calls, path, check):
    """Requests 1..K-1 are right, request K is wrong: a loop that checked only request 1 would serve all of them."""
    workload = guest("counted", COUNTED, 42, check, host_imports="wasmlab_test_counter")
    for name, runtime in runtimes(path, workload).items():
        calls[0] = 0
        try:
            if runtime.block is not None:  # the native loop: one C call, the mismatch found in C
                with pytest.raises(ResultMismatch, match="returned 41"):
                    runtime.block([0] * REQUESTS, [0] * REQUESTS, [])
            else:
                assert [runtime.handle(0) for _ in range(K - 1)] == [42] * (K - 1), name
                with pytest.raises(ResultMismatch, match="returned 41"):
                    runtime.handle(0)
            assert calls[0] == K, (name, calls[0])  # it stopped at request K, not before, not after
        finally:
            runtime.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_answer_at_request_k_stops_a_phased_native_block_at_k(calls, path):
    """The phased loop (``--phases``) checks every result too: a cheat there is caught as in the plain loop."""
    workload = guest("counted", COUNTED, 42, host_imports="wasmlab_test_counter")
    for name, runtime in runtimes(path, workload).items():
        calls[0] = 0
        try:
            if runtime.block_phased is not None:
                stamps = np.zeros((REQUESTS, _native.STAMPS), dtype=np.int64)
                with pytest.raises(ResultMismatch, match="returned 41"):
                    runtime.block_phased([0] * REQUESTS, stamps)
            else:
                for _ in range(K - 1):
                    assert runtime.handle_phased(0, [0] * 8) == 42
                with pytest.raises(ResultMismatch, match="returned 41"):
                    runtime.handle_phased(0, [0] * 8)
            assert calls[0] == K, (name, calls[0])
        finally:
            runtime.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", PATHS)
def test_no_path_or_variant_reuses_an_instance(path):
    """More requests than pool slots, plain and phased: each must find a fresh instance (a reused one traps)."""
    workload = guest("marked", MARKED, 7)
    for name, runtime in runtimes(path, workload, slots=2).items():
        try:
            if runtime.block is not None:
                failures: list = []
                runtime.block([0] * 20, [0] * 20, failures)
                assert failures == [], (name, failures[:2])
                ok, _ = runtime.block_phased([0] * 20, np.zeros((20, _native.STAMPS), dtype=np.int64))
                assert ok.all(), name
            assert [runtime.handle(0) for _ in range(5)] == [7] * 5, name
            assert [runtime.handle_phased(0, [0] * 8) for _ in range(5)] == [7] * 5, name
        finally:
            runtime.close()


@pytest.mark.timing  # besides its inequalities, compares the gap between requests with the store delete (a ~1000x margin): run alone
@pytest.mark.timeout(60)
def test_each_native_request_s_recorded_time_covers_its_phases_and_its_store_delete():
    """Phased native blocks on every variant: each request's stamps (store creation .. store delete .. judged) are in
    order and inside its recorded time, and requests do not overlap.  Then the store delete must be inside its phase:
    a guest that dirties 512 KiB makes the delete (unmapping or decommitting that memory) the heaviest step, so the
    median gap between one request's end and the next one's start (the loop's bookkeeping: a few stores to memory)
    stays far below the median store-delete phase.  A loop that deletes the store after the request's end stamp moves
    that work into the gap and the delete phase to nothing: both medians flip by orders of magnitude."""
    workload = load_workload("dirty-memory:kib=512")
    n = 60
    for name, runtime in runtimes("native", workload).items():
        try:
            stamps = np.zeros((n, _native.STAMPS), dtype=np.int64)
            server = runtime.block_phased.__self__  # the NativeServer: its run() gives the recorded times as well
            _, message, records = server.run([0] * n, stamps)
            assert (records[:, 1] == _native.OUT_OK).all(), (name, message)
            start, end = stamps[:, 0], stamps[:, 0] + records[:, 0]
            assert (np.diff(stamps, axis=1) >= 0).all(), name  # phases in order, none negative
            assert (stamps[:, 1] >= start).all() and (stamps[:, -1] <= end).all(), name  # every phase inside the request
            assert (stamps[:, -1] - stamps[:, 1] <= records[:, 0]).all(), name  # the phases sum to at most the recorded time
            assert (start[1:] >= end[:-1]).all(), name  # no request starts before the previous one ended
            delete = stamps[:, 6] - stamps[:, 5]  # store delete (and, uncached, the module's release): phase 6
            gap = start[1:] - end[:-1]
            assert np.median(gap) * 4 < np.median(delete), (name, int(np.median(gap)), int(np.median(delete)))
        finally:
            runtime.close()
