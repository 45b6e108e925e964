"""Sweep specs: a YAML file -> validated ``Spec``s -> the grid of ``Point``s one papermill execution each.

A spec::

    name: seed                       # results go to data/results/<name>/ unless `out` says otherwise
    notebook: 01_seed_reproduction.ipynb   # relative to the spec's folder's parent (notebooks/)
    parameters: {requests: 1000}     # fixed for every point
    grid: {slots: [4, 20], cache_size: [4, 16]}   # Cartesian product
    zip: {workload: [a, b], requests: [100, 10]}  # optional: axes that vary together
    replicates: 1                    # independent executions (kernels) of every point
    out: data/results/seed           # optional
    wasmtime_release: [30, 40, 50]   # optional: every point runs across these releases (08_releases.ipynb)
    wasmtime_library: [../builds/libwasmtime.so]   # optional: and across your own builds (relative to the spec)

``wasmtime_release`` is an axis that does not split points: within each point the releases run once per
repetition in rotated order (one child process each), so that drift of the machine shifts them alike; one
point per release could not interleave them.  It reaches the notebook as its ``releases`` parameter, and
each release must be in ``data/releases/manifest.yaml`` and fetched (``wasmlab releases fetch``).
``wasmtime_library`` adds users' own libwasmtime builds to the same interleaving (the notebook's ``libraries``
parameter; each labelled ``library:<digest>``), each path relative to the spec's folder and checked when the sweep
starts.

Everything is validated before anything runs: an unknown key, a parameter the notebook's
``parameters`` cell does not define (papermill inspects it), a wrong type, an empty grid or a
missing notebook is one line naming the spec file, the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wasmlab.errors import ConfigError, SpecError
from wasmlab.experiments.notebook import notebook_parameters
from wasmlab.host.releases import fetched, resolve
from wasmlab.storage import project_root

SPEC_KEYS = ("name", "notebook", "parameters", "grid", "zip", "replicates", "out", "description", "wasmtime_release",
             "wasmtime_library")
RELEASE_AXIS = "wasmtime_release"
LIBRARY_AXIS = "wasmtime_library"
# The notebook parameter the library axis fills: paths of users' libwasmtime builds.
LIBRARY_PARAMETER = "libraries"
# The notebook parameter the release axis fills (08_releases.ipynb declares it).
RELEASE_PARAMETER = "releases"
STATUS = "status.json"
EXECUTED = "executed.ipynb"
RESULTS = "results"
# Injected by the runner: every sweepable notebook must declare it.
OUTPUT_PARAMETER = "output_dir"
# More points than a sweep could run (each is a notebook execution): refused before points() lists them, which would
# hang or run out of memory on a grid of billions.
MAX_POINTS = 100_000
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


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
    releases: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)

    def check_ready(self) -> None:
        """One line before anything runs if a release of the ``wasmtime_release`` axis is not fetched (or altered).

        Checked when the sweep starts rather than when the spec is read, so that a spec can be listed and
        validated on a machine that has not fetched its releases."""
        for release in resolve(self.releases) if self.releases else []:
            try:
                fetched(release)
            except ConfigError as exc:
                raise _fail(self.path, RELEASE_AXIS, str(exc)) from None
        for library in self.libraries:
            if not Path(library).is_file():
                raise _fail(self.path, LIBRARY_AXIS, f"{library} is not a file; allowed: paths of libwasmtime builds (.so), "
                            "relative to the spec's folder")
        for point in self.points():
            check_point(self.path, point)

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
            RELEASE_AXIS: self.releases,
            LIBRARY_AXIS: self.libraries,
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


def check_point(path: Path, point: Point) -> None:
    """A point's values of the Scenario's own parameters (requests, slots, preset, variants...) checked as every
    command checks them (ranges, what memory and the address space can hold), so that a sweep refuses a bad value
    with one line before its first point runs instead of failing that point in its kernel."""
    from wasmlab.measure.scenario import TOP, Scenario
    from wasmlab.measure.settings import FLAT

    given = {key: value for key, value in point.parameters.items() if key in FLAT or key in TOP}
    if not given:
        return
    try:
        Scenario.from_dict(given)
    except (ConfigError, TypeError) as exc:
        raise SpecError(f"{path}: point {point.point_id}: {exc}") from None


def _fail(path: Path, key: str, message: str) -> SpecError:
    return SpecError(f"{path}: {key}: {message}")


def _check_value(path: Path, shown: str, key: str, value: Any, declared: Mapping[str, Any]) -> None:
    """``value`` for the notebook parameter ``key``; errors name the spec key ``shown`` (e.g. ``grid.slots``)."""
    if key not in declared:
        raise _fail(path, shown, f"the notebook has no parameter {key!r}; allowed: {', '.join(sorted(declared))}")
    if key == OUTPUT_PARAMETER:
        raise _fail(path, shown, f"{OUTPUT_PARAMETER!r} is set by the sweep runner (use the spec's 'out' instead)")
    kind = declared[key].get("inferred_type_name")
    if (key == "warmup" and isinstance(value, str)) or key == "time_budget":  # a count or auto; seconds or a duration
        from wasmlab.measure.budget import parse_budget
        from wasmlab.measure.warmup import parse_warmup

        try:
            (parse_warmup if key == "warmup" else parse_budget)(value)
        except ConfigError as exc:
            raise _fail(path, shown, str(exc)) from None
        return
    if kind in _TYPES:
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("int", "float") and isinstance(value, bool))
        if not ok:
            article = "an" if kind[0] in "aeiou" else "a"
            raise _fail(path, shown, f"{value!r} is a {type(value).__name__}; allowed: {article} {kind}")


def _check_fills(path: Path, key: str, parameter: str, what: str, declared: Mapping[str, Any],
                 sections: Sequence[Mapping[str, Any]]) -> None:
    """One line unless the notebook declares ``parameter``, which the spec's ``key`` fills, and no section also gives it."""
    if parameter not in declared:
        raise _fail(path, key, f"the notebook has no {parameter!r} parameter to run {what} through; "
                    "allowed: a notebook that declares it (08_releases.ipynb)")
    if any(parameter in section for section in sections):
        raise _fail(path, key, f"is also given as {parameter!r}; give the {what} in one place")


