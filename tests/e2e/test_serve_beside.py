"""``wasmlab serve --beside-lab``: one real run of the pinned ``wasmtime serve`` under wrk at one connection, with the
lab's instantiate-only request of the same proxy on the same pool (the seed preset's) measured before the server
starts, on the native path (the lean path's beside it); the figures, their difference and both releases are printed
and saved, and no server is left."""

from __future__ import annotations

import json
from importlib.metadata import version

from tests.e2e.terminal import running
from tests.e2e.test_serve import SERVING, _left_on, _wasmlab, server_tools  # noqa: F401 - the fixture skips without the server's tools
from wasmlab.experiments.serve_beside import REPETITIONS, REQUESTS, WARMUP


def test_serve_beside_the_lab_prints_and_saves_both_figures_and_stops_the_server(tmp_path):
    done = _wasmlab(["serve", "--preset", "seed", "--connections", "1", "--duration", "1s", "--beside-lab", "--out", "run"],
                    tmp_path)
    assert done.returncode == 0, done.stderr
    port, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid) and _left_on(port) == []
    # The lab measured first, before the server started.
    assert done.stderr.index("the lab: instantiate-only requests") < done.stderr.index("serving proxy on")
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    beside, (load,) = metadata["beside_lab"], metadata["loads"]
    lab = beside["lab"]
    assert beside["serve_p50_us_at_1_connection"] == load["p50_us"] > 0 and load["connections"] == 1
    assert beside["difference_us"] == beside["serve_p50_us_at_1_connection"] - lab["p50_us"][0]
    assert lab["instances_made"] == WARMUP + REPETITIONS * REQUESTS and lab["repetitions"] == REPETITIONS
    assert lab["call_path"] == "native" and lab["lean"]["instances_made"] == WARMUP + REPETITIONS * REQUESTS
    assert 0 < lab["p50_us"][1] <= lab["p50_us"][0] <= lab["p50_us"][2]
    # The same pool as the server's: the preset's totals, read back from its -O options.
    assert lab["pool_totals"]["total_core_instances"] == 40 and lab["pool_totals"]["total_memories"] == 20
    assert lab["options_applied"] == metadata["optimize"] and lab["options_left_out"] == []
    assert beside["serve_release"] == " ".join(metadata["wasmtime_cli"]["reports"].split()[:2]) == "wasmtime 49.0.3"
    assert lab["release"].startswith(f"wasmtime {version('wasmtime')}") and beside["releases_differ"]
    out = done.stdout
    assert (f"native path, pooled+cached, the server's pool): a request without the handler's call (new store with WASI "
            f"and wasi-http contexts, instantiate, handler looked up, store dropped) p50 {lab['p50_us'][0]:.1f} µs "
            f"[{lab['p50_us'][1]:.1f}, {lab['p50_us'][2]:.1f}]") in out
    assert f"(lean path, one ctypes call a step): p50 {lab['lean']['p50_us'][0]:.1f} µs" in out
    assert (f"wasmtime serve (wasmtime 49.0.3) p50 at 1 connection {load['p50_us']:.0f} µs: "
            f"{beside['difference_us']:.0f} µs more, what the HTTP stack, the handler's call") in out
    assert f"The releases differ (lab wasmtime {version('wasmtime')}, serve wasmtime 49.0.3)" in out


def test_serve_beside_the_lab_in_json(tmp_path):
    done = _wasmlab(["serve", "--pooling", "--connections", "1", "--duration", "1s", "--beside-lab", "--no-save",
                     "--format", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    beside = document["beside_lab"]
    assert beside["serve_p50_us_at_1_connection"] == document["loads"][0]["p50_us"]
    assert beside["lab"]["pool_totals"]["total_component_instances"] == 1000  # wasmtime serve's own total
    _, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid)
