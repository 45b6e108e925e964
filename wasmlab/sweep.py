"""Sweeps: one papermill execution per point of a spec (:mod:`wasmlab.sweep_spec`), resumable, collected into one table.

Every point runs in its own kernel and writes into its own folder,
``<out>/points/<point id>/``: the executed notebook, the notebook's results (``results/``)
and, last, ``status.json``.  A point with a ``status.json`` saying ``ok`` is finished; re-running
the same command skips it, so a killed sweep loses no finished point and runs none twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from wasmlab.errors import ConfigError, Interrupted, SpecError, signal_name
from wasmlab.experiments.notebook import notebook_parameters
from wasmlab.jupyter_kernels import STOPPING, execute_notebook
from wasmlab.measure import metadata as md
from wasmlab.measure.results import read_metadata, read_table, write_parquet
from wasmlab.storage import atomic_write, write_json
from wasmlab.sweep_spec import OUTPUT_PARAMETER, Point, Spec, load_spec, load_specs

__all__ = ["OUTPUT_PARAMETER", "Point", "Spec", "SpecError", "SweepOutcome", "collect", "dry_run", "is_finished", "load_spec", "overlaps",
           "load_specs", "notebook_parameters", "read_status", "run_point", "run_sweep"]

STATUS = "status.json"
EXECUTED = "executed.ipynb"
RESULTS = "results"


def read_status(folder: Path) -> dict[str, Any] | None:
    """A point's status, or ``None`` when it has not finished (no file, or an unreadable one)."""
    try:
        return dict(json.loads((folder / STATUS).read_text()))
    except (OSError, ValueError):
        return None


def is_finished(point: Point, out: Path) -> bool:
    status = read_status(point.folder(out))
    return bool(status and status.get("status") == "ok" and status.get("parameters") == _jsonable(point.parameters))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_point(notebook: str, point: Point, out: str, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute one point in a fresh kernel (here or on a Dask worker) and write its status last.

    A half-written folder from a killed run is cleared first, so nothing partial is read as data.
    """
    folder = point.folder(Path(out))
    if folder.exists():
        shutil.rmtree(folder)
    results = folder / RESULTS
    results.mkdir(parents=True)
    executed_tmp = folder / f".tmp-{EXECUTED}"  # papermill wants the .ipynb suffix
    started = time.time()
    status: dict[str, Any] = {"point_id": point.point_id, "parameters": _jsonable(point.parameters), "replicate": point.replicate,
                              "start": md.iso_now(), "start_unix": started, "host": md.machine()["hostname"]}
    try:
        execute_notebook(notebook, executed_tmp, {**point.parameters, OUTPUT_PARAMETER: str(results)}, Path(notebook).parent,
                         kernel_name)
        status["status"] = "ok"
        status["error"] = ""
    except Exception as exc:  # noqa: BLE001 - any failure of one point is recorded, the sweep goes on
        from nbclient.exceptions import DeadKernelError

        # A kernel that died (wasmtime can abort the whole process) is a crash, as under --isolate.
        status["status"] = "crash" if isinstance(exc, DeadKernelError) else "failed"
        status["error"] = ("crash: " if status["status"] == "crash" else "") + _one_line(exc)
        status["traceback"] = traceback.format_exc(limit=5)
    wall = time.time() - started
    if executed_tmp.exists():
        executed_tmp.replace(folder / EXECUTED)
    status.update({"end": md.iso_now(), "end_unix": started + wall, "wall_s": wall, **_timing(folder / EXECUTED, results, wall)})
    write_json(status, folder / STATUS)
    return status


def overlaps(statuses: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each point, the other points that ran on the same host while it ran (their timings disturb each
    other's), from the start and end each point's status recorded.  A point without times overlaps nothing
    known and is left out."""
    timed = {pid: (s["host"], float(s["start_unix"]), float(s["end_unix"])) for pid, s in statuses.items()
             if s.get("host") and s.get("start_unix") is not None and s.get("end_unix") is not None}
    return {pid: [other for other, (host2, start2, end2) in timed.items()
                  if other != pid and host2 == host and start2 < end and start < end2]
            for pid, (host, start, end) in timed.items()}


def _one_line(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {str(evalue).strip().splitlines()[0] if evalue else ''}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _timing(executed: Path, results: Path, wall: float) -> dict[str, float]:
    """Where a point's time went: papermill's own overhead (kernel start, notebook I/O) is what
    the cells did not spend; the measurement is what the harness timed."""
    cells = 0.0
    try:
        nb = json.loads(executed.read_text())
        cells = sum(float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0) for c in nb["cells"])
    except (OSError, ValueError, KeyError):
        pass
    timing = {
        "cells_s": cells,
        # Outside the cells: kernel start and notebook I/O.
        "papermill_overhead_s": max(0.0, wall - cells),
    }
    try:
        measured = json.loads((results / "metadata.json").read_text()).get("run_wall_s")
    except (OSError, ValueError):
        measured = None
    if measured is not None:
        # Known only for notebooks that save a harness run's metadata (01, 05, 07); the others time
        # operations themselves, and counting their whole point as overhead would mislead.
        timing["measure_s"] = float(measured)
        # Everything that was not the timed measurement: kernel start, imports, plots, saving.
        timing["non_measurement_s"] = max(0.0, wall - float(measured))
    return timing


@dataclass
class SweepOutcome:
    """What a sweep did: each point's status, and the collected table's location."""

    spec: Spec
    statuses: dict[str, dict[str, Any]]
    skipped: list[str]
    results: Path | None
    manifest: Path

    @property
    def failed(self) -> dict[str, str]:
        return {pid: s.get("error", "") for pid, s in self.statuses.items() if s.get("status") != "ok"}


@contextlib.contextmanager
def _stopping_kernels() -> Iterator[None]:
    """While points run here: SIGINT and SIGTERM kill the point's kernel and mark the process as stopping (so that
    its manager kills rather than asks it to stop mid-cell) before they interrupt it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        STOPPING.set()
        # The point's kernel (this process's only children here) ends now, even one still starting, which its
        # manager cannot stop yet: left alive, it would fail on sockets already removed and print a traceback.
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        STOPPING.clear()


class _Dask:
    """A Dask client for ``--scheduler`` or ``--workers > 1``, and, for a local cluster, the PIDs of its worker
    processes, so that an interrupt leaves none of them (nor the kernels they started) running."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        from dask.distributed import Client, LocalCluster

        # Workers' own logs stay quiet below CRITICAL: a point's failure reaches the lab through its future (and is
        # recorded with the point), while a heartbeat that fails as an interrupted sweep shuts the cluster down printed a
        # traceback under the one line an interrupt promises (CI saw it once).
        self.cluster = None if scheduler is not None else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                                        dashboard_address=None, silence_logs=logging.CRITICAL)
        self.client = Client(scheduler if scheduler is not None else self.cluster)
        self.workers: list[int] = list(self.client.run(os.getpid).values()) if self.cluster is not None else []
        self.futures: list[Any] = []

    def close(self, stopping: bool) -> None:
        """Close the client (and the local cluster).  When ``stopping``, the points under way are abandoned first:
        their tasks cancelled and their kernels killed, so that no kernel writes into a point folder after it is removed,
        and after the cluster closes, whatever of its processes is still there is killed and waited for."""
        if not stopping:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
            return
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)
        # The workers are frozen first, so that none starts another kernel or logs its kernel's death; then the kernels
        # and the workers are killed (their points are removed whole, and none may write into a point folder after).
        workers = [p for p in map(_process, self.workers) if p is not None]
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.suspend()
        _kill(_kernels_of(self.workers) + workers)
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=20)
        # A kernel outlives its worker (reparented, it exits only once it notices, printing so): found again, after the
        # cluster is gone, by the worker's PID jupyter_client gives every kernel it starts.
        _kill(_kernels_of(self.workers))


