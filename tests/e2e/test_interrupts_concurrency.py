"""Ctrl-C (SIGINT) and SIGTERM during ``wasmlab concurrency`` keep the configuration runs that finished: one line, exit
status 130, with ``--out`` a folder marked partial that ``wasmlab compare`` reads; without it, their table printed
first; with none finished, nothing written.

As in test_interrupts.py, the real command runs with its stderr on a pseudo-terminal, and the signal is sent once its
progress bar shows the first configuration run finished (no blind sleep)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.e2e.terminal import interrupted, last_line, shows
from wasmlab.cli import main

# Four runs of ~0.4 s to seconds each on a busy machine: the signal lands in a later run than the first.
CONCURRENCY = ["concurrency", "--threads", "1", "--call-path", "native", "--repeats", "4", "--warmup", "10"]


def _interrupted_after(arguments: list[str], cwd: Path, shown_first: bytes, sent: signal.Signals) -> tuple[int, bytes, bytes]:
    """Run the command, send ``sent`` once the terminal shows ``shown_first``; its status, stdout and terminal."""
    ended = interrupted(arguments, cwd, sent, shows(shown_first))
    return ended.status, ended.out, ended.shown


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_concurrency_run_keeps_its_finished_configuration_runs_marked_partial(tmp_path, monkeypatch, sent):
    status, out, shown = _interrupted_after([*CONCURRENCY, "--requests", "200000", "--out", "run"], tmp_path, b"| 1/4 [", sent)
    line = last_line(shown)
    assert status == 130, (status, shown[-800:])
    assert line.startswith(f"wasmlab: interrupted ({sent.name}) after ") and line.endswith(" of 4 configuration runs; kept in run/ (marked partial)"), line
    assert b"Traceback" not in shown and out == b""
    done = int(line.split(" after ")[1].split(" of ")[0])
    assert 1 <= done < 4
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["partial"] is True and metadata["interrupted_by"] == sent.name and metadata["format_version"] == 1
    assert (metadata["runs_finished"], metadata["runs_planned"]) == (done, 4)
    runs = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    # Every kept run is whole: all its requests served and timed; the run under way is not kept.
    assert len(runs) == done and (runs["served_requests"] == 200000).all() and runs["repetition"].tolist() == list(range(done))
    # In this process (a child's imports cost seconds and prove nothing more here).
    monkeypatch.chdir(tmp_path)
    compared = CliRunner().invoke(main, ["compare", "run", "run"])
    assert compared.exit_code == 0, compared.output
    assert f"(partial: interrupted after {done} of 4 configuration runs)" in compared.stdout.splitlines()[0]
    assert "native" in compared.stdout and "param_threads" in compared.stdout


def test_with_no_save_an_interrupted_concurrency_run_prints_its_finished_runs_table_first(tmp_path):
    status, out, shown = _interrupted_after([*CONCURRENCY, "--requests", "200000", "--no-save"], tmp_path, b"| 1/4 [", signal.SIGINT)
    line = last_line(shown)
    assert status == 130, (status, shown[-800:])
    assert line.startswith("wasmlab: interrupted (SIGINT) after ") and line.endswith(
        " of 4 configuration runs; not saved (their table is above; without --no-save they are kept)"), line
    table = out.decode()
    assert table.splitlines()[1].split()[:3] == ["native", "pooled+cached", "1"], table
    assert "\nPartial: interrupted (SIGINT) after " in table and b"Traceback" not in shown
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_before_the_first_configuration_run_ends_writes_nothing(tmp_path):
    # A run far longer than it takes to see the bar start: the signal lands inside the first.
    status, out, shown = _interrupted_after([*CONCURRENCY, "--requests", "1000000", "--out", "run"], tmp_path, b"| 0/4 [", signal.SIGINT)
    assert status == 130, shown[-800:]
    # A signal that lands while the bar is being drawn leaves the bar on the line, ahead of the command's own line.
    assert last_line(shown).endswith("wasmlab: interrupted (SIGINT) before the first of 4 configuration runs finished; nothing to keep")
    assert out == b"" and not (tmp_path / "run").exists()
