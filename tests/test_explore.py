import pytest

from wasmlab.explore import Explorer, comparison_table


def small_explorer() -> Explorer:
    explorer = Explorer(requests=30, repeats=1, warmup=5)
    explorer.slots.value = 4
    explorer.widget()
    return explorer


def test_runs_accumulate_and_each_has_a_speedup_from_its_own_baseline():
    explorer = small_explorer()
    assert explorer.run() is not None
    explorer.variant.value = "cached"
    explorer.call_path.value = "api"
    assert explorer.run() is not None
    assert len(explorer.runs) == 2
    assert "pooled+cached" in explorer.table.value and "cached" in explorer.table.value
    # Whole cells, not substrings: each run's own baseline is its reference.
    assert explorer.table.value.count("<td>1x (reference)</td>") == 2
    table = comparison_table(explorer.runs)
    assert list(table.loc[table["variant"] == "baseline", "speedup"]) == [1.0, 1.0]
    assert explorer.figure.outputs and explorer.figure.outputs[0]["data"]["image/png"]
    # Every run listed is described, not only the latest.
    assert explorer.metadata.value.count("wasmtime 50.") == 2
    assert all(label in explorer.metadata.value for label, _ in explorer.runs)


def test_speedups_show_their_interval_over_repetitions():
    import re

    explorer = Explorer(requests=30, repeats=3, warmup=5)
    explorer.slots.value = 4
    explorer.widget()
    assert explorer.run() is not None
    row = comparison_table(explorer.runs).set_index("variant").loc["pooled+cached"]
    assert row["speedup_ci_low"] <= row["speedup"] <= row["speedup_ci_high"]
    assert re.search(r"<td>[\d.]+x \([\d.]+-[\d.]+\)</td>", explorer.table.value), explorer.table.value


def test_a_bad_knob_shows_one_line_and_keeps_what_was_measured():
    explorer = small_explorer()
    explorer.run()
    table_before = explorer.table.value
    explorer.slots.value = -3
    assert explorer.run() is None
    assert "wasmlab: error: pool.slots = -3 is out of range" in explorer.error.value
    assert explorer.table.value == table_before and len(explorer.runs) == 1
    explorer.slots.value = 4
    explorer.max_memory_size.value = "lots"
    explorer.run()
    assert "max memory size &#x27;lots&#x27; is not a size" in explorer.error.value


def test_a_module_too_big_for_the_pool_is_reported_not_raised():
    explorer = small_explorer()
    explorer.workload.value = "data-heavy:kib=256"
    explorer.max_memory_size.value = "64KiB"
    explorer.run()
    assert "does not fit in pooling allocator" in explorer.error.value


def test_clear_empties_the_comparison():
    explorer = small_explorer()
    explorer.run()
    explorer.clear()
    assert explorer.runs == [] and "No runs yet" in explorer.table.value and not explorer.figure.outputs


@pytest.mark.slow  # the advisor's measured search
def test_the_advisor_form_shows_a_measured_recommendation_and_its_front():
    from wasmlab.explore import AdvisorForm

    form = AdvisorForm(workloads="seed", concurrency=2, p99_us=500.0, address_space="8GiB", budget_s=3.0)
    form.widget()
    advice = form.advise()
    assert advice is not None and advice.feasible and form.error.value == ""
    assert "Recommended: " in form.result.value and "wasmlab flags" in form.result.value and "Why each setting" in form.result.value
    assert form.figure.outputs and form.figure.outputs[0]["data"]["image/png"]
    assert form.progress.value == "idle" and not form.advise_button.disabled


def test_the_advisor_form_reports_a_bad_field_and_an_unmeetable_budget_in_one_line():
    from wasmlab.explore import AdvisorForm

    form = AdvisorForm(workloads="seed", concurrency=2, p99_us=20.0, address_space="lots", budget_s=1.0)
    assert form.advise() is None and "--address-space &#x27;lots&#x27; is not a size" in form.error.value
    form.address_space.value = "16KiB"
    assert form.advise() is None and "address space 16 KiB is below what 2 concurrent request(s) reserve" in form.error.value


def test_a_recipe_is_a_workload_of_the_explorer(tmp_path):
    from pathlib import Path

    explorer = small_explorer()
    explorer.workload.value = str(Path(__file__).resolve().parents[1] / "data" / "recipes" / "middleware-reject.yaml")
    assert explorer.run() is not None and explorer.error.value == ""
    assert "middleware-reject" in explorer.table.value


def test_reuse_is_a_knob_and_the_table_shows_what_reuse_carried_over():
    explorer = small_explorer()
    explorer.workload.value = "fresh"  # keeps state: every reused request shows it
    explorer.reuse.value = 5
    assert explorer.run() is not None
    table = comparison_table(explorer.runs)
    row = table[table["variant"] == "pooled+cached+reuse5"].iloc[0]
    assert row["carried_over"] == "24 of 24"  # 30 requests in instances of 5: 6 fresh, 24 reused
    assert table.loc[table["variant"] == "baseline", "carried_over"].tolist() == [""]
    assert "carried over (reused)" in explorer.table.value
    explorer.reuse.value = 0
    assert explorer.run() is None and "reuse0" in explorer.error.value


def test_the_runtime_axis_runs_side_by_side_in_the_explorer_with_each_run_described():
    """``wasmtime,v8``: every variant on both runtimes in one run, each v8 variant's speedup over baseline@v8, the run's
    label and metadata naming the runtimes; pooled on v8 is left out, not failed."""
    import shutil

    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the v8 runtime runs the machine's Node.js")
    explorer = small_explorer()
    explorer.runtime.value = "wasmtime,v8"
    explorer.variant.value = "cached"
    assert explorer.run() is not None, explorer.error.value
    table = comparison_table(explorer.runs).set_index("variant")
    assert {"baseline", "cached", "baseline@v8", "cached@v8"} <= set(table.index)
    assert table.loc["cached@v8", "over"] == "baseline@v8" and table.loc["baseline@v8", "speedup"] == 1.0
    assert "wasmtime,v8" in explorer.runs[0][0] and "v8 " in explorer.metadata.value