def _release_axis(path: Path, values: Any, declared: Mapping[str, Any], *sections: Mapping[str, Any]) -> list[str]:
    """The ``wasmtime_release`` axis as the manifest versions the notebook's ``releases`` parameter takes."""
    key = RELEASE_AXIS
    if not isinstance(values, list) or not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise _fail(path, key, f"{values!r}; allowed: a non-empty list of releases (versions like 50.0.1 or majors like 50)")
    _check_fills(path, key, RELEASE_PARAMETER, "releases", declared, sections)
    try:
        releases = resolve([str(v) for v in values])
    except ConfigError as exc:
        raise _fail(path, key, str(exc)) from None
    return [release.version for release in releases]


def _library_axis(path: Path, values: Any, declared: Mapping[str, Any], *sections: Mapping[str, Any]) -> list[str]:
    """The ``wasmtime_library`` axis as the absolute paths the notebook's ``libraries`` parameter takes (existence is
    checked when the sweep starts, as a release's fetch is)."""
    key = LIBRARY_AXIS
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise _fail(path, key, f"{values!r}; allowed: a non-empty list of paths of libwasmtime builds")
    _check_fills(path, key, LIBRARY_PARAMETER, "builds", declared, sections)
    return [str((path.resolve().parent / value).resolve()) for value in values]


def apply_overrides(data: Any, overrides: Mapping[str, Any]) -> Any:
    """One spec document with ``wasmlab sweep --set KEY=VALUE`` applied: a list given for a grid or zip axis replaces its
    values; any other value fixes the parameter for every point (taking it out of the grid or zip), so one command can
    rerun a spec smaller, larger or at one point without editing it.  Validated afterwards like the file itself."""
    if not overrides or not isinstance(data, dict):
        return data
    data = {**data, **{key: dict(data.get(key) or {}) for key in ("parameters", "grid", "zip")}}
    for key, value in overrides.items():
        for axis in ("grid", "zip"):
            if key in data[axis]:
                if isinstance(value, list):
                    data[axis][key] = value
                else:
                    del data[axis][key]
                    data["parameters"][key] = value
                break
        else:
            data["parameters"][key] = value
    for section in ("grid", "zip"):  # an axis fixed by --set leaves one point, not an empty grid
        if not data[section]:
            del data[section]
    return data


def load_specs(path: str | Path, out: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> list[Spec]:
    """Every spec in a YAML file (documents separated by ``---``), all validated before anything runs; ``overrides``
    (``--set``) applied to each first (:func:`apply_overrides`).

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
    # Absolute: each point's notebook runs in the notebook's folder, where a relative --out would name another place.
    out = None if out is None else Path(out).resolve()
    for data in documents:
        data = apply_overrides(data, overrides or {})
        named = data.get("name", "") if isinstance(data, dict) else ""
        target = None if out is None else (out if len(documents) == 1 else out / str(named))
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


def _validate(path: Path, data: Any, out: Path | None) -> Spec:  # noqa: C901, PLR0912 - one check per top-level key of a spec, in the order the error names them (debt: a table of key checks)
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
    releases = _release_axis(path, data[RELEASE_AXIS], declared, parameters, grid, zipped) if RELEASE_AXIS in data else []
    if releases:
        parameters = {**parameters, RELEASE_PARAMETER: releases}
    libraries = _library_axis(path, data[LIBRARY_AXIS], declared, parameters, grid, zipped) if LIBRARY_AXIS in data else []
    if libraries:
        parameters = {**parameters, LIBRARY_PARAMETER: libraries}
    for section_name, section in (("grid", grid), ("zip", zipped)):
        for key, values in section.items():
            if key == RELEASE_AXIS:
                raise _fail(path, f"{section_name}.{key}", "releases are interleaved within each point, not split into "
                            f"points; give '{RELEASE_AXIS}: [..]' at the top level of the spec")
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
    count = math.prod(len(v) for v in grid.values()) * (len(next(iter(zipped.values()))) if zipped else 1) * replicates
    if count > MAX_POINTS:
        raise _fail(path, "grid", f"grid x zip x replicates make {count} points; allowed: at most {MAX_POINTS}")
    name = data["name"]
    if "out" in data and data["out"] is not None and not isinstance(data["out"], str):
        raise _fail(path, "out", f"{data['out']!r}; allowed: a folder path")
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
        releases=releases,
        libraries=libraries,
    )
