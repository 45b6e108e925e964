"""The lab's check of a WASI request's outputs (stdout, stderr, written files) against its expectation (issue 26):
made on every request, and outside the request's recorded time, on every call path (lean, api, native), for core and
component commands alike.

- Every request: a guest whose stdout is right at every request but request K > 1 (a core command asking a counting
  host function which request it is), or differs from the first request's from request 2 on (a component command
  printing random bytes), must stop the timed block at exactly that request.  A loop that checks only the first
  request's output serves the whole block.
- Outside the recorded time: the requests' recorded times and their checks' times are disjoint intervals inside the
  block, so they add up to at most its wall time.  A loop that times the check with its request counts the check twice
  in that sum, over the wall time by the checks' cost, which a large stdout makes far larger than the loop's bookkeeping.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import wasmtime

from tests.conftest import small_pool_engine
from tests.host.test_cheats import calls  # noqa: F401 - the fixture of the counting host function
from tests.host.test_component_commands import POOL, write_command
from wasmlab.config import CacheConfig
from wasmlab.errors import ResultMismatch
from wasmlab.host import store
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload, wasi_command

PATHS = ("lean", "api", "native")
VARIANTS = ("cached", "pooled+cached")
K = 3  # the request whose stdout is wrong
REQUESTS = 8

# stdout "same\n" on every request but the Kth, which prints "diff\n" (as long: only the bytes differ).
COUNTED = f"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasmlab_test_counter" "next" (func $next (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "same\\n")
  (data (i32.const 32) "diff\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (select (i32.const 32) (i32.const 16) (i32.eq (call $next) (i32.const {K}))))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""

# 256 KiB of "a" lines on stdout (one 64 KiB page written four times): a check that reads it back and compares it costs
# far more than the loop's bookkeeping between requests.
LARGE = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 97) (i32.const 65536))
    (i32.store8 (i32.const 131071) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $write
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 4))))))"""


def core_command(name: str, wat: str, stdout: str | None, **fields: object) -> Workload:
    return dataclasses.replace(wasi_command(name, bytes(wasmtime.wat2wasm(wat)), (name,), stdout=stdout), **fields)


def runtimes(path: str, workload: Workload, variants: tuple[str, ...] = VARIANTS):
    return build_runtimes(list(variants), small_pool_engine(2), CacheConfig(), [workload], call_path=path, engines=EnginePool())


def served_until_failure(runtime, n: int) -> list[int]:
    """The timed block of ``n`` requests, which must stop at a request whose output is wrong: each request's recorded ns
    (0 for the requests after the one that failed, which were not served)."""
    assert runtime.block is not None  # a WASI guest is timed by its path's block server, the output checked apart
    out = [0] * n
    with pytest.raises(ResultMismatch, match="stdout"):
        runtime.block([0] * n, out, [])
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("check", ["pattern", "first-result"])
@pytest.mark.parametrize("path", PATHS)
def test_a_core_command_s_stdout_wrong_at_request_k_stops_the_timed_block_at_k(calls, path, check):  # noqa: F811
    """Requests 1..K-1 print the right stdout, request K a wrong one: the block stops at K, on every variant."""
    stdout = "^same\n$" if check == "pattern" else None
    workload = core_command("counted", COUNTED, stdout, host_imports="wasmlab_test_counter",
                            check="first-result" if check == "first-result" else "expected")
    for name, runtime in runtimes(path, workload).items():
        calls[0] = 0
        try:
            out = served_until_failure(runtime, REQUESTS)
            assert calls[0] == K, (name, calls[0])  # it stopped at request K, not before, not after
            assert all(ns > 0 for ns in out[:K]) and not any(out[K:]), (name, out)
        finally:
            runtime.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_component_command_s_stdout_that_changes_stops_the_timed_block_at_request_2(tmp_path, path):
    """A component command printing random bytes: its second request's stdout differs from the first's."""
    workload = load_workload(str(write_command(tmp_path, "random")))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [workload], path)["pooled+cached"]
    try:
        out = served_until_failure(runtime, REQUESTS)
        assert all(ns > 0 for ns in out[:2]) and not any(out[2:]), out
    finally:
        runtime.close()


