"""`wasmlab compare` matches per call path and per sweep point, never pooling points silently.

Sweep folders are written as ``wasmlab sweep`` collects them (``write_parquet`` of ``results.parquet``, the point's
parameters as ``param_*`` columns), run folders by ``save_measurement``; every true ratio is known."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from wasmlab.cli import main
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.results import save_measurement, write_parquet
from wasmlab.report import compare

NOISE = (1.0, 1.08, 0.95, 1.03, 0.97)


def _rows(variants, parameters, factor=1.0, noise=NOISE):
    """``variants``: name -> (call_path column value or None, µs); each repetition's mean is µs * factor * noise."""
    return [{"workload": "seed", "variant": name, "call_path": path, "repetition": rep, "status": "ok",
             "latency_us_mean": base * factor * scatter, "parameters_json": json.dumps(parameters, sort_keys=True)}
            for rep, scatter in enumerate(noise) for name, (path, base) in variants.items()]


LEAN = {"baseline": ("lean", 400.0), "pooled+cached": ("lean", 4.0)}


def saved_run(folder, variants=LEAN, parameters=None, factor=1.0, noise=NOISE):
    parameters = {"requests": 1000, "slots": None, "engine_config": {"pool": {"slots": 20}}} if parameters is None else parameters
    frame = pd.DataFrame(_rows(variants, parameters, factor, noise))
    return save_measurement(Measurement(frame, pd.DataFrame(), pd.DataFrame(), {"run_id": folder.name}), folder)


def saved_sweep(folder, factors=None, grid=(4, 20), noise=NOISE):
    """A sweep over ``slots`` (the spec's grid), ``requests`` fixed; point ``slots=s`` is ``factors[s]`` times slower."""
    rows = []
    for slots in grid:
        resolved = {"requests": 1000, "slots": slots, "engine_config": {"pool": {"slots": slots}}}
        for row in _rows(LEAN, resolved, (factors or {}).get(slots, 1.0) * slots / 4, noise):
            rows.append({"point_id": f"slots={slots}-x", "replicate": 0, "param_requests": 1000, "param_slots": slots, **row})
    folder.mkdir()
    write_parquet(pd.DataFrame(rows), folder / "results.parquet")
    return folder


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def test_native_rows_are_kept_and_matched_with_native(tmp_path):
    """A run on the native path by default names its variant ``pooled+cached`` (call_path native); another pins it
    (``pooled+cached@native``, call_path missing): the same composition on the same path, one row, never dropped."""
    a = saved_run(tmp_path / "a", {"pooled+cached": ("native", 2.0), "baseline": ("lean", 400.0)})
    b = saved_run(tmp_path / "b", {"pooled+cached@native": (None, 2.0), "pooled+cached": ("lean", 4.0), "baseline": ("lean", 400.0)},
                  factor=2.0, noise=tuple(reversed(NOISE)))
    table = compare.compare(compare.load_table(a), compare.load_table(b))
    assert compare.comparison(a, b).only_in_b == ("pooled+cached on lean",)  # B's lean row has no counterpart in A
    assert sorted(zip(table["variant"], table["call_path"])) == [("baseline", "lean"), ("pooled+cached", "native")]
    assert table.set_index("call_path").loc["native", "ratio_B_over_A"] == pytest.approx(2.0)
    doc = json.loads(invoke(a, b, "--format", "json", "--fail-above", "1.5").output)
    assert doc["only_in_A"] == [] and doc["only_in_B"] == ["pooled+cached on lean"]
    assert {(r["variant"], r["call_path"], r["gate"][:4]) for r in doc["rows"]} == {("baseline", "lean", "FAIL"), ("pooled+cached", "native", "FAIL")}


