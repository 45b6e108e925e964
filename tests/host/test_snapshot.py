"""+snapshot: a module with a start-up export served from its Wizer snapshot (real Wizer, real wasmtime engines).

What must hold: the snapshot's requests return what the start-up-per-request requests return, on every core path; the
start-up is not called when serving from the snapshot; the snapshot is taken after the start-up ran; a second run reads
the cached snapshot instead of running Wizer again.  The guest (startup-heavy) returns its checksum only when its
start-up ran exactly once in the instance's history, so a snapshot taken before the start-up, or a start-up called
again on the snapshot, fails the result check of every request."""

from __future__ import annotations

import pytest
import wasmtime

from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.errors import ConfigError
from wasmlab.host import snapshot
from wasmlab.host.runtime import build_runtimes
from wasmlab.workloads import load_workload
from wasmlab.workloads.recipe import parse, to_workload
from wasmlab.workloads.startup import checksum

KIB = 16


def _result(outcome: object) -> object:
    return getattr(outcome, "result", outcome)  # the Python paths hand back a recipe's Outcome, the native path its result


@pytest.mark.parametrize("path", ["lean", "api", "native"])
def test_requests_served_from_the_snapshot_return_what_start_up_per_request_returns(path):
    w = load_workload(f"startup-heavy:kib={KIB}")
    runtimes = build_runtimes(["pooled+cached", "pooled+cached+snapshot"], EngineConfig(), CacheConfig(), [w], path)
    try:
        results = {name: [_result(r.handle(0)) for _ in range(3)] for name, r in runtimes.items()}
        fresh, snap = runtimes["pooled+cached"], runtimes["pooled+cached+snapshot"]
        assert results["pooled+cached"] == results["pooled+cached+snapshot"] == [checksum(KIB)] * 3
        # The snapshot variant's request has no start-up step, and its module no start-up export to call.
        assert [s.export for s in fresh.workloads[0].recipe.steps] == ["wizer.initialize", "run"]
        assert [s.export for s in snap.workloads[0].recipe.steps] == ["run"] and snap.workloads[0].init == ""
        exports = {e.name for e in wasmtime.Module(wasmtime.Engine(), snap.workloads[0].wasm).exports}
        assert exports == {"memory", "run"}
        # The start-up's table is in the snapshot: a data segment at least as large as what it wrote.
        assert snap.snapshots[0].snapshot_bytes >= KIB * 1024 > 50 * w.size_bytes
        assert snap.workloads[0].sha256 != w.sha256 and snap.workloads[0].name == w.name
    finally:
        for r in runtimes.values():
            r.close()


def test_a_second_take_reads_the_cached_snapshot_without_running_wizer(tmp_path, monkeypatch):
    w = load_workload("startup-heavy:kib=4")
    first = snapshot.take(w, tmp_path)
    assert not first.cached and first.wizer_ms > 0 and first.path.parent == tmp_path
    made = first.path.read_bytes()

    def no_wizer(*args: object) -> float:
        raise AssertionError("Wizer ran again on a cached snapshot")
    monkeypatch.setattr(snapshot, "_run_wizer", no_wizer)
    second = snapshot.take(w, tmp_path)
    assert second.cached and second.path == first.path and second.path.read_bytes() == made
    assert second.wizer_ms == first.wizer_ms  # the time it took when it was made, read back
    # Another module, or another start-up, is another snapshot: Wizer would run (and here refuses to).
    with pytest.raises(AssertionError, match="Wizer ran again"):
        snapshot.take(load_workload("startup-heavy:kib=5"), tmp_path)


def test_the_key_names_the_module_the_start_up_and_the_wizer():
    keys = {snapshot.snapshot_key(m, i, t) for m in ("a", "b") for i in ("wizer.initialize", "setup") for t in ("x", "y")}
    assert len(keys) == 8


def test_snapshot_for_a_module_without_a_start_up_or_a_component_is_refused():
    for spec, message in (("seed", "workload 'seed' has no start-up export to snapshot; allowed: +snapshot for a module exporting "
                                   "wizer.initialize, or a recipe naming its start-up (init: EXPORT)"),
                          ("component-seed", "workload 'component-seed' is a component; allowed: +snapshot for a core module")):
        with pytest.raises(ConfigError, match=f"variant 'pooled\\+cached\\+snapshot': {message[:40]}"):
            build_runtimes(["pooled+cached+snapshot"], EngineConfig(), CacheConfig(), [load_workload(spec)], "lean")


def test_a_start_up_that_wizer_cannot_run_is_one_line(tmp_path):
    """Wizer refuses a start-up that calls an import (its snapshot would not be deterministic)."""
    wat = """(module (import "env" "now" (func $now (result i32))) (memory (export "memory") 1) (global $g (mut i32) (i32.const 0))
      (func (export "wizer.initialize") call $now global.set $g)
      (func (export "run") (param i32) (result i32) global.get $g))"""
    w = to_workload(parse({"module": "m.wasm", "imports": {"env.now": 3}, "invoke": "run(0)", "expect": {"result": 3}}),
                    bytes(wasmtime.wat2wasm(wat)))
    with pytest.raises(ConfigError, match="Wizer could not snapshot workload 'm' \\(init wizer.initialize\\): ") as caught:
        snapshot.take(w, tmp_path)
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("*.wasm"))
