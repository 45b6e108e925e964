"""``wasmlab concurrency --out``'s folder: the runs and their provenance on disk, read back by ``wasmlab compare``
(threads and pool mode as its parameters, so one thread count is never compared with another), refused by
``wasmlab report`` (a sweep's) in one line."""

from __future__ import annotations

import json

import pytest

from wasmlab.errors import WasmlabError
from wasmlab.experiments.concurrency_load import Load, run_load
from wasmlab.measure.results import FORMAT_VERSION
from wasmlab.measure.scenario import Scenario
from wasmlab.report import compare as comparing
from wasmlab.report.html import build


def test_a_saved_concurrency_run_says_how_it_was_measured_and_compare_reads_it_per_thread_count(tmp_path):
    scenario = Scenario(requests=200, warmup=5, repeats=2, variants=("pooled+cached",))
    served = run_load(scenario, Load(threads=(1, 2), call_paths=("native",)))
    folder = served.save(tmp_path / "run")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION and "partial" not in metadata
    assert (metadata["runs_finished"], metadata["runs_planned"]) == (4, 4)
    assert metadata["repeats"] == 2 and metadata["warmup"] == 5 and metadata["requests"] == 200
    assert metadata["wasmtime_version"] and metadata["cpu_model"] and "loadavg_1m_before" in metadata and "wall of the" in metadata["method"]

    table = comparing.load_table(folder)
    assert len(table) == 4 and sorted(table["param_threads"]) == [1, 1, 2, 2] and "param_offered_rps" not in table
    assert json.loads(table["parameters_json"].iloc[0])["threads"] == [1, 2]
    compared = comparing.compare(table, table)
    assert sorted(compared["param_threads"]) == [1, 2] and (compared["repetitions_A"] == 2).all()
    assert (compared["ratio_B_over_A"] == 1).all()

    with pytest.raises(WasmlabError, match="is not a finished sweep folder"):
        build(folder)
