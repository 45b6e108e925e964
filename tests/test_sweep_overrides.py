"""``wasmlab sweep --set KEY=VALUE``: a spec rerun with a parameter changed, without editing it."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from wasmlab.sweep_spec import apply_overrides, load_specs

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "notebooks" / "sweeps" / "seed.yaml"


def test_a_list_replaces_a_grid_axis_and_a_value_fixes_it_or_a_parameter():
    spec = load_specs(SEED, overrides={"slots": [2, 3], "requests": 50})[0]
    assert spec.grid["slots"] == [2, 3] and spec.parameters["requests"] == 50 and len(spec.points()) == 4
    fixed = load_specs(SEED, overrides={"cache_size": 4})[0]
    assert "cache_size" not in fixed.grid and fixed.parameters["cache_size"] == 4 and len(fixed.points()) == 2
    one = load_specs(SEED, overrides={"cache_size": 4, "slots": 8})[0]
    assert len(one.points()) == 1 and one.points()[0].parameters["slots"] == 8
    # The file is not touched: without overrides the spec is as written.
    assert load_specs(SEED)[0].grid == {"slots": [4, 20], "cache_size": [1, 16]}


def test_overrides_leave_the_document_they_were_given_unchanged():
    document = {"name": "x", "grid": {"slots": [1, 2]}, "parameters": {"requests": 9}}
    changed = apply_overrides(document, {"slots": 3})
    assert document == {"name": "x", "grid": {"slots": [1, 2]}, "parameters": {"requests": 9}}
    assert changed["parameters"] == {"requests": 9, "slots": 3} and "grid" not in changed


def wasmlab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize("setting, says", [("requests", "is not KEY=VALUE"), ("bogus=1", "the notebook has no parameter 'bogus'"),
                                           ("requests=[1", "is not a YAML value")])
def test_a_bad_setting_is_one_line_and_exit_2(setting, says):
    done = wasmlab("sweep", str(SEED), "--dry-run", "--set", setting)
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.notebook
def test_a_real_sweep_runs_with_the_overridden_values(tmp_path):
    out = tmp_path / "seed"
    done = wasmlab("sweep", str(SEED), "--out", str(out), "--set", "slots=4", "--set", "cache_size=16", "--set", "requests=30",
                   "--set", "repeats=1", "--set", "warmup=5", "--set", "call_path=lean")
    assert done.returncode == 0, done.stdout + done.stderr
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["requests"]) == {30} and set(results["param_slots"]) == {4}
    spec = json.loads((out / "manifest.json").read_text())["spec"]  # the spec as it ran, overrides applied
    assert spec["parameters"]["requests"] == 30 and spec["grid"] == {}
