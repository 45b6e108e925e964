"""What ``wasmlab compare`` matches row for row: per workload, variant and call path, and per sweep point.

Rows are matched by their composition (the variant's name without ``@path``) and call path (its ``call_path``
column, else its ``@path`` suffix), so ``pooled+cached@native`` of one run meets ``pooled+cached`` served on the
native path of another, and a missing value in a key never drops a row (``NaN`` equals nothing in a dict's keys).

A sweep holds several points (``param_*`` columns); they are never pooled into one side.  Two sweeps are matched
point by point (their parameter columns must be the same); a sweep against a single run is cut to the one point
whose parameters equal the run's, or refused in one line naming the points when none or several match.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from wasmlab.errors import WasmlabError

PARAMETER_PREFIX = "param_"
# The columns compare's rows are keyed by, derived from each table.
WORKLOAD, COMPOSITION, CALL_PATH = "_key_workload", "_key_composition", "_key_call_path"


def plain(value: Any) -> Any:
    """A parameter value comparable across tables: numpy scalars as Python, 4.0 as 4, NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _text(value: Any) -> str:
    return json.dumps(plain(value), sort_keys=True, default=str)


def parameter_columns(table: pd.DataFrame) -> list[str]:
    return sorted(c for c in table.columns if c.startswith(PARAMETER_PREFIX))


def keyed(table: pd.DataFrame, columns: tuple[str, ...] = ("workload", "call_path")) -> pd.DataFrame:
    """``table`` with the key columns compare matches rows by, every value a string (no ``NaN`` in a key).
    ``columns``: which of workload and call_path to read (both tables have them); else a call path is the name's
    ``@path`` suffix and the workload is not a key."""
    out = table.copy()
    variants = out["variant"].astype(str) if "variant" in out else pd.Series("", index=out.index)
    suffix = variants.str.partition("@")[2]
    named = out["call_path"] if "call_path" in columns and "call_path" in out else pd.Series(None, index=out.index)
    out[CALL_PATH] = [str(path) if isinstance(path, str) and path else s for path, s in zip(named, suffix, strict=True)]
    out[COMPOSITION] = variants.str.partition("@")[0]
    out[WORKLOAD] = out["workload"].map(_text) if "workload" in columns and "workload" in out else ""
    for column in parameter_columns(out):
        out[f"_key_{column}"] = out[column].map(_text)
    return out


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _parameters(rows: pd.DataFrame) -> dict[str, Any]:
    """A run's (or a point's) parameters, flattened: ``parameters_json`` (``engine_config.pool.slots``...)."""
    texts = rows["parameters_json"].dropna().unique() if "parameters_json" in rows else []
    return _flatten(json.loads(texts[0])) if len(texts) else {}


@dataclass(frozen=True)
class Point:
    """One sweep point: its name, its ``param_*`` values and its rows."""

    name: str
    values: dict[str, Any]
    rows: pd.DataFrame

    def matches(self, run: pd.DataFrame, varying: Iterable[str]) -> bool:
        """Whether ``run``'s parameters equal this point's: the spec's parameters (``param_X`` against the run's ``X``)
        and every resolved parameter that differs between the sweep's points.  A parameter the run left unset (null)
        is not held against it: its resolved value is among the others (``slots`` null, ``engine_config.pool.slots`` 20)."""
        theirs, ours = _parameters(run), _parameters(self.rows)
        pairs = [(value, theirs.get(column.removeprefix(PARAMETER_PREFIX), _column(run, column.removeprefix(PARAMETER_PREFIX))))
                 for column, value in self.values.items()]
        pairs += [(ours.get(key), theirs.get(key)) for key in varying]
        return all(_text(mine) == _text(other) for mine, other in pairs if plain(other) is not None)


def _column(table: pd.DataFrame, name: str) -> Any:
    values = table[name].dropna().unique() if name in table else []
    return values[0] if len(values) == 1 else None


