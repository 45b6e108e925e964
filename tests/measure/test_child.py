"""The one child-process protocol: a result, a Python error as one line, a real wasmtime abort as a crash with
its signal and last lines, a child that does not answer; and after a crash or a timeout the next request is
served by a new child, while this process goes on."""

from __future__ import annotations

from wasmlab.config import EngineConfig, GiB, PoolConfig
from wasmlab.measure.child import Child, call_once

# With the preflight off, wasmtime aborts the process (a Rust panic, SIGABRT) when a pool of 20 slots cannot
# reserve its 80 GiB of address space under an 8 GiB limit.
UNRESERVABLE = EngineConfig(allocator="pooling", pool=PoolConfig(slots=20), preflight=False)


def test_a_child_returns_the_functions_result_and_its_errors_as_one_line():
    with Child("builtins:len") as child:
        assert child.call([1, 2, 3]).result == 3
        failed = child.call(5)  # len(5): a Python error, reported; the same child serves on
        assert (failed.status, failed.error_type, failed.lab_error) == ("error", "TypeError", False)
        assert failed.message == "object of type 'int' has no len()"
        assert child.call("four").result == 4 and child.started == 1
    refused = call_once("wasmlab.config:get_preset", "nginx")
    assert refused.status == "error" and refused.lab_error and "preset 'nginx' is not allowed" in refused.message


def test_a_wasmtime_abort_takes_down_its_child_only_and_the_next_request_gets_a_new_one():
    with Child("wasmlab.host.engine:build_engine", address_space=8 * GiB) as child:
        crashed = child.call(UNRESERVABLE)
        assert crashed.status == "crash" and crashed.error_type == "SIGABRT", crashed
        assert crashed.message.startswith("crash (SIGABRT): ") and crashed.stderr
        assert child.crashes == 1
        # The next request starts a new child: an engine that fits is made (and, being no picklable result,
        # reported as the child's Python error rather than a crash).
        fits = child.call(EngineConfig())
        assert fits.status == "error" and child.started == 2 and child.crashes == 1, fits


def test_a_child_that_does_not_answer_in_time_is_killed_and_replaced():
    with Child("time:sleep", timeout_s=0.5) as child:
        late = child.call(30)
        assert late.status == "crash" and late.message == "no answer within 0 s" and child.crashes == 1
        assert child.call(0).ok and child.started == 2
