"""Sweeps: a YAML spec -> a grid of parameter sets -> one papermill execution per point -> one table.

A spec::

    name: seed                       # results go to data/results/<name>/ unless `out` says otherwise
    notebook: 01_seed_reproduction.ipynb   # relative to the spec's folder's parent (notebooks/)
    parameters: {requests: 1000}     # fixed for every point
    grid: {slots: [4, 20], cache_size: [4, 16]}   # Cartesian product
    zip: {workload: [a, b], requests: [100, 10]}  # optional: axes that vary together
    replicates: 1                    # independent executions (kernels) of every point
    out: data/results/seed           # optional

Every point runs in its own kernel and writes into its own folder,
``<out>/points/<point id>/``: the executed notebook, the notebook's results (``results/``)
and, last, ``status.json``.  A point with a ``status.json`` saying ``ok`` is finished; re-running
the same command skips it, so a killed sweep loses no finished point and runs none twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd
import yaml

from wasmlab import metadata as md
from wasmlab.errors import ConfigError
from wasmlab.results import atomic_write, project_root, write_json, write_parquet

SPEC_KEYS = ("name", "notebook", "parameters", "grid", "zip", "replicates", "out", "description")
STATUS = "status.json"
EXECUTED = "executed.ipynb"
RESULTS = "results"
# Injected by the runner: every sweepable notebook must declare it.
OUTPUT_PARAMETER = "output_dir"
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


class SpecError(ConfigError):
    """A sweep spec is invalid; the message starts with the spec file and names the key."""


@dataclass(frozen=True)
class Point:
    """One parameter set of a sweep, and where its outputs go."""

    point_id: str
    parameters: dict[str, Any]
    replicate: int = 0

    def folder(self, out: Path) -> Path:
        return out / "points" / self.point_id


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec."""

    path: Path
    name: str
    notebook: Path
    parameters: dict[str, Any]
    grid: dict[str, list[Any]]
    zipped: dict[str, list[Any]]
    replicates: int
    out: Path
    description: str = ""
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def points(self) -> list[Point]:
        """The grid (Cartesian product of ``grid`` axes, times the zipped axes together), times replicates."""
        grid_axes = list(self.grid)
        combos = list(itertools.product(*(self.grid[k] for k in grid_axes))) or [()]
        zip_axes = list(self.zipped)
        zipped_rows = list(zip(*(self.zipped[k] for k in zip_axes))) if zip_axes else [()]
        points = []
        for combo in combos:
            for zrow in zipped_rows:
                varying = {**dict(zip(grid_axes, combo)), **dict(zip(zip_axes, zrow))}
                for replicate in range(self.replicates):
                    points.append(Point(_point_id(varying, replicate, self.replicates), {**self.parameters, **varying}, replicate))
        return points

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": _shown(self.path),
            "name": self.name,
            "notebook": _shown(self.notebook),
            "parameters": self.parameters,
            "grid": self.grid,
            "zip": self.zipped,
            "replicates": self.replicates,
            "out": _shown(self.out),
            "description": self.description,
        }