def _kernels_of(workers: list[int]) -> list[psutil.Process]:
    """The processes ``workers`` started (their children, or kernels whose ``JPY_PARENT_PID`` names one of them)."""
    if not workers:
        return []
    names = {str(pid) for pid in workers}
    found = []
    for process in psutil.process_iter(["ppid", "environ"]):
        environ = process.info["environ"] or {}
        if process.info["ppid"] in workers or environ.get("JPY_PARENT_PID") in names:
            found.append(process)
    return found


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _kill(processes: list[psutil.Process]) -> None:
    """SIGKILL each of ``processes`` still running, and wait for them."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def run_sweep(
    spec: Spec,
    resume: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> SweepOutcome:
    """Run every unfinished point of ``spec``, then collect all points into one table and a manifest."""
    from tqdm import tqdm

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers = {workers!r} is out of range; allowed: an integer >= 1")
    spec.check_ready()
    out = spec.out
    out.mkdir(parents=True, exist_ok=True)
    points = spec.points()
    started = md.iso_now()
    skipped = [p.point_id for p in points if resume and is_finished(p, out)]
    todo = [p for p in points if p.point_id not in skipped]
    if workers > 1 and scheduler is None:
        echo(f"note: {workers} workers on one machine disturb each other's timings; use 1 for figures you quote")
    statuses: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(points), initial=len(skipped), desc=spec.name, unit="point", disable=not progress, file=sys.stderr)
    stopped_by = _run_points(spec, todo, statuses, bar, workers, scheduler)
    for pid in skipped:
        statuses[pid] = read_status(next(p for p in points if p.point_id == pid).folder(out)) or {}
    overlapped = overlaps(statuses)
    table = collect(spec, points)
    results = None
    if not table.empty:
        write_parquet(table, out / "results.parquet")
        atomic_write(out / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
        results = out / "results.parquet"
    manifest = write_json(
        {
            "spec": spec.to_dict(),
            "start": started,
            "end": md.iso_now(),
            "machine": md.machine(),
            "executor": scheduler or ("local" if workers <= 1 else f"LocalCluster({workers})"),
            "points": {p.point_id: {**statuses.get(p.point_id, {}), "skipped_as_finished": p.point_id in skipped,
                                    **({"overlapped_by": overlapped[p.point_id]} if p.point_id in overlapped else {})}
                       for p in points if p.point_id in statuses},
            **({"partial": True, "interrupted_by": stopped_by, "points_planned": len(points)} if stopped_by else {}),
        },
        out / "manifest.json",
    )
    if stopped_by:
        done = sum(1 for status in statuses.values() if status.get("status") == "ok")
        stop = Interrupted(stopped_by, results, done, len(points), "points")
        stop.kept = f"{out}/" if results is not None else ""
        stop.resume = "; run the same command again to resume (finished points are skipped)"
        raise stop
    return SweepOutcome(spec, statuses, skipped, results, manifest)


def _run_points(spec: Spec, todo: list[Point], statuses: dict[str, dict[str, Any]], bar: Any, workers: int,
                scheduler: str | None) -> str:
    """Run ``todo`` here or on Dask, each point's status into ``statuses``; the signal that stopped them, or ``""``."""
    out = spec.out
    dask: _Dask | None = None
    stopped_by = ""
    try:
        if scheduler is None and workers <= 1:
            with _stopping_kernels():
                for point in todo:
                    bar.set_postfix_str(_short(point.parameters, spec))
                    statuses[point.point_id] = run_point(str(spec.notebook), point, str(out))
                    bar.update(1)
        else:
            from dask.distributed import as_completed

            dask = _Dask(workers, scheduler)
            futures = {dask.client.submit(run_point, str(spec.notebook), p, str(out), pure=False): p for p in todo}
            dask.futures = list(futures)
            for future in as_completed(futures):
                point = futures[future]
                try:
                    statuses[point.point_id] = future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker fails its point, not the sweep
                    statuses[point.point_id] = {"status": "failed", "error": _one_line(exc), "parameters": _jsonable(point.parameters)}
                bar.set_postfix_str(_short(point.parameters, spec))
                bar.update(1)
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM: the finished points stay (each wrote its status last) and are collected below, marked
        # partial; a point under way is removed whole, its temporary notebook with it, so a rerun runs it afresh.
        stopped_by = signal_name(exc)
    finally:
        bar.close()
        if dask is not None:
            dask.close(stopping=bool(stopped_by))
    if stopped_by:
        for point in todo:
            if point.point_id in statuses or not point.folder(out).exists():
                continue
            if is_finished(point, out):  # finished on a Dask worker before its answer was read
                statuses[point.point_id] = read_status(point.folder(out)) or {}
            elif dask is None or dask.cluster is not None:
                shutil.rmtree(point.folder(out), ignore_errors=True)
            # A remote scheduler's worker goes on with its point (a cancelled task runs to its end): its folder is left
            # to it, whole when it finishes, and cleared by the point itself when a rerun runs it again.
    return stopped_by


