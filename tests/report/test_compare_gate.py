"""`wasmlab compare --fail-above / --fail-below`: a regression gate for CI, on saved runs of known truth.

The run folders are written by the lab's own writer (``save_measurement``), as ``wasmlab reproduce --out`` writes them;
the per-repetition means are chosen, so the true B/A ratio of every row is known."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from wasmlab.cli import main
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.results import save_measurement
from wasmlab.report import compare
from wasmlab.report.gate import UNDECIDED, Gate

NOISE = (1.0, 1.08, 0.95, 1.03, 0.97)  # per-repetition scatter, the same in A and B's ratios' denominators
VARIANTS = {"baseline": 400.0, "pooled+cached": 4.0, "pooled+cached@native": 2.0}


def saved_run(folder, factors=None, noise=NOISE, parameters=None):
    """A run folder whose variant ``v``'s repetition ``i`` took ``VARIANTS[v] * factors.get(v, 1) * noise[i]`` µs."""
    factors = factors or {}
    parameters = parameters or {"slots": 4, "requests": 1000}
    rows = [{"workload": "seed", "variant": variant, "call_path": variant.partition("@")[2] or "lean", "repetition": rep,
             "status": "ok", "latency_us_mean": base * factors.get(variant, 1.0) * scatter,
             "parameters_json": json.dumps(parameters, sort_keys=True)}
            for rep, scatter in enumerate(noise) for variant, base in VARIANTS.items()]
    return save_measurement(Measurement(pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), {"run_id": folder.name}), folder)


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def test_a_run_twice_as_slow_fails_the_gate_with_exit_1(tmp_path):
    a = saved_run(tmp_path / "a")
    b = saved_run(tmp_path / "b", factors={"pooled+cached": 2.0}, noise=tuple(reversed(NOISE)))
    done = invoke(a, b, "--fail-above", "1.2")
    assert done.exit_code == 1, done.output
    rows = {line.split()[1]: line for line in done.output.splitlines() if line.strip().startswith("seed")}
    assert "FAIL: CI low" in rows["pooled+cached"] and rows["baseline"].endswith("pass")
    assert done.output.splitlines()[-1] == "Gate --fail-above 1.2: FAILED, 1 of 3 rows outside the threshold (exit 1)"
    # Known truth, from the same statistics as compare: the ratio is 2 and its interval excludes 1.2.
    table = compare.compare(compare.load_table(a), compare.load_table(b), Gate(fail_above=1.2)).set_index("variant")
    assert table.loc["pooled+cached", "ratio_B_over_A"] == pytest.approx(2.0)
    assert table.loc["pooled+cached", "ci95_low"] > 1.2


def test_an_identical_run_passes_with_exit_0(tmp_path):
    a = saved_run(tmp_path / "a")
    done = invoke(a, a, "--fail-above", "1.01", "--fail-below", "0.99")
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == "Gate --fail-above 1.01 --fail-below 0.99: passed, 3 of 3 rows within the threshold"


def test_a_slowdown_within_noise_passes(tmp_path):
    """B is 10% slower but its interval reaches below 1.2: within noise of the threshold, not a failure."""
    a = saved_run(tmp_path / "a")
    b = saved_run(tmp_path / "b", factors={v: 1.1 for v in VARIANTS}, noise=(1.3, 0.8, 1.0, 1.2, 0.85))
    table = compare.compare(compare.load_table(a), compare.load_table(b), Gate(fail_above=1.2)).set_index("variant")
    assert (table["ci95_low"] < 1.2).all() and (table["ci95_high"] > 1.2).all()
    assert invoke(a, b, "--fail-above", "1.2").exit_code == 0


def test_fail_below_gates_a_speedup_that_went_too_far(tmp_path):
    a = saved_run(tmp_path / "a")
    b = saved_run(tmp_path / "b", factors={"baseline": 0.5}, noise=tuple(reversed(NOISE)))
    done = invoke(a, b, "--fail-below", "0.8")
    assert done.exit_code == 1, done.output
    assert "FAIL: CI high" in next(line for line in done.output.splitlines() if " baseline " in line)
    assert invoke(a, b, "--fail-above", "1.2").exit_code == 0  # a speedup is no slowdown


