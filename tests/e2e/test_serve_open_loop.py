"""``wasmlab serve --rate``: the lab's open-loop generator against the real ``wasmtime serve`` at low offered rates for
~2 s: every request due is sent and answered with the proxy's status and body, latency from intended send time, the
server's PID gone afterwards, also after a SIGINT mid-load; bad rates are one line, exit 2."""

from __future__ import annotations

import json
import signal

import pandas as pd
import pytest

from tests.e2e.terminal import interrupted, running, shows
from tests.e2e.test_serve import SERVING, _left_on, _wasmlab, server_tools  # noqa: F401 - the fixture skips without the tools


def test_open_loop_at_two_low_rates_sends_every_request_due_checks_every_answer_and_stops_the_server(tmp_path):
    done = _wasmlab(["serve", "--rate", "100,300", "--duration", "2s", "--rate-connections", "2", "--out", "run"], tmp_path)
    assert done.returncode == 0, done.stderr
    port, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid) and _left_on(port) == []
    assert "serve: open loop: 300 req/s offered for 2 s over 2 connection(s)" in done.stderr and "wrk" not in done.stderr
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["loads"] == [] and metadata["load_generator"] is None and metadata["checked"] is True
    assert metadata["open_loop_settings"] == {"rates": [100.0, 300.0], "connections": 2, "late_after_s": 0.001, "drain_s": 5.0}
    assert metadata["open_loop"][0]["offered_rate"] == 100 and metadata["open_loop"][1]["offered_rate"] == 300
    for load in metadata["open_loop"]:
        # Every request due was sent and answered with the proxy's own status and body.
        assert load["scheduled"] == load["sent"] == load["good"] == 2 * load["offered_rate"] and load["checked"]
        assert load["errors"] == load["bad"] == load["unsent"] == 0 and load["connections"] == 2
        # The server keeps up at these rates: the answers come at the rate offered.
        assert load["achieved_rate"] == pytest.approx(load["offered_rate"], rel=0.2)
        assert 0 < load["p50_us"] <= load["p99_us"] <= load["p999_us"] <= load["max_us"]
        # From intended time a request's latency is never shorter than from its actual send.
        assert load["p50_us"] >= load["p50_from_send_us"] and load["max_us"] >= load["max_from_send_us"]
    table = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    assert table["generator"].tolist() == ["open-loop", "open-loop"] and (table["rss_kib"] > 1024).all()
    assert "p99.9 µs" in done.stdout and done.stdout.count("  yes") == 2


def test_a_closed_and_an_open_load_in_one_run_as_json(tmp_path):
    done = _wasmlab(["serve", "--connections", "1", "--rate", "200", "--duration", "1s", "--no-save", "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [row["generator"] for row in document["loads"]] == ["wrk", "open-loop"] and document["checked"] is True
    assert document["open_loop_settings"]["rates"] == [200.0] and document["load_generator"]["name"] == "wrk"


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_open_loop_load_stops_the_load_and_the_server_exit_130(tmp_path, sent):
    """Interrupted on the progress line (the loop just made) and 30 s before the load's end: it must end at once."""
    ended = interrupted(["serve", "--rate", "200", "--duration", "30s", "--no-save"], tmp_path, sent,
                        shows(b"serve: open loop: 200 req/s"), timeout=15)
    port, pid = (int(v) for v in SERVING.search(ended.shown).groups())
    assert ended.status == 130 and ended.line == f"wasmlab: interrupted ({sent.name})", ended.shown[-800:]
    # Nothing after the last line: no traceback, no task asyncio complains about.
    assert b"Traceback" not in ended.shown and b"Task" not in ended.shown and b"never awaited" not in ended.shown
    assert not running(pid) and _left_on(port) == []


@pytest.mark.parametrize("arguments, message", [
    (["--rate", "0"], "--rate 0 is out of range; allowed: requests per second above 0 and at most 50000"),
    (["--rate", "100,-5"], "--rate -5 is out of range; allowed: requests per second above 0 and at most 50000"),
    (["--rate", "fast"], "--rate 'fast' is not a number; allowed: a comma-separated list of numbers"),
    (["--rate", "nan"], "--rate nan is out of range; allowed: requests per second above 0"),
    (["--rate", ","], "--rate is empty; allowed: a comma-separated list"),
    (["--rate", "100", "--rate-connections", "0"], "--rate-connections 0 is out of range; allowed: integers from 1 to 256"),
])
def test_bad_rates_are_one_line_exit_2(arguments, message):
    from click.testing import CliRunner

    from wasmlab.cli import main

    done = CliRunner().invoke(main, ["serve", *arguments, "--no-save"])
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"wasmlab: error: {message}"), done.stderr
