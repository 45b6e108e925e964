"""`wasmlab compare RUN@A RUN@B`: two wasmtime releases of one run across releases, compared like two runs."""

from __future__ import annotations

import pandas as pd
import pytest

from wasmlab.errors import WasmlabError
from wasmlab.measure.results import write_metadata
from wasmlab.report import compare


def run_across_releases(folder):
    """Known truth: release 50 is exactly twice as slow as 40 for pooled+cached, and as fast for baseline."""
    rows = []
    for rep, noise in enumerate((1.0, 1.1, 0.9)):
        for release, factor in (("40.0.0", 1.0), ("50.0.1", 2.0)):
            rows.append({"release": release, "variant": "pooled+cached", "workload": "seed", "repetition": rep, "status": "ok",
                         "latency_us_mean": 3.0 * factor * noise})
            rows.append({"release": release, "variant": "baseline", "workload": "seed", "repetition": rep, "status": "ok",
                         "latency_us_mean": 400.0 * noise})
    rows.append({"release": "30.0.0", "variant": "pooled+cached", "workload": "seed", "repetition": 0, "status": "unsupported",
                 "latency_us_mean": float("nan")})
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "summary.parquet")
    write_metadata({"run_id": "r"}, folder)
    return folder


def test_two_releases_of_one_run_compare_like_two_runs(tmp_path):
    folder = run_across_releases(tmp_path / "run")
    table = compare.compare(compare.load_table(f"{folder}@40"), compare.load_table(f"{folder}@50.0.1"))
    ratios = table.set_index("variant")["ratio_B_over_A"]
    assert ratios["pooled+cached"] == pytest.approx(2.0) and ratios["baseline"] == pytest.approx(1.0)
    assert table.set_index("variant").loc["pooled+cached", "verdict"] == "slower"
    text = compare.render(f"{folder}@40", f"{folder}@50")
    assert "wasmtime_version" in text and "50.0.1" in text


def test_a_release_not_in_the_run_is_one_line(tmp_path):
    folder = run_across_releases(tmp_path / "run")
    with pytest.raises(WasmlabError, match=r"release '45' is not in .*; allowed: 40.0.0, 50.0.1"):  # 30 served nothing to compare
        compare.load_table(f"{folder}@45")


def test_a_partial_run_across_releases_is_saved_and_compared_as_partial(tmp_path):
    """Known truth, as above, but interrupted in the third repetition after 40's child: 40 finished 3 repetitions, 50 two.
    The folder ``releases run --out`` writes on an interrupt reads back in compare, which says each side is partial."""
    from wasmlab.experiments.releases import assembled
    from wasmlab.measure.release_run import interrupted

    rows = []
    for rep, noise in enumerate((1.0, 1.1, 0.9)):
        for release, factor in (("40.0.0", 1.0), ("50.0.1", 2.0)):
            if (rep, release) == (2, "50.0.1"):
                break  # the child under way when the signal came
            for variant, latency in (("pooled+cached", 3.0 * factor), ("baseline", 400.0)):
                rows.append({"release": release, "library_sha256": "ab" * 32, "variant": variant, "workload": "seed",
                             "kind": "request", "repetition": rep, "status": "ok", "latency_us_mean": latency * noise,
                             "latency_us_p50": latency, "latency_us_p99": latency, "compile_us_per_miss": 1.0,
                             "minor_faults_per_request": 0.0, "vmsize_mib_reserved_by_engine": 0.0})
    stop = interrupted("SIGTERM", rows, {"run_id": "r", "repeats": 3}, done=5, planned=6)
    assert (stop.done, stop.planned, stop.signal_name) == (5, 6, "SIGTERM")
    table, metadata = stop.partial
    assert metadata["partial"] and metadata["children_done"] == 5 and metadata["repeats_planned"] == 3
    folder = assembled(table, metadata).save(tmp_path / "run")
    text = compare.render(f"{folder}@40", f"{folder}@50")
    assert text.splitlines()[0] == f"A: {folder}@40  (partial: interrupted after 3 of 3 repetitions)"
    assert text.splitlines()[1] == f"B: {folder}@50  (partial: interrupted after 2 of 3 repetitions)"
    ratios = compare.compare(compare.load_table(f"{folder}@40"), compare.load_table(f"{folder}@50")).set_index("variant")
    assert ratios.loc["baseline", "repetitions_A"] == 3 and ratios.loc["baseline", "repetitions_B"] == 2
    assert ratios.loc["pooled+cached", "ratio_B_over_A"] == pytest.approx(2.0 * (1.0 * 1.1) ** 0.5 / (1.0 * 1.1 * 0.9) ** (1 / 3))


def test_an_interrupt_before_any_child_finished_keeps_nothing():
    from wasmlab.measure.release_run import interrupted

    stop = interrupted("SIGINT", [], {"repeats": 3}, done=0, planned=6)
    assert stop.partial is None
    assert str(stop) == "interrupted (SIGINT) before the first of 6 children (one per release and repetition) finished; nothing to keep"