def test_without_a_threshold_a_regression_still_exits_0_and_prints_no_gate(tmp_path):
    a = saved_run(tmp_path / "a")
    b = saved_run(tmp_path / "b", factors={"pooled+cached": 2.0})
    done = invoke(a, b)
    assert done.exit_code == 0 and "Gate" not in done.output and " gate" not in done.output


def test_one_repetition_is_undecided_and_said_so(tmp_path):
    a = saved_run(tmp_path / "a", noise=(1.0,))
    b = saved_run(tmp_path / "b", factors={"pooled+cached": 2.0}, noise=(1.0,))
    done = invoke(a, b, "--fail-above", "1.2")
    assert done.exit_code == 0, done.output
    assert done.output.count(UNDECIDED) == 3
    assert done.output.splitlines()[-1] == "Gate --fail-above 1.2: passed, 0 of 3 rows within the threshold; 3 undecided (no interval)"


@pytest.mark.parametrize(("value", "line"), [
    ("0", "--fail-above '0' is out of range"), ("-1.5", "--fail-above '-1.5' is out of range"),
    ("nan", "--fail-above 'nan' is out of range"), ("inf", "--fail-above 'inf' is out of range"),
    ("1e999", "--fail-above '1e999' is out of range"), ("fast", "--fail-above 'fast' is not a number"),
])
def test_a_bad_threshold_is_one_line_and_exit_2(tmp_path, value, line):
    a = saved_run(tmp_path / "a")
    done = invoke(a, a, "--fail-above", value)
    assert done.exit_code == 2
    assert done.output == f"wasmlab: error: {line}; allowed: a finite ratio B/A > 0, e.g. 1.2\n"
    assert invoke(a, a, "--fail-below", value).output.startswith(f"wasmlab: error: --fail-below {value!r}")


def test_runs_with_nothing_in_common_exit_2_even_with_a_gate(tmp_path):
    a = saved_run(tmp_path / "a")
    b = tmp_path / "b"
    frame = pd.DataFrame({"workload": ["trap"], "variant": ["pooled"], "call_path": ["lean"], "repetition": [0], "status": ["ok"],
                          "latency_us_mean": [5.0]})
    save_measurement(Measurement(frame, pd.DataFrame(), pd.DataFrame(), {"run_id": "b"}), b)
    done = invoke(a, b, "--fail-above", "1.2")
    assert done.exit_code == 2 and len(done.output.splitlines()) == 1 and "have no (workload, variant, call path" in done.output


def test_json_names_every_matched_row_with_its_ratio_interval_method_and_gate(tmp_path):
    a = saved_run(tmp_path / "a")
    b = saved_run(tmp_path / "b", factors={"pooled+cached": 2.0}, noise=tuple(reversed(NOISE)))
    done = invoke(a, b, "--fail-above", "1.2", "--format", "json")
    assert done.exit_code == 1, done.output
    doc = json.loads(done.output)
    assert doc["format_version"] == 1 and doc["A"]["path"] == str(a) and doc["B"]["path"] == str(b)
    assert doc["gate"] == {"fail_above": 1.2, "fail_below": None, "verdict": "failed"}
    rows = {(row["variant"], row["call_path"]): row for row in doc["rows"]}
    assert set(rows) == {("baseline", "lean"), ("pooled+cached", "lean"), ("pooled+cached@native", "native")}
    slow = rows[("pooled+cached", "lean")]
    assert slow["ratio_B_over_A"] == pytest.approx(2.0) and slow["ci95"][0] > 1.2 and slow["gate"].startswith("FAIL")
    assert slow["A"] == {"latency_us_geomean": pytest.approx(4.0 * compare.geometric_mean(NOISE)), "repetitions": 5}
    assert "Welch-t" in slow["method"] and slow["workload"] == "seed"
    assert rows[("baseline", "lean")]["gate"] == "pass" and rows[("baseline", "lean")]["ratio_B_over_A"] == pytest.approx(1.0)


def test_json_without_an_interval_says_null_not_nan(tmp_path):
    a = saved_run(tmp_path / "a", noise=(1.0,))
    done = invoke(a, a, "--format", "json")
    assert done.exit_code == 0 and "NaN" not in done.output
    doc = json.loads(done.output)
    assert doc["gate"]["verdict"] is None and all(row["ci95"] == [None, None] and row["gate"] is None for row in doc["rows"])