def _short(parameters: Mapping[str, Any], spec: Spec) -> str:
    varying = [*spec.grid, *spec.zipped]
    return ", ".join(f"{k}={parameters[k]}" for k in varying)[:60]


def collect(spec: Spec, points: Iterable[Point] | None = None) -> pd.DataFrame:
    """Every finished point's ``summary.parquet``, with the point's parameters as ``param_*`` columns."""
    frames = []
    for point in points or spec.points():
        folder = point.folder(spec.out)
        if not is_finished(point, spec.out):
            continue
        summary = folder / RESULTS / "summary.parquet"
        if not summary.is_file():
            continue
        read_metadata(folder / RESULTS)  # refuses a point written in another results format
        frame = read_table(summary)
        frame.insert(0, "point_id", point.point_id)
        frame.insert(1, "replicate", point.replicate)
        for i, (key, value) in enumerate(point.parameters.items()):
            frame.insert(2 + i, f"param_{key}", value if not isinstance(value, (list, dict)) else json.dumps(value))
        frames.append(frame)
    return mixed_as_text(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def mixed_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Columns that mix text with numbers across points (a grid of ``warmup: [auto, 200]``) as text, which Parquet holds."""
    for column in table.select_dtypes(include="object").columns:
        kinds = {type(v) for v in table[column].dropna()}
        if str in kinds and len(kinds) > 1:
            table[column] = table[column].map(lambda v: v if v is None or v != v else str(v))
    return table


def dry_run(spec: Spec) -> list[str]:
    """One line per point: whether it would run, and its parameters."""
    lines = []
    for point in spec.points():
        state = "done" if is_finished(point, spec.out) else "todo"
        lines.append(f"{state}  {point.point_id}  {json.dumps(point.parameters, default=str)}")
    return lines

