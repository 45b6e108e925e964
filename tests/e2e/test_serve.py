"""``wasmlab serve``: the catalog's wasi:http proxy under the real ``wasmtime serve`` (the pinned CLI), loaded by the real
``wrk`` on loopback; every response checked, the figures reported and saved, and the server's PID gone afterwards,
also after a real SIGINT or SIGTERM mid-load.  Bad input (a port in use, no wrk, a server that does not start) is one
line, exit 2, nothing left running.

wrk (Debian's) and the wasmtime CLI (``wasmlab workloads fetch``) are installed by ``make test`` (server-deps,
components), which sets ``WASMLAB_REQUIRE_SERVE=1``: there a missing one fails instead of skipping."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.terminal import ROOT, interrupted, running, shows
from wasmlab.errors import ConfigError
from wasmlab.workloads import tools
from wasmlab.workloads.proxy import proxy

SERVING = re.compile(rb"serving proxy on 127\.0\.0\.1:(\d+) \(wasmtime serve, PID (\d+)\)")


def _missing() -> str | None:
    if shutil.which("wrk") is None:
        return "wrk is not installed (make server-deps installs Debian's)"
    try:
        tools.installed("wasmtime-cli")
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module", autouse=True)
def server_tools() -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("WASMLAB_REQUIRE_SERVE") == "1":
            pytest.fail(f"WASMLAB_REQUIRE_SERVE=1 but {missing}")
        pytest.skip(missing)


def _wasmlab(arguments: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *arguments], cwd=cwd, capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120)


def _left_on(port: int) -> list[int]:
    """Processes whose command line names the port (the server's --addr, wrk's URL): none may outlive a run."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"127.0.0.1:{port}".encode() in cmdline.read_bytes() and running(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_serve_at_1_and_2_connections_checks_every_response_reports_and_saves_and_stops_the_server(tmp_path):
    done = _wasmlab(["serve", "--connections", "1,2", "--duration", "2s", "--out", "run"], tmp_path)
    assert done.returncode == 0, done.stderr
    port, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid) and _left_on(port) == []
    rows = [line.split() for line in done.stdout.splitlines() if re.match(r"^\s+[12] ", line)]
    assert [row[0] for row in rows] == ["1", "2"] and all(row[-1] == "yes" for row in rows), done.stdout
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["checked"] is True and metadata["address"] == f"127.0.0.1:{port}"
    assert metadata["wasmtime_cli"]["binary_sha256"] == tools.tool("wasmtime-cli").sha256
    assert metadata["wasmtime_cli"]["reports"].startswith("wasmtime 49.") and metadata["load_generator"]["name"] == "wrk"
    expected = proxy("proxy")
    assert metadata["expected_body"] == expected.body.decode() and metadata["component_bytes"] == expected.size_bytes
    table = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    assert table["connections"].tolist() == [1, 2]
    for load in table.to_dict(orient="records"):
        # Every response wrk saw was counted and was the proxy's own: status 200 and the exact body.
        assert load["requests"] > 100 and load["good"] == load["requests"] and load["bad"] == 0 and load["errors"] == 0
        assert 1.5 < load["duration_s"] < 4 and load["requests_per_s"] == pytest.approx(load["requests"] / load["duration_s"])
        assert 0 < load["p50_us"] <= load["p90_us"] <= load["p99_us"] <= load["max_us"]
        # A server's resident set is MiB, its address space at least that (GiB with the pooling allocator's reservation).
        assert 1024 < load["rss_kib"] <= load["address_space_kib"]


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_load_stops_the_server_and_wrk_one_line_exit_130(tmp_path, sent):
    ended = interrupted(["serve", "--connections", "1", "--duration", "30s", "--no-save"], tmp_path, sent,
                        shows(b"serve: wrk: 1 connection"), timeout=30)
    port, pid = (int(v) for v in SERVING.search(ended.shown).groups())
    assert ended.status == 130, ended.shown[-600:]
    assert ended.line == f"wasmlab: interrupted ({sent.name})" and b"Traceback" not in ended.shown
    assert not running(pid) and _left_on(port) == []


def test_a_port_in_use_is_one_line_exit_2_and_nothing_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _wasmlab(["serve", "--port", str(port), "--duration", "1s", "--no-save"], tmp_path)
        assert _left_on(port) == []
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"wasmlab: error: --port {port}: 127.0.0.1:{port} is in use") and done.stdout == ""


def test_a_missing_wrk_is_one_line_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    done = _wasmlab(["serve", "--duration", "1s", "--no-save"], tmp_path, env={"PATH": str(empty)})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines == ["wasmlab: error: the load generator wrk is not installed; allowed: install "
                                              "Debian's wrk (`make server-deps`, or apt-get install wrk)"], done.stderr


