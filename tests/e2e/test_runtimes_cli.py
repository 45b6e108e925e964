"""``wasmlab reproduce --runtime`` as the real command (issue 28): bad runtime input is one line with exit status 2, a
missing node is one line, a wrong result on v8 fails the run (exit 1), and no node child outlives any of these runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.terminal import interrupted, running, shows
from wasmlab.host import v8
from wasmlab.workloads import load_workload

ROOT = Path(__file__).resolve().parents[2]
DRIVER = str(Path(v8.__file__).with_name("driver.mjs"))
QUICK = ["--requests", "30", "--repeats", "1", "--warmup", "2", "--no-save"]


def drivers(orphaned: bool = False, parent: int | None = None) -> set[int]:
    """The PIDs of live node processes running this tree's driver; ``orphaned``: only those whose parent died (their
    parent is now PID 1), which is what a finished command would leave; ``parent``: only that process's children.
    Either way a test of the v8 runtime running beside this one on another xdist worker is not counted."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if DRIVER in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    if (not orphaned or ppid == 1) and (parent is None or ppid == parent):
                        found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def wasmlab(arguments: list[str], cwd: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's wasmlab, whatever the venv's install points at
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", "reproduce", *arguments], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env=env)


def one_line(done: subprocess.CompletedProcess[str], status: int, message: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, (done.returncode, done.stderr[-800:])
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr, done.stderr[-800:]


BAD = [
    ("an unknown runtime", ["--runtime", "spidermonkey"], "runtime 'spidermonkey' is not allowed; allowed: wasmtime, v8"),
    ("pooled on v8", ["--variants", "pooled@v8"], "pooled is not served on v8: V8 has no pooling allocator knob from JavaScript"),
    ("a reused WASI command on v8", ["--workload", "hello", "--runtime", "v8", "--variants", "cached+reuse4"],
     "is a WASI command, which node:wasi starts once per instance; allowed on v8: baseline or cached without +reuseN"),
    ("an unknown suffix", ["--variants", "cached@spidermonkey"],
     "variant 'cached@spidermonkey': '@spidermonkey' is neither a call path nor a runtime; allowed: @lean, @api, @native, @v8"),
    ("no variant the runtime serves", ["--runtime", "v8", "--variants", "pooled+cached"],
     "no variant runs on v8: variant 'pooled+cached@v8': pooled is not served on v8"),
    ("phases on v8", ["--runtime", "v8", "--variants", "cached", "--phases"], "--phases times wasmtime's phases"),
]


@pytest.mark.timeout(200)
@pytest.mark.parametrize("what, arguments, message", BAD, ids=[row[0] for row in BAD])
def test_bad_runtime_input_is_one_line_exit_2_and_starts_no_node(tmp_path, what, arguments, message):
    one_line(wasmlab([*arguments, *QUICK], tmp_path), 2, message)
    assert not drivers(orphaned=True)


@pytest.mark.timeout(200)
def test_node_missing_from_path_is_one_line_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    one_line(wasmlab(["--runtime", "wasmtime,v8", "--variants", "cached", *QUICK], tmp_path, path=str(empty)), 2,
             "node is not on PATH; the v8 runtime runs the machine's Node.js")


@pytest.mark.timeout(200)
def test_a_run_and_a_failed_run_leave_no_node_child(tmp_path):
    """A whole run prints the runtimes side by side; a planted wrong expectation (--expect 3 for run(1) = 2) fails the
    v8 variants with exit status 1; after each, no node process of this tree's driver is alive."""
    done = wasmlab(["--runtime", "wasmtime,v8", "--variants", "baseline,cached,pooled+cached", "--call-path", "native", *QUICK],
                   tmp_path)
    assert done.returncode == 0, done.stderr[-800:]
    assert "Runtimes side by side" in done.stdout and "cached@v8" in done.stdout and "by means" in done.stdout
    assert "V8 caches the code of identical bytes" in done.stdout and "'pooled+cached@v8': pooled is not served" in done.stdout
    assert not drivers(orphaned=True)
    module = tmp_path / "seed.wasm"
    module.write_bytes(load_workload("seed").wasm)
    failed = wasmlab(["--workload", str(module), "--entry", "run", "--args", "1", "--expect", "3", "--runtime", "v8",
                      "--variants", "baseline,cached", *QUICK], tmp_path)
    assert failed.returncode == 1 and "returned 2, expected 3" in failed.stdout + failed.stderr, failed.stderr[-800:]
    assert not drivers(orphaned=True)


@pytest.mark.timeout(200)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_v8_run_keeps_its_repetitions_and_leaves_no_node_child(tmp_path, sent):
    ended = interrupted(["reproduce", "--runtime", "wasmtime,v8", "--variants", "cached", "--requests", "3000", "--repeats", "30",
                         "--warmup", "10", "--format", "json", "--out", "run"], tmp_path, sent, shows(b" rep 3/30"),
                        before=lambda process: drivers(parent=process.pid))
    assert ended.status == 130 and "kept in" in ended.line, (ended.status, ended.shown[-600:])
    assert len(ended.before) == 1  # the run's one node child, live while it measured
    assert not drivers(orphaned=True) and not any(running(pid) for pid in ended.before)