def checks_made(monkeypatch) -> list[int]:
    """Each Python output check's own ns (``WasiIO.check``, the Python paths' check, timed around the real one)."""
    spent: list[int] = []
    real = store.WasiIO.check

    def timed(self: store.WasiIO) -> None:
        began = time.perf_counter_ns()
        try:
            real(self)
        finally:
            spent.append(time.perf_counter_ns() - began)
    monkeypatch.setattr(store.WasiIO, "check", timed)
    return spent


def assert_checks_outside_recorded_times(runtime, spent: list[int], n: int = 20, indices: list[int] | None = None) -> None:
    """A block of ``n`` requests (of ``indices`` in turn, or of workload 0): their recorded times and their checks' times
    fit in the block's wall time together."""
    parts = runtime.parts
    checks, check_ns, made = parts.output_checks, parts.output_check_ns, len(spent)
    out: list[int] = [0] * n
    failures: list = []
    began = time.perf_counter_ns()
    runtime.block([(indices or [0])[k % len(indices or [0])] for k in range(n)], out, failures)
    wall = time.perf_counter_ns() - began
    assert not failures, failures[:1]
    assert parts.output_checks - checks == n  # every request checked, and counted for output_check_ns_per_request
    reported = parts.output_check_ns - check_ns
    # The Python paths' checks are timed here too (the native loop's are in C: its own count is all there is).
    timed_here = sum(spent[made:]) if runtime.call_path != "native" else reported
    assert len(spent) - made == (n if runtime.call_path != "native" else 0)
    assert timed_here > 0 and reported >= timed_here * 0.9, (timed_here, reported)
    assert sum(out) + timed_here <= wall, (runtime.variant.name, sum(out), timed_here, wall)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_core_command_s_output_check_is_outside_each_request_s_recorded_time(monkeypatch, path):
    spent = checks_made(monkeypatch)
    workload = core_command("large", LARGE, "^(a{65535}\n){4}$")
    for runtime in runtimes(path, workload).values():
        try:
            runtime.handle(0)  # the first request's output learned (native: and verified against the pattern)
            assert_checks_outside_recorded_times(runtime, spent)
        finally:
            runtime.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_component_command_s_output_check_is_outside_each_request_s_recorded_time(monkeypatch, tmp_path, path):
    spent = checks_made(monkeypatch)
    workload = load_workload(str(write_command(tmp_path, expect={"stdout_match": "^hello\na1\nb2\nK=v\n/sb\n$"})))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [workload], path)["pooled+cached"]
    try:
        runtime.handle(0)
        assert_checks_outside_recorded_times(runtime, spent)
    finally:
        runtime.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ("lean", "api"))
def test_a_trace_of_a_core_and_a_component_command_checks_both_outside_the_recorded_time(monkeypatch, tmp_path, path):
    """One runtime serving both kinds (each kind's strategy bound, then joined): its block server is still the one that
    checks outside the requests' time."""
    spent = checks_made(monkeypatch)
    workloads = [core_command("large", LARGE, "^(a{65535}\n){4}$"), load_workload(str(write_command(tmp_path, expect={"stdout_match": "^hello\n"})))]
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), workloads, path)["pooled+cached"]
    try:
        runtime.handle(0)
        runtime.handle(1)
        assert_checks_outside_recorded_times(runtime, spent, indices=[0, 1])
    finally:
        runtime.close()


@pytest.mark.timeout(120)
def test_the_summary_reports_the_output_check_s_cost_beside_the_latency():
    """output_check_ns_per_request: a WASI command's, on every path; nan for a guest whose output nobody checks."""
    m = scenarios.run(scenarios.Scenario(workload="hello", variants=("pooled+cached",), call_path="all", requests=30, repeats=1,
                                         warmup=3, slots=2))
    by_path = m.summary.set_index("call_path")["output_check_ns_per_request"]
    assert set(by_path.index) == set(PATHS) and (by_path > 0).all(), by_path
    assert (m.variants(None)["output_check_ns_per_request"] > 0).all()
    seed = scenarios.run(scenarios.Scenario(variants=("pooled+cached",), requests=30, repeats=1, warmup=3, slots=2))
    assert seed.summary["output_check_ns_per_request"].isna().all()
