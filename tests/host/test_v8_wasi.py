"""WASI preview 1 commands on the v8 runtime (issue 28), through node:wasi in the lab's node child, real V8 and real
guests: every request's exit status and outputs are checked (the first request's against the workload's patterns here,
each later one's against the first's byte for byte in node, as the native path does in C), argv and stdin reach the
guest, and what node:wasi cannot serve is one line.

- A guest printing random bytes differs from request 2 on: a driver that checked only the first request's output
  would serve the whole block.
- A guest exiting 3 where 0 is expected fails request 1; a first output that misses its pattern fails the variant.
"""

from __future__ import annotations

import shutil

import pytest
import wasmtime

# ECHO: stdin copied to stdout, argv's count as the exit status; RANDOM: eight random bytes, every output differs
from tests.host.test_native import ECHO, RANDOM
from tests.host.test_v8 import V8_VARIANTS, close_all, v8_runtimes
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import wasi_command

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the v8 runtime runs the machine's Node.js")
REQUESTS = 12

EXIT_3 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"""


def command(name: str, wat: str, **fields) -> object:
    return wasi_command(name, bytes(wasmtime.wat2wasm(wat)), fields.pop("argv", (name,)), **fields)


def serve(workload, n: int = REQUESTS, variants=V8_VARIANTS) -> dict:
    """A block of ``n`` requests on each variant; each variant's runtime, for what it counted."""
    runtimes = v8_runtimes([workload], variants)
    try:
        for runtime in runtimes.values():
            failures: list = []
            runtime.block([0] * n, [0] * n, failures)
            assert failures == []
        return runtimes
    finally:
        close_all(runtimes)


@pytest.mark.timeout(60)
def test_a_wasi_command_runs_on_v8_with_every_request_s_output_checked():
    runtimes = serve(load_workload("hello"))
    for runtime in runtimes.values():
        assert runtime.parts.output_checks == REQUESTS and runtime.parts.output_check_ns > 0


@pytest.mark.timeout(60)
def test_argv_and_stdin_reach_the_guest():
    """ECHO exits with its argument count (3) and prints its stdin: both checked, so a driver that lost either fails."""
    serve(command("echo", ECHO, argv=("echo", "a", "b"), stdin=b"piped in\n", stdout="^piped in\n$", expected_exit=3))
    with pytest.raises(ResultMismatch, match="exited with 2, expected 3"):
        serve(command("echo", ECHO, argv=("echo", "a"), stdin=b"piped in\n", stdout="^piped in\n$", expected_exit=3))
    with pytest.raises(ResultMismatch, match="stdout does not match"):
        serve(command("echo", ECHO, argv=("echo", "a", "b"), stdin=b"other\n", stdout="^piped in\n$", expected_exit=3))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("variant", V8_VARIANTS)
def test_an_output_that_changes_stops_the_block_at_request_2(variant):
    with pytest.raises(ResultMismatch, match=rf"stdout differs from the first request's .*\(request 2 of a block of {REQUESTS}"):
        serve(command("random", RANDOM), variants=(variant,))


@pytest.mark.timeout(60)
def test_a_wrong_exit_status_fails_request_1():
    with pytest.raises(ResultMismatch, match=r"exited with 3, expected 0 \(request 1 of a block"):
        serve(command("exit3", EXIT_3))


@pytest.mark.timeout(60)
def test_what_node_wasi_cannot_serve_is_one_line():
    with pytest.raises(ConfigError, match=r"is a WASI command, which node:wasi starts once per instance; allowed on v8"):
        v8_runtimes([load_workload("hello")], ("cached+reuse16@v8",))
