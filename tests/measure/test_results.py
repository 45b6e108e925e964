"""Run folders carry their format version, and a folder of a format this wasmlab cannot read is refused with one line."""

from __future__ import annotations

import json

import pytest

from wasmlab.errors import WasmlabError
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.results import FORMAT_VERSION, METADATA, SUMMARY, TABLE_VERSION_KEY, load_run, save_measurement


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m = scenarios.run(scenarios.Scenario(variants=("baseline", "pooled+cached"), requests=20, repeats=1, warmup=2, slots=2))
    return save_measurement(m, tmp_path_factory.mktemp("run"))


def test_every_saved_run_records_its_format_version_and_loads_back(saved):
    metadata = json.loads((saved / METADATA).read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    loaded = Measurement.load(saved)
    assert set(loaded.summary["variant"]) == {"baseline", "pooled+cached"} and not loaded.samples.empty


def test_a_folder_of_another_format_is_refused_naming_both_versions(saved, tmp_path):
    for file in saved.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    metadata = json.loads((tmp_path / METADATA).read_text())
    (tmp_path / METADATA).write_text(json.dumps({**metadata, "format_version": 99}))
    with pytest.raises(WasmlabError, match=rf"results format version 99; allowed: 1 \(this wasmlab writes {FORMAT_VERSION}\)"):
        load_run(tmp_path)


def test_a_folder_written_before_versions_were_recorded_reads_as_version_1(saved, tmp_path):
    for file in saved.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    metadata = json.loads((tmp_path / METADATA).read_text())
    del metadata["format_version"]
    (tmp_path / METADATA).write_text(json.dumps(metadata))
    assert set(load_run(tmp_path)["summary"]["variant"]) == {"baseline", "pooled+cached"}


def test_compare_refuses_a_run_of_another_format_too(saved, tmp_path):
    from wasmlab.report.compare import load_table

    for file in saved.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    metadata = json.loads((tmp_path / METADATA).read_text())
    (tmp_path / METADATA).write_text(json.dumps({**metadata, "format_version": 99}))
    assert len(load_table(saved)) == 2
    with pytest.raises(WasmlabError, match="results format version 99"):
        load_table(tmp_path)


def test_every_table_carries_the_format_version_and_a_table_of_another_is_refused_naming_both(saved, tmp_path):
    import pyarrow.parquet as pq

    from wasmlab.report.compare import load_table

    assert pq.read_schema(saved / SUMMARY).metadata[TABLE_VERSION_KEY] == str(FORMAT_VERSION).encode()
    for file in saved.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    table = pq.read_table(saved / SUMMARY)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, TABLE_VERSION_KEY: b"99"}), tmp_path / SUMMARY)
    both = rf"summary.parquet' has results format version 99; allowed: 1 \(this wasmlab writes {FORMAT_VERSION}\)"
    with pytest.raises(WasmlabError, match=both):
        Measurement.load(tmp_path)
    with pytest.raises(WasmlabError, match=both):
        load_table(tmp_path / SUMMARY)  # a table copied out of its folder still says what it is


def test_a_measurement_is_an_immutable_record_of_its_format(saved):
    import dataclasses

    loaded = Measurement.load(saved)
    assert loaded.format_version == FORMAT_VERSION and "format_version" not in loaded.metadata
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.metadata = {}
    with pytest.raises(TypeError):
        loaded.metadata["run_id"] = "changed"
    with pytest.raises(TypeError):
        loaded.errors["baseline"] = "changed"
    annotated = loaded.annotated({"note": "a"}, {"note": "b"})
    assert annotated.metadata["note"] == "a" and set(annotated.summary["note"]) == {"b"}
    assert "note" not in loaded.metadata and "note" not in loaded.summary  # the original is left as it was


def test_isolated_children_are_aggregated_not_just_the_first():
    from wasmlab.measure.isolate import aggregate_children

    children = [
        {"timer_overhead_ns": 40, "harness_overhead_ns": 60, "crossing_ns": 130,
         "loadavg_1m_before": 0.1, "loadavg_1m_after": 0.2, "other_cpu_cores": 0.0, "run_wall_s": 1.0, "machine_busy": False},
        {"timer_overhead_ns": 50, "harness_overhead_ns": 70, "crossing_ns": 150,
         "loadavg_1m_before": 0.3, "loadavg_1m_after": 0.5, "other_cpu_cores": 0.9, "run_wall_s": 3.0, "machine_busy": True},
        {"timer_overhead_ns": 45, "harness_overhead_ns": 65, "crossing_ns": 140,
         "loadavg_1m_before": 0.5, "loadavg_1m_after": 0.7, "other_cpu_cores": 0.0, "run_wall_s": 1.0, "machine_busy": False},
    ]
    merged = aggregate_children(children)
    assert merged["crossing_ns"] == 140 and merged["timer_overhead_ns"] == 45
    assert (merged["loadavg_1m_before"], merged["loadavg_1m_after"]) == (0.1, 0.7)
    assert merged["machine_busy"] and merged["other_cpu_cores"] == pytest.approx(0.9 * 3 / 5)
    assert merged["children"] == 3 and len(merged["children_calibration"]) == 3
