"""A sweep on a local Dask cluster (``--workers 2``: a real ``dask.distributed`` LocalCluster, a scheduler and two
worker processes, each running its points' kernels) stopped by SIGINT after a point finished: one line, exit status
130, every finished point's results kept and listed in the manifest marked partial, no temporary notebook left, no
process of the cluster or its kernels left running (checked by PID), and a rerun runs only the points missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import psutil
import pytest

from tests.e2e.terminal import ROOT, WASMLAB, running

pytestmark = pytest.mark.slow  # papermill starts a kernel per point (~3 s each), on two Dask workers

SPEC = ("name: d\nnotebook: 01_seed_reproduction.ipynb\nparameters: {requests: 20, repeats: 1, warmup: 2, phases: false}\n"
        "grid: {slots: [1, 2, 3, 4]}\n")


def _tree(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``, with its command line (for the message when one is left running)."""
    found = {}
    for process in psutil.Process(pid).children(recursive=True):
        try:
            found[process.pid] = " ".join(process.cmdline())[:120]
        except psutil.Error:
            continue
    return found


def test_an_interrupted_dask_sweep_keeps_its_finished_points_leaves_no_process_and_resumes(tmp_path):
    (tmp_path / "notebooks" / "sweeps").mkdir(parents=True)
    (tmp_path / "notebooks" / "01_seed_reproduction.ipynb").write_bytes((ROOT / "notebooks" / "01_seed_reproduction.ipynb").read_bytes())
    (tmp_path / "notebooks" / "sweeps" / "d.yaml").write_text(SPEC)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*WASMLAB, "sweep", "notebooks/sweeps/d.yaml", "--out", "out", "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 240
    try:
        while not list(out.glob("points/*/status.json")) and time.monotonic() < deadline and process.poll() is None:
            seen.update(_tree(process.pid))
            time.sleep(0.1)
        assert list(out.glob("points/*/status.json")), "no point finished"
        # The next points under way on both workers: their folders (papermill's temporary notebooks in them) exist.
        while len(list(out.glob("points/*"))) < 3 and time.monotonic() < deadline:
            seen.update(_tree(process.pid))
            time.sleep(0.05)
        seen.update(_tree(process.pid))
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    last = stderr.strip().splitlines()[-1]
    assert process.returncode == 130, stderr
    assert last.startswith("wasmlab: interrupted (SIGINT) after ") and "of 4 points; kept in " in last, last
    assert last.endswith("run the same command again to resume (finished points are skipped)")
    assert "Traceback" not in stderr, stderr
    assert len([p for p in seen if "wasmlab.cli" not in seen[p]]) >= 2  # the cluster's worker processes were there to see
    # multiprocessing's resource tracker ends by itself once its parent's pipe closes: it is given a moment; nothing else.
    deadline = time.monotonic() + 5
    while any(running(pid) for pid, line in seen.items() if "resource_tracker" in line) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid: line for pid, line in seen.items() if running(pid)}
    assert not left, f"left running after the sweep ended: {left}"
    assert "Parent appears to have exited" not in stderr  # a kernel that outlived its worker says so when it notices

    finished = sorted(p.parent.name for p in out.glob("points/*/status.json"))
    assert 1 <= len(finished) < 4
    assert sorted(p.name for p in out.glob("points/*")) == finished  # the points under way are gone whole
    assert not list(out.rglob(".tmp-*")) and not list(out.rglob("*.tmp"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["partial"] is True and manifest["points_planned"] == 4 and manifest["interrupted_by"] == "SIGINT"
    assert sorted(pid for pid, status in manifest["points"].items() if status.get("status") == "ok") == finished
    assert sorted(set(pd.read_parquet(out / "results.parquet")["point_id"])) == finished
    for point in finished:
        assert (out / "points" / point / "results" / "summary.parquet").is_file()

    kept = {point: (out / "points" / point / "status.json").read_text() for point in finished}
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"d: 4 points, 4 ok ({len(finished)} already finished), 0 failed" in again.stdout, again.stdout
    assert all((out / "points" / point / "status.json").read_text() == text for point, text in kept.items())  # not run again
    assert "partial" not in json.loads((out / "manifest.json").read_text())
    assert len(pd.read_parquet(out / "results.parquet")) == 4 * 5