def points(sweep: pd.DataFrame) -> list[Point]:
    columns = parameter_columns(sweep)
    found = []
    for _, rows in sweep.groupby([f"_key_{c}" for c in columns], sort=True):
        values = {c: plain(rows[c].iloc[0]) for c in columns}
        name = str(rows["point_id"].iloc[0]) if "point_id" in rows else ",".join(f"{c.removeprefix(PARAMETER_PREFIX)}={v}" for c, v in values.items())
        found.append(Point(name, values, rows))
    return found


def _varying(found: list[Point]) -> list[str]:
    """Resolved parameters whose values differ between the points: the grid, as the lab resolved it."""
    flats = [_parameters(p.rows) for p in found]
    keys = sorted({k for flat in flats for k in flat})
    return [k for k in keys if len({_text(flat.get(k)) for flat in flats}) > 1]


def _one_point(sweep: pd.DataFrame, run: pd.DataFrame, sweep_name: str, run_name: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    found = points(sweep)
    varying = _varying(found)
    chosen = [p for p in found if p.matches(run, varying)]
    names = ", ".join(p.name for p in (chosen if len(chosen) > 1 else found))
    if not chosen:
        raise WasmlabError(f"{sweep_name!r} is a sweep and none of its {len(found)} points has the parameters of {run_name!r} "
                           f"(points: {names}); allowed: a run measured with one point's parameters, or a sweep of the same grid")
    if len(chosen) > 1:
        raise WasmlabError(f"{sweep_name!r} is a sweep and {len(chosen)} of its {len(found)} points match the parameters of {run_name!r} "
                           f"(points: {names}); allowed: a run whose parameters single out one point, or a sweep of the same grid")
    point = chosen[0]
    run = run.copy()
    for column, value in point.values.items():  # the run is that point: its rows carry the point's parameters
        run[column] = value
        run[f"_key_{column}"] = _text(value)
    return point.rows, run, f"sweep point {point.name} matched {run_name!r} by its parameters"


@dataclass(frozen=True)
class Aligned:
    """Two keyed tables ready to match row for row, and what was done to get there (``""``: nothing)."""

    a: pd.DataFrame
    b: pd.DataFrame
    note: str
    keys: list[str]


def align(a: pd.DataFrame, b: pd.DataFrame, a_name: str = "A", b_name: str = "B") -> Aligned:
    """Two tables keyed for matching; a sweep against a run cut to its matching point, two sweeps checked to share a grid."""
    shared = tuple(c for c in ("workload", "call_path") if c in a and c in b)
    a, b = keyed(a, shared), keyed(b, shared)
    params_a, params_b = parameter_columns(a), parameter_columns(b)
    note = ""
    if params_a and params_b and params_a != params_b:
        only = sorted(set(params_a) ^ set(params_b))
        raise WasmlabError(f"{a_name!r} and {b_name!r} are sweeps of different parameters ({', '.join(only)} only on one side); "
                           f"allowed: two sweeps of the same parameters, or a sweep and a run")
    if params_a and not params_b:
        a, b, note = _one_point(a, b, a_name, b_name)
    elif params_b and not params_a:
        b, a, note = _one_point(b, a, b_name, a_name)
    keys = [WORKLOAD, COMPOSITION, CALL_PATH] + [f"_key_{c}" for c in parameter_columns(a)]
    return Aligned(a, b, note, keys)


def unmatched(aligned: Aligned) -> tuple[list[str], list[str]]:
    """The rows of each side with no counterpart on the other (``variant on path [point]``): a variant a change
    dropped must not pass a gate unseen."""

    def names(table: pd.DataFrame) -> dict[tuple[Any, ...], str]:
        found = {}
        for key, rows in table.groupby(aligned.keys, sort=True):
            first = rows.iloc[0]
            point = ",".join(f"{c.removeprefix(PARAMETER_PREFIX)}={plain(first[c])}" for c in parameter_columns(table))
            found[key] = f"{first['variant']} on {first[CALL_PATH] or 'its one path'}" + (f" [{point}]" if point else "")
        return found

    a, b = names(aligned.a), names(aligned.b)
    return [a[k] for k in a if k not in b], [b[k] for k in b if k not in a]
