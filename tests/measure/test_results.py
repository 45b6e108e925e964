"""Run folders carry their format version, and a folder of a format this wasmlab cannot read is refused with one line."""

from __future__ import annotations

import json

import pytest

from wasmlab.errors import WasmlabError
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.results import FORMAT_VERSION, METADATA, load_run, save_measurement


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
