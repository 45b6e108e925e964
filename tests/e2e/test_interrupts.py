"""Ctrl-C (SIGINT) and SIGTERM keep the work that finished: one line, exit status 130, the finished repetitions
saved as a run marked ``partial`` (readable by ``compare``), no results folder left empty, no child left running.

The real command runs with its stderr on a pseudo-terminal, so that its progress bar says which repetition is
under way: the signal is sent once the bar shows a later repetition than the first (no blind sleep)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.e2e.terminal import ROOT, WASMLAB, interrupted, running, shows
from wasmlab.errors import Interrupted
from wasmlab.measure.child import Child
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.scenario import Scenario, run

REPRODUCE = ["reproduce", "--variants", "cached,pooled+cached", "--repeats", "30", "--warmup", "10", "--format", "json"]


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_reproduce_keeps_its_finished_repetitions_as_a_partial_run(tmp_path, sent):
    ended = interrupted([*REPRODUCE, "--requests", "5000", "--out", "run"], tmp_path, sent,
                        shows(b" rep 3/30"))  # the third repetition is under way: two are finished
    line, shown = ended.line, ended.shown
    assert ended.status == 130, (ended.status, shown[-800:])
    assert line.startswith(f"wasmlab: interrupted ({sent.name}) after ") and "of 30 repetitions; kept in " in line, line
    assert b"Traceback" not in shown and b"Aborted!" not in shown and ended.out == b""
    done = int(line.split(" after ")[1].split(" of ")[0])
    kept = Measurement.load(tmp_path / "run")
    assert 2 <= done < 30
    assert kept.metadata["partial"] is True and kept.metadata["interrupted_by"] == sent.name
    assert (kept.metadata["repeats"], kept.metadata["repeats_planned"]) == (done, 30)
    # Every kept repetition is whole: each variant's row and all its requests; the one under way is not kept.
    assert sorted(kept.summary.groupby("variant")["repetition"].nunique()) == [done, done]
    assert len(kept.samples) == 2 * done * 5000 and kept.samples["repetition"].max() == done - 1
    compared = subprocess.run([*WASMLAB, "compare", "run", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert compared.returncode == 0, compared.stderr
    assert f"(partial: interrupted after {done} of 30 repetitions)" in compared.stdout.splitlines()[0]


def test_an_interrupt_before_the_first_repetition_ends_leaves_no_empty_results_folder(tmp_path):
    # Each repetition far longer than it takes to see it start: the signal lands inside the first.
    ended = interrupted([*REPRODUCE, "--requests", "400000", "--out", "run"], tmp_path, signal.SIGINT, shows(b" rep 1/30"))
    assert ended.status == 130, ended.shown[-800:]
    assert ended.line == "wasmlab: interrupted (SIGINT) before the first of 30 repetitions finished; nothing to keep"
    assert not (tmp_path / "run").exists()


def test_the_harness_keeps_whole_repetitions_only_phases_included():
    """In this process: the interrupt arrives in the third repetition, after its first variant served (and phased) a
    slice (a KeyboardInterrupt from the progress callback, where a signal handler would raise it); what the
    repetition under way measured, phases included, is dropped."""
    scenario = Scenario(variants=("cached", "pooled+cached"), requests=60, repeats=5, warmup=2, phases=True, slots=2)
    started: list[str] = []

    def stop_at_third(variant: str, repetition: int, total: int) -> None:
        if repetition == 2:
            started.append(variant)
            if len(started) == 2:
                raise KeyboardInterrupt("SIGTERM")

    with pytest.raises(Interrupted) as stopped:
        run(scenario, stop_at_third)
    stop = stopped.value
    assert (stop.signal_name, stop.done, stop.planned) == ("SIGTERM", 2, 5)
    kept = stop.partial
    assert kept.metadata["partial"] and kept.metadata["repeats"] == 2 and kept.metadata["workload"] == "seed"
    assert set(kept.summary["repetition"]) == {0, 1} and bool(kept.summary["partial"].all())
    assert set(kept.samples["repetition"]) == {0, 1} and set(kept.phases["repetition"]) == {0, 1}


def test_an_interrupted_child_is_killed_at_once_not_left_to_finish():
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with Child("time:sleep") as child:
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                child.call(60)
            # Well under the child's 60 s sleep (and close's 30 s grace): it was killed, not waited for.
            assert time.monotonic() - started < 20 and child._process is None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys; from wasmlab.measure.child import Child; c = Child('time:sleep'); c._start(); "
                               "print(c._process.pid, flush=True); c.call(120)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()  # SIGKILL: no handler of the parent's runs
        parent.wait()
        deadline = time.monotonic() + 20
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = running(child)
        assert not alive, f"child {child} outlived its killed parent"
    finally:
        parent.kill()


@pytest.mark.slow  # papermill starts a kernel per point (~3 s each)
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_sweep_keeps_its_finished_points_and_resumes(tmp_path, sent):
    """A relative --out on purpose: the points' notebooks run in the notebooks folder, and must still write under it."""
    (tmp_path / "notebooks" / "sweeps").mkdir(parents=True)
    (tmp_path / "notebooks" / "01_seed_reproduction.ipynb").write_bytes((ROOT / "notebooks" / "01_seed_reproduction.ipynb").read_bytes())
    spec = tmp_path / "notebooks" / "sweeps" / "s.yaml"
    spec.write_text('name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {requests: 20, repeats: 1, warmup: 2, phases: false}\n'
                    'grid: {slots: [1, 2, 3]}\n')
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*WASMLAB, "sweep", "notebooks/sweeps/s.yaml", "--out", "out"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("points/*/status.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    # The next point under way: its folder (with papermill's temporary notebook) exists before its kernel is done.
    while len(list(out.glob("points/*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=120)
    last = stderr.strip().splitlines()[-1]
    assert process.returncode == 130, stderr
    assert last.startswith(f"wasmlab: interrupted ({sent.name}) after ") and "of 3 points; kept in " in last, last
    assert last.endswith("run the same command again to resume (finished points are skipped)")
    assert "Traceback" not in stderr and "ZMQError" not in stderr, stderr
    finished = sorted(p.parent.name for p in out.glob("points/*/status.json"))
    assert sorted(p.name for p in out.glob("points/*")) == finished  # the point under way is gone, temporary notebook too
    assert not list(out.rglob(".tmp-*")) and not list((tmp_path / "notebooks").glob("out"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["partial"] is True and manifest["points_planned"] == 3 and manifest["interrupted_by"] == sent.name
    assert sorted(set(pd.read_parquet(out / "results.parquet")["point_id"])) == finished
    report = subprocess.run([*WASMLAB, "report", "out"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0 and report.stdout.startswith("Partial sweep: interrupted"), report.stderr
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"{len(finished)} already finished" in again.stdout, again.stderr
    assert "partial" not in json.loads((out / "manifest.json").read_text())


def test_an_interrupted_concurrency_run_waits_for_its_workers_instead_of_closing_their_drivers_under_them():
    """The workers serve blocks in C that cannot be stopped half-way: an interrupt (here a timer's, raised in the main
    thread as SIGINT's is) waits for them, then goes on up; closing a driver under a block raised "the driver is
    serving a block" with a traceback.  (The serving starts ~0.1 s in and lasts ~2 s here.)"""
    from wasmlab.experiments.concurrency import concurrency

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            concurrency(Scenario(requests=300_000, warmup=10, variants=("pooled+cached",)), 2, call_path="native")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_an_interrupted_isolated_run_keeps_the_variants_whose_children_finished():
    """--isolate: one child per variant; the interrupt comes once the first child's variant is in (from the progress
    callback, where a signal handler would raise it), so the second variant's child never starts."""
    from wasmlab.measure.isolate import run_isolated

    scenario = Scenario(variants=("cached", "pooled+cached"), requests=30, repeats=2, warmup=2, slots=2)

    def stop_after_first(variant: str, repetition: int, total: int) -> None:
        raise KeyboardInterrupt("SIGINT")

    with pytest.raises(Interrupted) as stopped:
        run_isolated(scenario, stop_after_first)
    stop = stopped.value
    assert (stop.done, stop.planned, stop.unit) == (1, 2, "variants")
    kept = stop.partial
    assert kept.metadata["partial"] and kept.metadata["variants_planned"] == 2 and kept.metadata["isolated"]
    assert set(kept.summary["variant"]) == {"cached"} and bool(kept.summary["partial"].all())
    assert len(kept.samples) == 2 * 30
