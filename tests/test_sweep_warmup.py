"""A sweep's warm-up axis (issue 30): ``warmup: auto`` beside a count in a grid, over a Sightglass-shaped recipe (a preopen
at guest ``.``, expected output files), each point's warm-up recorded; ``auto5`` refused before anything runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.host.suite_guests import suite_folder
from tests.test_sweep import TINY, lab, write_spec  # noqa: F401 - lab: the fixture of a notebooks folder with 01 in it
from wasmlab import sweep
from wasmlab.errors import ConfigError

pytestmark = pytest.mark.slow


def test_a_grid_of_warmups_runs_auto_beside_a_count_on_a_suite_recipe(lab):  # noqa: F811
    recipe = suite_folder(lab / "bench")
    # A time budget far above what 20 requests take: every request served, the budget recorded with each point.
    parameters = {**{k: v for k, v in TINY.items() if k != "warmup"}, "workload": str(recipe), "variants": "cached,pooled+cached",
                  "time_budget": 60}
    path = write_spec(lab, f"name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {json.dumps(parameters)}\n"
                           f"grid: {{warmup: [auto, 3]}}\n")
    outcome = sweep.run_sweep(sweep.load_spec(path, lab / "out"), progress=False)
    assert not outcome.failed, outcome.failed
    table = pd.read_parquet(lab / "out" / "results.parquet")
    assert (table["status"] == "ok").all()
    auto = table[table["param_warmup"].astype(str) == "auto"]
    fixed = table[table["param_warmup"].astype(str) == "3"]
    assert len(auto) == len(fixed) == 2
    assert set(auto["warmup_stopped"]) <= {"stable", "max", "budget"} and (auto["warmup_requests"] >= 1).all()
    assert set(fixed["warmup_stopped"]) == {"count"} and set(fixed["warmup_requests"]) == {3}
    assert set(table["time_budget_s"]) == {60.0} and set(table["requests_asked"]) == set(table["requests"]) == {TINY["requests"]}


def test_a_warmup_that_is_neither_a_count_nor_auto_is_refused_before_the_sweep_runs(lab):  # noqa: F811
    path = write_spec(lab, "name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {warmup: [auto, auto5]}\n")
    with pytest.raises(ConfigError, match="warmup = 'auto5' is not a warm-up; allowed: an integer >= 0"):
        sweep.load_specs(path)
