"""``wasmlab serve --load-generator hey``: Debian's hey loads the real ``wasmtime serve``; every response's status is
counted from hey's summary (refused connections too, which hey's CSV leaves out), a wrong status is counted bad, the
server and hey are gone afterwards, also after a SIGINT mid-load; a missing hey is one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from tests.e2e.terminal import interrupted, running, shows
from tests.e2e.test_serve import SERVING, _left_on, _wasmlab, server_tools  # noqa: F401 - the fixture skips without the tools
from wasmlab.measure import hey_load, http_server
from wasmlab.workloads import tools
from wasmlab.workloads.proxy import proxy


@pytest.fixture(scope="module", autouse=True)
def hey_installed() -> None:
    if shutil.which("hey") is None:
        if os.environ.get("WASMLAB_REQUIRE_SERVE") == "1":
            pytest.fail("WASMLAB_REQUIRE_SERVE=1 but hey is not installed (make server-deps installs Debian's)")
        pytest.skip("hey is not installed (make server-deps installs Debian's)")


def test_hey_at_1_and_2_connections_counts_every_status_reports_saves_and_stops_the_server(tmp_path):
    done = _wasmlab(["serve", "--load-generator", "hey", "--connections", "1,2", "--duration", "2s", "--out", "run"], tmp_path)
    assert done.returncode == 0, done.stderr
    port, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid) and _left_on(port) == []
    assert "serve: hey: 2 connection(s) for 2 s" in done.stderr and "Every response's status counted by hey" in done.stdout
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["load_generator"]["name"] == "hey" and metadata["load_generator"]["version"].startswith("hey debian/0.1.4")
    assert [load["connections"] for load in metadata["loads"]] == [1, 2] and metadata["checked"] is True
    for load in metadata["loads"]:
        assert load["requests"] > 100 and load["good"] == load["requests"] and load["bad"] == load["errors"] == 0
        assert 1.9 < load["duration_s"] < 3 and load["requests_per_s"] == pytest.approx(load["requests"] / load["duration_s"])
        # hey's percentiles come in 0.1 ms steps: ordered, and whole multiples of 100 µs.
        assert 0 < load["p50_us"] <= load["p90_us"] <= load["p99_us"] <= load["max_us"]
        assert load["p50_us"] % 100 == pytest.approx(0, abs=1e-6) or load["p50_us"] % 100 == pytest.approx(100, abs=1e-6)
        # Bounded in requests: at most connections x the per-connection cap x the duration.
        assert load["requests"] <= load["connections"] * hey_load.MAX_RATE_PER_CONNECTION * 2


def test_hey_counts_a_wrong_status_bad_and_refused_connections_as_errors():
    """The counts can fail: the real server's responses against a status it does not give, and a port nobody serves."""
    made = proxy("proxy")
    hey = hey_load.hey_binary()
    nobody = http_server.free_port()
    refused = hey_load.run_hey(hey, f"http://127.0.0.1:{nobody}/", 1, 1, 200)
    # hey's CSV would have printed no row at all here; its summary counts every refused request.
    assert refused.errors > 0 and refused.requests == refused.errors and refused.good == 0 and not refused.checked
    port = http_server.free_port()
    with tempfile.TemporaryDirectory() as scratch:
        component = Path(scratch) / "proxy.wasm"
        component.write_bytes(made.wasm)
        with http_server.ServerProcess(tools.installed("wasmtime-cli"), component, port) as server:
            wrong = hey_load.run_hey(hey, f"http://127.0.0.1:{port}/", 1, 1, 404)
            assert wrong.requests > 0 and wrong.bad == wrong.requests and wrong.good == 0 and not wrong.checked
            right = hey_load.run_hey(hey, f"http://127.0.0.1:{port}/", 2, 1, 200)
            assert right.checked and right.good == right.requests > 0
            pid = server.pid
    assert not running(pid) and _left_on(port) == [] and _left_on(nobody) == []


def test_a_sigint_mid_hey_load_stops_the_server_and_hey_exit_130(tmp_path):
    ended = interrupted(["serve", "--load-generator", "hey", "--connections", "1", "--duration", "30s", "--no-save"], tmp_path,
                        signal.SIGINT, shows(b"serve: hey: 1 connection"), timeout=30)
    port, pid = (int(v) for v in SERVING.search(ended.shown).groups())
    assert ended.status == 130 and ended.line == "wasmlab: interrupted (SIGINT)" and b"Traceback" not in ended.shown
    assert not running(pid) and _left_on(port) == []


def test_a_missing_hey_is_one_line_exit_2_naming_how_to_install_it(tmp_path):
    only_wrk = tmp_path / "bin"
    only_wrk.mkdir()
    (only_wrk / "wrk").symlink_to(shutil.which("wrk") or "wrk")
    done = _wasmlab(["serve", "--load-generator", "hey", "--duration", "1s", "--no-save"], tmp_path, env={"PATH": str(only_wrk)})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines == ["wasmlab: error: the load generator hey is not installed; allowed: install "
                                              "Debian's hey (`make server-deps`, or apt-get install hey), or --load-generator "
                                              "wrk"], done.stderr
    # Refused before any server started: the run never printed a serving line.
    assert "serving proxy" not in done.stderr and done.stdout == ""


def test_an_unknown_load_generator_is_one_line_exit_2(tmp_path):
    done = _wasmlab(["serve", "--load-generator", "ab", "--no-save"], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "'ab' is not one of 'wrk', 'hey'" in lines[0], done.stderr
