"""The snapshot report: a real run of startup-heavy with and without +snapshot, and the JSON and text made from it."""

from __future__ import annotations

import json

from click.testing import CliRunner

from wasmlab.cli import main
from wasmlab.measure import scenario as scenarios
from wasmlab.report import snapshots

KIB = 256


def test_start_up_twin_is_the_variant_without_snapshot():
    assert snapshots.start_up_twin("pooled+cached+snapshot") == "pooled+cached"
    assert snapshots.start_up_twin("pooled+cached+snapshot@native") == "pooled+cached@native"
    assert snapshots.start_up_twin("snapshot") == "baseline"


def test_a_run_reports_sizes_wizer_compile_times_and_faults_beside_the_start_up_twin():
    scenario = scenarios.Scenario(workload=f"startup-heavy:kib={KIB}", variants=("pooled+cached", "pooled+cached+snapshot"),
                                  requests=40, repeats=1, warmup=5, slots=2)
    m = scenarios.run(scenario)
    assert not m.errors, m.errors
    (record,) = snapshots.summary(m)
    assert record["variant"] == "pooled+cached+snapshot" and record["start_up_variant"] == "pooled+cached"
    assert record["init"] == "wizer.initialize"
    # The start-up's table is in the snapshot's data: the snapshot is at least as large as the table, the module tiny.
    assert record["snapshot_bytes"] >= KIB * 1024 > 100 * record["module_bytes"]
    assert record["wizer_ms"] > 0 and record["module_compile_ms"] > 0 and record["snapshot_compile_ms"] > 0
    assert record["snapshot"]["requests"] == record["start_up"]["requests"] == 40
    # Page faults are counted by the kernel, not timed: the start-up writes 64 pages on every request, the snapshot's
    # request only reads them (copy-on-write mappings of the image), so it faults far less.  A generous margin.
    assert record["start_up"]["minor_faults_per_request"] >= 32
    assert record["snapshot"]["minor_faults_per_request"] < record["start_up"]["minor_faults_per_request"] / 2
    text = snapshots.table(m)
    assert text.startswith("Snapshot (pooled+cached+snapshot, init wizer.initialize): module ")
    assert f"snapshot {record['snapshot_bytes']:,} B" in text and "start-up every request (pooled+cached)" in text


def test_a_run_without_a_snapshot_variant_has_no_snapshot_report():
    m = scenarios.run(scenarios.Scenario(workload="seed", variants=("pooled+cached",), requests=30, repeats=1, warmup=2, slots=2))
    assert snapshots.summary(m) == [] and snapshots.table(m) == ""


def test_reproduce_json_carries_the_snapshot_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["reproduce", "--workload", "startup-heavy:kib=16", "--variants", "pooled+cached+snapshot@native",
                                     "--requests", "30", "--repeats", "1", "--warmup", "2", "--no-save", "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    (record,) = data["snapshots"]
    assert record["variant"] == "pooled+cached+snapshot@native" and record["start_up"] is None
    assert record["snapshot_bytes"] >= 16 * 1024 and data["variants"]["pooled+cached+snapshot@native"]["outcome_ok"] == 30
