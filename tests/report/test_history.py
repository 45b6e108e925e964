"""``wasmlab history`` on runs of known truth (written here with the lab's own results writers), then on real runs."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from wasmlab.measure.results import FORMAT_VERSION, write_metadata, write_parquet
from wasmlab.report import history


def save_run(root, run_id, means, commit="aaaa", host="lab-a", variant="pooled+cached", call_path="native", stamp=None):
    """A run folder whose ``variant`` has these per-repetition mean latencies."""
    folder = root / run_id
    rows = [{"workload": "seed", "variant": variant if call_path == "lean" else f"{variant}@{call_path}", "call_path": call_path,
             "repetition": i, "latency_us_mean": m, "latency_us_p50": m, "latency_us_p99": 2 * m, "status": "ok"}
            for i, m in enumerate(means)]
    write_parquet(pd.DataFrame(rows), folder / "summary.parquet")
    write_metadata({"format_version": FORMAT_VERSION, "run_id": run_id, "timestamp": stamp or f"2026-12-0{run_id[-1]}T00:00:00+00:00",
                    "hostname": host, "cpu_model": "AMD EPYC", "cpu_count": 2, "git_commit": commit, "wasmtime_version": "50.0.1",
                    "python_version": "3.11.7", "platform": "Linux", "repeats": len(means), "machine_busy": False}, folder)
    return folder


def noisy(center, n=5, seed=0, spread=0.02):
    return list(center * np.exp(np.random.default_rng(seed).normal(0, spread, n)))


@pytest.fixture
def runs(tmp_path):
    save_run(tmp_path, "run-1", noisy(2.5, seed=1), commit="c1")
    save_run(tmp_path, "run-2", noisy(2.5, seed=2), commit="c2")        # the same figure, new noise
    save_run(tmp_path, "run-3", noisy(3.75, seed=3), commit="c3")       # 1.5x slower: a regression
    save_run(tmp_path, "run-4", noisy(9.0, seed=4), commit="c4", host="lab-b")  # another machine: never compared
    return tmp_path


def test_a_planted_slowdown_is_flagged_and_the_same_figure_with_new_noise_is_not(runs):
    found = history.index([runs])
    table, machine, others = history.series(found, history.Selection("seed", "pooled+cached", "native"), machine=None)
    # The latest run holding the figure is lab-b's, alone on its machine: ask for lab-a's.
    assert machine.startswith("lab-b") and len(table) == 1 and others == 3
    table, machine, others = history.series(found, history.Selection("seed", "pooled+cached@native"), "lab-a / AMD EPYC / 2 cores")
    assert list(table["run"]) == ["run-1", "run-2", "run-3"] and others == 1
    assert list(table["changed"]) == ["", "", "slower"]
    assert table["ratio_to_previous"].iloc[2] == pytest.approx(1.5, rel=0.05)
    assert table["ci95_low"].iloc[0] < 2.5 < table["ci95_high"].iloc[0]


def test_a_figure_no_run_holds_and_a_machine_with_none_are_one_line(runs):
    from wasmlab.errors import ConfigError

    found = history.index([runs])
    with pytest.raises(ConfigError, match="no saved run holds 'baseline'"):
        history.series(found, history.Selection("seed", "baseline", "native"))
    with pytest.raises(ConfigError, match="holds no run of this figure; allowed: lab-a"):
        history.series(found, history.Selection("seed", "pooled+cached", "native"), "nowhere")


def wasmlab(*args):
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, timeout=300)


def test_the_command_lists_follows_plots_and_gates_on_the_latest_change(runs, tmp_path):
    listed = wasmlab("history", str(runs))
    assert listed.returncode == 0 and "lab-a / AMD EPYC / 2 cores: 3 run(s)" in listed.stdout and "lab-b" in listed.stdout
    plot = tmp_path / "history.png"
    done = wasmlab("history", str(runs), "--workload", "seed", "--variant", "pooled+cached@native", "--machine",
                   "lab-a / AMD EPYC / 2 cores", "--plot", str(plot), "--fail-on-change")
    assert done.returncode == 1, done.stderr  # run-3 is slower than run-2
    assert "CHANGED (slower)" in done.stdout and plot.stat().st_size > 10_000
    as_json = wasmlab("history", str(runs), "--workload", "seed", "--variant", "pooled+cached@native", "--machine",
                      "lab-a / AMD EPYC / 2 cores", "--format", "json")
    data = json.loads(as_json.stdout)
    assert data["format_version"] == 1 and [r["changed"] for r in data["runs"]] == ["", "", "slower"]
    bad = wasmlab("history", str(runs), "--variant", "pooled+cached")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--variant needs --workload" in bad.stderr


def test_two_real_runs_of_the_same_figure_are_indexed_and_followed(tmp_path):
    for name in ("one", "two"):
        done = wasmlab("reproduce", "--workload", "seed", "--variants", "pooled+cached", "--requests", "200", "--repeats", "3",
                       "--warmup", "20", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    done = wasmlab("history", str(tmp_path), "--workload", "seed", "--variant", "pooled+cached@native", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["runs"]) == 2 and all(r["repetitions"] == 3 and r["ci95_low"] <= r["figure_us"] <= r["ci95_high"] for r in data["runs"])