def test_a_server_that_does_not_start_is_one_line_exit_2_and_nothing_is_left(tmp_path):
    done = _wasmlab(["serve", "-O", "no-such-option=1", "--duration", "1s", "--no-save"], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("wasmlab: error: wasmtime serve exited with status ") and "no-such-option" in lines[0]
    assert not any(b"no-such-option" in _cmdline(p) for p in Path("/proc").glob("[0-9]*/cmdline"))


def _cmdline(path: Path) -> bytes:
    """A process's command line; empty when it ended while the folder was listed."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_wrong_bodies_are_counted_bad_by_wrk_and_refused_by_the_http_client_check():
    """The checks can fail: the real server's real responses against a body the proxy does not give."""
    import dataclasses

    from wasmlab.errors import ResultMismatch
    from wasmlab.experiments.serve import check_one_response
    from wasmlab.measure import http_server, wrk_load

    made = proxy("proxy")
    wrong = dataclasses.replace(made, body=made.body.replace(b"wasmlab", b"wasmLab"))
    port = http_server.free_port()
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        component = Path(scratch) / "proxy.wasm"
        component.write_bytes(made.wasm)
        with http_server.ServerProcess(tools.installed("wasmtime-cli"), component, port) as server:
            check_one_response(port, made)
            with pytest.raises(ResultMismatch, match=r"wasmtime serve answered 200 b'hello from wasmlab\\n'; proxy must answer"):
                check_one_response(port, wrong)
            load = wrk_load.run_wrk(wrk_load.wrk_binary(), f"http://127.0.0.1:{port}/", 1, 1, 200, wrong.body)
            assert load.requests > 0 and load.bad == load.requests and load.good == 0 and not load.checked
            status = wrk_load.run_wrk(wrk_load.wrk_binary(), f"http://127.0.0.1:{port}/", 1, 1, 404, made.body)
            assert status.bad == status.requests and not status.checked
            pid = server.pid
    assert not running(pid)


@pytest.mark.parametrize("arguments, message", [
    (["--connections", "0"], "--connections '0' is out of range; allowed: integers from 1 to 256"),
    (["--connections", "1,x"], "--connections '1,x' is not a list of integers; allowed: e.g. 1,2,8"),
    (["--duration", "500ms"], "--duration '500ms' is not a duration; allowed: whole seconds like 3s or 3, or minutes like 2m"),
    (["--duration", "0s"], "--duration 0s is out of range; allowed: whole seconds from 1s to 300s"),
    (["--workload", "seed"], "proxy component (--workload) 'seed' is not allowed; allowed: proxy"),
    (["-O", "--x"], "-O '--x' is not allowed; allowed: wasmtime's KEY=VALUE options"),
    (["--port", "70000"], "--port 70000 is out of range; allowed: 1 to 65535, or 0 for a free port"),
])
def test_bad_serve_arguments_are_one_line_exit_2(arguments, message):
    from click.testing import CliRunner

    from wasmlab.cli import main

    done = CliRunner().invoke(main, ["serve", *arguments, "--no-save"])
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"wasmlab: error: {message}"), done.stderr


def test_json_output_and_the_pooling_flag_reach_the_server(tmp_path):
    """--format json carries the format version and every load; --no-pooling is passed to wasmtime serve as -O."""
    done = _wasmlab(["serve", "--connections", "1", "--duration", "1s", "--no-pooling", "--no-save", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format_version"] >= 1 and document["checked"] is True and document["optimize"] == ["pooling-allocator=n"]
    assert ["-O", "pooling-allocator=n"] == document["server_command"][-3:-1]
    (load,) = document["loads"]
    assert load["connections"] == 1 and load["good"] == load["requests"] > 0
    # Without the pooling allocator's reservation the address space is far below the default's GiB-scale one.
    assert load["address_space_kib"] < 64 * 2**20


def test_a_lab_killed_outright_takes_its_server_with_it(tmp_path):
    """SIGKILL runs no cleanup in the lab: the server, started from its main thread, is tied to the lab's life
    (PR_SET_PDEATHSIG) and dies with it, rather than serving on for nobody."""
    import time

    from tests.e2e.terminal import on_a_terminal, read

    process, master = on_a_terminal(["serve", "--connections", "1", "--duration", "30s", "--no-save"], tmp_path)
    try:
        shown = read(master, until=b"serve: wrk: 1 connection", timeout=60)
        port, pid = (int(v) for v in SERVING.search(shown).groups())
        assert running(pid)
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(pid)
    finally:
        process.kill()
        os.close(master)
        for left in _left_on(port) if "port" in locals() else []:
            os.kill(left, signal.SIGKILL)  # what a failed test left, not left for the next
