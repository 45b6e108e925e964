"""What ``advise --out`` keeps: the trials as a table and the provenance, marked partial on an interrupt; ``compare``
and ``report`` refuse the folder in one line naming what they read."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from wasmlab.cli import main
from wasmlab.experiments.advisor.goal import Effort, Goal
from wasmlab.experiments.advisor.record import ADVICE, TRIALS, TrialLog
from wasmlab.measure import metadata as md

ROWS = [{"stage": "screen", "allocator": "pooling", "slots": 2, "warm_slots": "default", "latency_us_p50": 2.0, "latency_us_p99": 4.5,
         "throughput_rps": 1e5, "rss_bytes": 300_000, "outcome": "ok", "repetition": None},
        {"stage": "confirm", "allocator": "on-demand", "slots": 0, "warm_slots": "0", "latency_us_p50": 60.0, "latency_us_p99": 80.0,
         "throughput_rps": 3e4, "rss_bytes": 200_000, "outcome": "ok", "repetition": 0}]


def log() -> TrialLog:
    return TrialLog(Goal(("seed",), 2, 20.0), Effort(budget_s=5), {**md.new_run(), **md.machine()}, [dict(r) for r in ROWS], "confirm")


def test_an_interrupted_run_keeps_every_trial_and_says_where_it_stopped(tmp_path):
    folder = log().save(tmp_path / "out", interrupted_by="SIGTERM")
    table = pd.read_parquet(folder / TRIALS)
    assert table["stage"].tolist() == ["screen", "confirm"] and table["latency_us_p99"].tolist() == [4.5, 80.0]
    meta = json.loads((folder / "metadata.json").read_text())
    assert (meta["partial"], meta["interrupted_by"], meta["stage"], meta["trials"]) == (True, "SIGTERM", "confirm", 2)
    assert meta["goal"]["p99_us"] == 20.0 and meta["effort"]["budget_s"] == 5 and meta["wasmtime_version"] and meta["git_commit"]
    assert not (folder / ADVICE).exists() and not list(folder.glob(".*.tmp"))


def test_a_finished_run_is_not_partial_and_keeps_the_answer(tmp_path):
    folder = log().save(tmp_path / "out", advice={"feasible": True})
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["partial"] is False and "interrupted_by" not in meta and "stage" not in meta
    assert json.loads((folder / ADVICE).read_text()) == {"feasible": True}


@pytest.mark.parametrize("command, allowed", [
    (["compare", "{out}", "{out}"], "allowed: a .parquet file, or a folder with results.parquet or summary.parquet"),
    (["compare", "{out}/trials.parquet", "{out}/trials.parquet"], "allowed: a table from wasmlab reproduce or a sweep of 01/05"),
    (["report", "{out}"], "it needs results.parquet and manifest.json"),
])
def test_compare_and_report_refuse_an_advise_folder_in_one_line(tmp_path, command, allowed):
    out = log().save(tmp_path / "out", interrupted_by="SIGINT")
    done = CliRunner().invoke(main, [part.format(out=out) for part in command])
    assert done.exit_code == 2 and allowed in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