def _shown(path: Path) -> str:
    """``path`` relative to the project when it lies inside it, so manifests move with the checkout."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(project_root()))
    except ValueError:
        return str(resolved)


def _point_id(varying: Mapping[str, Any], replicate: int, replicates: int) -> str:
    """A readable, stable folder name: the varying parameters, plus a hash that keeps it unique."""
    canonical = json.dumps({"p": varying, "r": replicate}, sort_keys=True, default=str)
    digest = hashlib.sha1(canonical.encode()).hexdigest()[:8]
    readable = "-".join(f"{k}={v}" for k, v in varying.items()) or "point"
    readable = "".join(c if c.isalnum() or c in "=-_.+" else "_" for c in readable)[:80]
    suffix = f"-r{replicate}" if replicates > 1 else ""
    return f"{readable}{suffix}-{digest}"


def _fail(path: Path, key: str, message: str) -> SpecError:
    return SpecError(f"{path}: {key}: {message}")


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell as papermill reads it: name -> type and default."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def _check_value(path: Path, shown: str, key: str, value: Any, declared: Mapping[str, Any]) -> None:
    """``value`` for the notebook parameter ``key``; errors name the spec key ``shown`` (e.g. ``grid.slots``)."""
    if key not in declared:
        raise _fail(path, shown, f"the notebook has no parameter {key!r}; allowed: {', '.join(sorted(declared))}")
    if key == OUTPUT_PARAMETER:
        raise _fail(path, shown, f"{OUTPUT_PARAMETER!r} is set by the sweep runner (use the spec's 'out' instead)")
    kind = declared[key].get("inferred_type_name")
    if kind in _TYPES:
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("int", "float") and isinstance(value, bool))
        if not ok:
            article = "an" if kind[0] in "aeiou" else "a"
            raise _fail(path, shown, f"{value!r} is a {type(value).__name__}; allowed: {article} {kind}")


def load_specs(path: str | Path, out: str | Path | None = None) -> list[Spec]:
    """Every spec in a YAML file (documents separated by ``---``), all validated before anything runs.

    With several specs, ``out`` is a parent folder: each spec writes to ``out/<name>``.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec")
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not documents:
        raise SpecError(f"{path}: empty; a sweep spec is a mapping with keys {', '.join(SPEC_KEYS)}")
    specs = []
    for data in documents:
        target = None if out is None else (Path(out) if len(documents) == 1 else Path(out) / str(data.get("name", "")))
        specs.append(_validate(path, data, target))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise _fail(path, "name", f"names must differ between the documents of one file; got {names}")
    return specs


def load_spec(path: str | Path, out: str | Path | None = None) -> Spec:
    """The single spec in ``path`` (see ``load_specs``)."""
    specs = load_specs(path, out)
    if len(specs) != 1:
        raise SpecError(f"{path}: holds {len(specs)} specs; use load_specs")
    return specs[0]