def test_two_sweeps_are_matched_point_by_point_not_pooled(tmp_path):
    a = saved_sweep(tmp_path / "a")
    b = saved_sweep(tmp_path / "b", factors={20: 2.0}, noise=tuple(reversed(NOISE)))
    done = invoke(a, b, "--fail-above", "1.2", "--format", "json")
    assert done.exit_code == 1, done.output
    rows = json.loads(done.output)["rows"]
    assert len(rows) == 4  # 2 points x 2 variants
    by_point = {(r["point"]["slots"], r["variant"]): r for r in rows}
    assert all(r["point"]["requests"] == 1000 for r in rows)
    for variant in LEAN:
        assert by_point[(4, variant)]["ratio_B_over_A"] == pytest.approx(1.0) and by_point[(4, variant)]["gate"] == "pass"
        assert by_point[(20, variant)]["ratio_B_over_A"] == pytest.approx(2.0) and by_point[(20, variant)]["gate"].startswith("FAIL")


@pytest.mark.parametrize("sweep_first", [True, False])
def test_a_sweep_against_a_run_matches_the_point_of_the_run_s_parameters(tmp_path, sweep_first):
    """The run left ``slots`` unset and its pool resolved to 20: the slots=20 point (5x the slots=4 point's latency
    here), compared at ratio 1, where pooling both points would give neither."""
    sweep, run = saved_sweep(tmp_path / "sweep"), saved_run(tmp_path / "run", factor=5.0)
    a, b = (sweep, run) if sweep_first else (run, sweep)
    done = invoke(a, b, "--fail-above", "1.01", "--fail-below", "0.99")
    assert done.exit_code == 0, done.output
    assert f"Matched: sweep point slots=20-x matched '{run}' by its parameters" in done.output.splitlines()
    doc = json.loads(invoke(a, b, "--format", "json").output)
    assert doc["matched"] == f"sweep point slots=20-x matched '{run}' by its parameters"
    assert [row["point"] for row in doc["rows"]] == [{"requests": 1000, "slots": 20}] * 2
    table = compare.comparison(a, b).table
    assert list(table["param_slots"]) == [20, 20] and table["ratio_B_over_A"].to_numpy() == pytest.approx([1.0, 1.0])


def test_a_run_matching_no_point_is_refused_naming_the_points(tmp_path):
    sweep = saved_sweep(tmp_path / "sweep")
    run = saved_run(tmp_path / "run", parameters={"requests": 1000, "slots": 8, "engine_config": {"pool": {"slots": 8}}})
    done = invoke(sweep, run, "--fail-above", "1.2")
    assert done.exit_code == 2 and len(done.output.splitlines()) == 1
    assert done.output == (f"wasmlab: error: '{sweep}' is a sweep and none of its 2 points has the parameters of '{run}' (points: slots=20-x, "
                           "slots=4-x); allowed: a run measured with one point's parameters, or a sweep of the same grid\n")


def test_a_run_matching_several_points_is_refused_naming_them(tmp_path):
    sweep, run = saved_sweep(tmp_path / "sweep"), saved_run(tmp_path / "run", parameters={"requests": 1000})
    done = invoke(run, sweep)
    assert done.exit_code == 2 and len(done.output.splitlines()) == 1
    assert "2 of its 2 points match the parameters of" in done.output and "(points: slots=20-x, slots=4-x)" in done.output


def test_sweeps_of_different_parameters_are_refused(tmp_path):
    a = saved_sweep(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    table = pd.read_parquet(a / "results.parquet").rename(columns={"param_slots": "param_cache_size"})
    write_parquet(table, b / "results.parquet")
    done = invoke(a, b)
    assert done.exit_code == 2 and "are sweeps of different parameters (param_cache_size, param_slots only on one side)" in done.output


def test_a_table_without_call_path_or_workload_columns_matches_by_the_variant_s_name(tmp_path):
    """Tables written before the lab recorded ``call_path`` (or a workload): the path is the name's ``@path``."""
    a = saved_run(tmp_path / "a", {"baseline": ("lean", 400.0), "baseline@api": ("api", 450.0)})
    b = tmp_path / "b"
    old = pd.read_parquet(a / "summary.parquet").drop(columns=["call_path", "workload"])
    old["latency_us_mean"] *= 3
    save_measurement(Measurement(old, pd.DataFrame(), pd.DataFrame(), {"run_id": "b"}), b)
    table = compare.comparison(a, b).table
    assert sorted(zip(table["variant"], table["call_path"])) == [("baseline", ""), ("baseline@api", "api")]
    assert table["ratio_B_over_A"].to_numpy() == pytest.approx([3.0, 3.0])
