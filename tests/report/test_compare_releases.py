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