def _validate(path: Path, data: Any, out: Path | None) -> Spec:
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep spec is a mapping with keys {', '.join(SPEC_KEYS)}")
    for key in data:
        if key not in SPEC_KEYS:
            raise _fail(path, key, f"unknown key; allowed: {', '.join(SPEC_KEYS)}")
    for key in ("name", "notebook"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(path, key, "required, a non-empty string")
    notebooks_dir = path.resolve().parent.parent
    notebook = (notebooks_dir / data["notebook"]).resolve()
    if not notebook.is_file():
        available = sorted(p.name for p in notebooks_dir.glob("*.ipynb"))
        raise _fail(path, "notebook", f"{data['notebook']!r} does not exist in {notebooks_dir}; allowed: {', '.join(available)}")
    declared = notebook_parameters(notebook)
    if OUTPUT_PARAMETER not in declared:
        raise _fail(path, "notebook", f"{notebook.name} has no {OUTPUT_PARAMETER!r} parameter, so its results cannot be collected")
    parameters = data.get("parameters") or {}
    grid = data.get("grid") or {}
    zipped = data.get("zip") or {}
    for key, section in (("parameters", parameters), ("grid", grid), ("zip", zipped)):
        if not isinstance(section, dict):
            raise _fail(path, key, "must be a mapping of parameter names")
    for key, value in parameters.items():
        _check_value(path, f"parameters.{key}", key, value, declared)
    for section_name, section in (("grid", grid), ("zip", zipped)):
        for key, values in section.items():
            if not isinstance(values, list) or not values:
                raise _fail(path, f"{section_name}.{key}", "must be a non-empty list of values")
            if key in parameters:
                raise _fail(path, f"{section_name}.{key}", "is also a fixed parameter; give it in one place")
            for value in values:
                _check_value(path, f"{section_name}.{key}", key, value, declared)
    overlap = set(grid) & set(zipped)
    if overlap:
        raise _fail(path, f"zip.{sorted(overlap)[0]}", "is also a grid axis; give it in one place")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise _fail(path, "zip", f"zipped axes must have the same length; got {sorted(lengths)}")
    if not grid and not zipped and "grid" in data:
        raise _fail(path, "grid", "is empty; allowed: a mapping of parameter -> non-empty list")
    replicates = data.get("replicates", 1)
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise _fail(path, "replicates", f"{replicates!r} is out of range; allowed: an integer >= 1")
    name = data["name"]
    target = Path(out) if out else (Path(data["out"]) if data.get("out") else project_root(path.parent) / "data" / "results" / name)
    return Spec(
        path=path,
        name=name,
        notebook=notebook,
        parameters=dict(parameters),
        grid={k: list(v) for k, v in grid.items()},
        zipped={k: list(v) for k, v in zipped.items()},
        replicates=replicates,
        out=target,
        description=str(data.get("description", "")),
        notebook_parameters=declared,
    )


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
    import papermill

    folder = point.folder(Path(out))
    if folder.exists():
        shutil.rmtree(folder)
    results = folder / RESULTS
    results.mkdir(parents=True)
    executed_tmp = folder / f".tmp-{EXECUTED}"  # papermill wants the .ipynb suffix
    started = time.time()
    status: dict[str, Any] = {"point_id": point.point_id, "parameters": _jsonable(point.parameters), "replicate": point.replicate,
                              "start": md.iso_now(), "host": md.machine()["hostname"]}
    try:
        papermill.execute_notebook(
            notebook,
            str(executed_tmp),
            parameters={**point.parameters, OUTPUT_PARAMETER: str(results)},
            cwd=str(Path(notebook).parent),
            kernel_name=kernel_name,
            progress_bar=False,
        )
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
    status.update({"end": md.iso_now(), "wall_s": wall, **_timing(folder / EXECUTED, results, wall)})
    write_json(status, folder / STATUS)
    return status


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


def _executor(workers: int, scheduler: str | None) -> tuple[Any, Callable[[], None]] | None:
    """A Dask client for ``--scheduler`` or ``--workers > 1``; ``None`` runs points here, one by one."""
    if scheduler is None and workers <= 1:
        return None
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        client = Client(scheduler)
        return client, client.close
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return client, close


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
    executor = _executor(workers, scheduler)
    try:
        if executor is None:
            for point in todo:
                bar.set_postfix_str(_short(point.parameters, spec))
                statuses[point.point_id] = run_point(str(spec.notebook), point, str(out))
                bar.update(1)
        else:
            from dask.distributed import as_completed

            client, _ = executor
            futures = {client.submit(run_point, str(spec.notebook), p, str(out), pure=False): p for p in todo}
            for future in as_completed(futures):
                point = futures[future]
                try:
                    statuses[point.point_id] = future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker fails its point, not the sweep
                    statuses[point.point_id] = {"status": "failed", "error": _one_line(exc), "parameters": _jsonable(point.parameters)}
                bar.set_postfix_str(_short(point.parameters, spec))
                bar.update(1)
    finally:
        bar.close()
        if executor is not None:
            executor[1]()
    for pid in skipped:
        statuses[pid] = read_status(next(p for p in points if p.point_id == pid).folder(out)) or {}
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
            "points": {p.point_id: {**statuses.get(p.point_id, {}), "skipped_as_finished": p.point_id in skipped} for p in points},
        },
        out / "manifest.json",
    )
    return SweepOutcome(spec, statuses, skipped, results, manifest)


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
        frame = pd.read_parquet(summary)
        frame.insert(0, "point_id", point.point_id)
        frame.insert(1, "replicate", point.replicate)
        for i, (key, value) in enumerate(point.parameters.items()):
            frame.insert(2 + i, f"param_{key}", value if not isinstance(value, (list, dict)) else json.dumps(value))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def dry_run(spec: Spec) -> list[str]:
    """One line per point: whether it would run, and its parameters."""
    lines = []
    for point in spec.points():
        state = "done" if is_finished(point, spec.out) else "todo"
        lines.append(f"{state}  {point.point_id}  {json.dumps(point.parameters, default=str)}")
    return lines

