"""Ctrl-C (SIGINT) and SIGTERM keep the advisor's finished trials: one line, exit status 130, ``--out``'s trials and
metadata marked ``partial`` with the signal and the stage under way; without ``--out`` the line says how many trials
were measured and how to keep them.

As in ``test_interrupts.py``, the real command runs with its stderr on a pseudo-terminal, and the signal is sent once
its progress bar shows the trials it must keep (no blind sleep)."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable

import pandas as pd
import pytest

from tests.e2e.terminal import interrupted, read
from wasmlab.experiments.advisor.record import STAGES, TRIALS

GOAL = ["advise", "--workload", "dirty-memory:kib=64", "--concurrency", "2", "--p99-us", "50", "--address-space", "8GiB",
        "--requests", "1000"]
BAR = re.compile(rb"candidates measured: (\d+)run \[[^\]]*?(\w+): p99")


def _bar_shows(trials: int, stage: str) -> Callable[[int], bytes]:
    """A wait until the bar counts at least ``trials`` trials, the last in ``stage``."""
    def reached(seen: bytes) -> bool:
        shown = [(int(m.group(1)), m.group(2).decode()) for m in BAR.finditer(seen)]
        return bool(shown) and shown[-1][0] >= trials and shown[-1][1] == stage

    def wait(master: int) -> bytes:
        shown = read(master, timeout=180, done=reached)
        assert BAR.search(shown), shown[-500:]
        return shown
    return wait


def _interrupt(arguments: list[str], cwd, sent: signal.Signals, trials: int, stage: str) -> tuple[int, str, bytes]:
    ended = interrupted(arguments, cwd, sent, _bar_shows(trials, stage))
    return ended.status, ended.line, ended.shown + ended.out


@pytest.mark.parametrize("sent, stage, budget", [(signal.SIGTERM, "screen", "60"), (signal.SIGINT, "confirm", "2")],
                         ids=["SIGTERM-screening", "SIGINT-confirming"])
def test_an_interrupted_advise_keeps_its_finished_trials_marked_partial(tmp_path, sent, stage, budget):
    code, line, shown = _interrupt([*GOAL, "--budget-s", budget, "--out", "out"], tmp_path, sent, 3, stage)
    assert code == 130, (code, shown[-800:])
    assert line.startswith(f"wasmlab: interrupted ({sent.name}) after ") and " trials; kept in out/ (marked partial); " in line, line
    assert b"Traceback" not in shown and b"Aborted!" not in shown
    done = int(line.split(" after ")[1].split(" ")[0])
    table = pd.read_parquet(tmp_path / "out" / TRIALS)
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert len(table) == done >= 3 and meta["trials"] == done
    assert meta["partial"] is True and meta["interrupted_by"] == sent.name and line.endswith(f"stopped in the {meta['stage']} stage")
    # The stage under way is the bar's, or the next one if the signal came as it began; never before a kept trial's.
    assert STAGES.index(stage) <= STAGES.index(meta["stage"]) <= STAGES.index(stage) + 1
    assert STAGES.index(table["stage"].iloc[-1]) <= STAGES.index(meta["stage"])
    for column in ("stage", "allocator", "slots", "layout", "keep_resident", "latency_us_p50", "latency_us_p99", "throughput_rps",
                   "rss_bytes", "outcome"):
        assert column in table, column
    assert meta["goal"]["p99_us"] == 50 and meta["wasmtime_version"] and meta["cpu_model"]


def test_an_interrupt_with_no_save_says_how_many_trials_and_how_to_keep_them(tmp_path):
    code, line, shown = _interrupt([*GOAL, "--budget-s", "60", "--no-save"], tmp_path, signal.SIGINT, 3, "screen")
    assert code == 130, (code, shown[-800:])
    assert re.fullmatch(r"wasmlab: interrupted \(SIGINT\) after \d+ trials; not saved; stopped in the screen stage; "
                        r"without --no-save the trials measured are kept", line), line
    assert int(line.split(" after ")[1].split(" ")[0]) >= 3 and list(tmp_path.iterdir()) == []
