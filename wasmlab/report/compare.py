"""Two results tables side by side, as pyperf's ``compare_to`` does; or two wasmtime releases of one run
across releases (``RUN@40 RUN@50``).

For every (variant, call path, parameter set) present in both, the ratio of the geometric means
of the per-repetition mean latencies (B / A) with a Welch-t 95% interval over repetitions (the two
runs' repetitions are independent); a difference is called significant when the interval excludes 1.  Metadata that differs between the two
runs (wasmtime, Python, CPU, commit...) is listed first, because it is the first suspect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.errors import WasmlabError
from wasmlab.measure.results import read_metadata, read_table
from wasmlab.measure.stats import UNPAIRED_METHOD, geometric_mean, unpaired_ratio
from wasmlab.report.gate import Gate
from wasmlab.report.matching import CALL_PATH, Aligned, align, parameter_columns, plain, unmatched

METADATA = ("wasmtime_version", "python_version", "cpu_model", "cpu_count", "platform", "hostname", "git_commit",
            "wasmlab_version", "cachetools_version", "numpy_version", "pandas_version", "preset", "parameters_json",
            "warmup", "repeats", "requests", "machine_busy")
KEYS = ("workload", "variant", "call_path")
NO_GATE = Gate()


def split_release(path: str | Path) -> tuple[Path, str | None]:
    """``RUN@50.0.1`` (or ``RUN@50``) -> the table's path and the release it selects; a plain path selects none."""
    text = str(path)
    base, at, release = text.rpartition("@")
    if at and release and all(part.isdigit() for part in release.split(".")):
        return Path(base), release
    return Path(text), None


def _select_release(table: pd.DataFrame, release: str, where: str) -> pd.DataFrame:
    if "release" not in table:
        raise WasmlabError(f"{where!r} has no releases to select from; allowed: a run of wasmlab releases / notebook 08, or no @RELEASE")
    versions = sorted(set(map(str, table["release"])))
    chosen = [v for v in versions if v == release or v.split(".")[0] == release]
    if not chosen:
        raise WasmlabError(f"release {release!r} is not in {where!r}; allowed: {', '.join(versions)}")
    selected = table[table["release"].astype(str) == chosen[-1]].copy()
    # Named as the release it is, so that the metadata differences list it first.
    selected["wasmtime_version"] = chosen[-1]
    return selected


def load_table(path: str | Path) -> pd.DataFrame:
    """A sweep's ``results.parquet``, a run folder's ``summary.parquet``, or either file itself; ``PATH@RELEASE``
    selects one wasmtime release's rows of a run across releases (``wasmlab releases``, notebook 08)."""
    path, release = split_release(path)
    if release is not None:
        return _select_release(load_table(path), release, str(path))
    for candidate in (path, path / "results.parquet", path / "summary.parquet"):
        if candidate.is_file() and candidate.suffix == ".parquet":
            read_metadata(candidate.parent)  # a run folder of another results format is refused, not misread
            table = read_table(candidate)
            if "variant" not in table or "latency_us_mean" not in table:
                raise WasmlabError(f"{str(candidate)!r} has no variant latencies to compare; allowed: a table from wasmlab reproduce or a sweep of 01/05")
            return table[table["status"] == "ok"] if "status" in table else table
    raise WasmlabError(f"{str(path)!r} is not a results table; allowed: a .parquet file, or a folder with results.parquet or summary.parquet")


def partial_note(table: pd.DataFrame) -> str:
    """`` (partial: ...)`` for a run interrupted before all its repetitions finished (its metadata says ``partial``)."""
    if "partial" not in table or not table["partial"].fillna(False).astype(bool).any():
        return ""
    if "runs_planned" in table:  # wasmlab concurrency: one row per finished configuration run
        return f"  (partial: interrupted after {len(table)} of {int(table['runs_planned'].max())} configuration runs)"
    unit = "variants" if "variants_planned" in table else "repetitions"
    planned = table[f"{unit}_planned" if unit == "variants" else "repeats_planned"].dropna().max()
    done = table["variant" if unit == "variants" else "repetition"].nunique()
    return f"  (partial: interrupted after {done} of {int(planned)} {unit})"


def _identity(table: pd.DataFrame) -> str:
    """What a table holds, shortly: its workloads and variants."""
    parts = [f"{key} {', '.join(sorted(map(str, table[key].unique())))[:60]}" for key in ("workload", "variant") if key in table]
    return "; ".join(parts) or "no rows"


def metadata_differences(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Metadata columns whose values differ between the two tables."""
    rows = []
    for column in METADATA:
        if column not in a or column not in b:
            continue
        if column == "parameters_json":
            rows.extend(_parameter_differences(a[column], b[column]))
            continue
        va, vb = sorted(map(str, a[column].unique())), sorted(map(str, b[column].unique()))
        if va != vb:
            rows.append({"metadata": column, "A": ", ".join(va)[:80], "B": ", ".join(vb)[:80]})
    return pd.DataFrame(rows, columns=["metadata", "A", "B"])


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True)
    return flat


def _parameter_differences(a: pd.Series, b: pd.Series) -> list[dict[str, str]]:
    """Parameters (one row each) whose values differ, rather than two unreadable JSON blobs."""
    values_a: dict[str, set[str]] = {}
    values_b: dict[str, set[str]] = {}
    for series, values in ((a, values_a), (b, values_b)):
        for text in series.dropna().unique():
            for key, value in _flatten(json.loads(text)).items():
                values.setdefault(key, set()).add(value)
    rows = []
    for key in sorted(set(values_a) | set(values_b)):
        va, vb = sorted(values_a.get(key, {"(absent)"})), sorted(values_b.get(key, {"(absent)"}))
        if va != vb:
            rows.append({"metadata": f"parameter {key}", "A": ", ".join(va)[:80], "B": ", ".join(vb)[:80]})
    return rows


def compare(a: pd.DataFrame, b: pd.DataFrame, gate: Gate = NO_GATE, aligned: Aligned | None = None) -> pd.DataFrame:
    """One row per (workload, variant, call path, sweep point) found in both tables; with a gate, its verdict per row.
    Rows match as :mod:`wasmlab.report.matching` says (``aligned``, when the caller has matched them already)."""
    aligned = aligned or align(a, b)
    params = parameter_columns(aligned.a)
    rows = []
    grouped_b = {key: group for key, group in aligned.b.groupby(aligned.keys, sort=False)}
    for key, group_a in aligned.a.groupby(aligned.keys, sort=False):
        group_b = grouped_b.get(key)
        if group_b is None:
            continue
        # Two runs are independent: their repetitions are not paired.
        ratio, low, high = unpaired_ratio(group_b["latency_us_mean"].to_numpy(), group_a["latency_us_mean"].to_numpy()).as_tuple()
        significant = bool(low == low and (low > 1 or high < 1))
        first = group_a.iloc[0]
        row = {column: first[column] for column in KEYS if column in group_a}
        row["call_path"] = first[CALL_PATH]
        row.update({column: plain(first[column]) for column in params})
        row.update({
            "A_us_geomean": geometric_mean(group_a["latency_us_mean"]),
            "B_us_geomean": geometric_mean(group_b["latency_us_mean"]),
            "ratio_B_over_A": ratio,
            "ci95_low": low,
            "ci95_high": high,
            "repetitions_A": len(group_a),
            "repetitions_B": len(group_b),
            "verdict": ("slower" if low > 1 else "faster") if significant else "not significant",
        })
        if gate.active:
            row["gate"] = gate.row_verdict(low, high)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    """Two results tables compared: what ``wasmlab compare`` prints (as text or JSON) and whether its gate failed."""

    a_path: str
    b_path: str
    a: pd.DataFrame
    b: pd.DataFrame
    table: pd.DataFrame
    gate: Gate
    matched: str = ""  # how a sweep was cut to the point a run matched, if it was
    only_in_a: tuple[str, ...] = ()
    only_in_b: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.gate.active and Gate.failed(list(self.table["gate"]))


def comparison(a_path: str | Path, b_path: str | Path, gate: Gate = NO_GATE) -> Comparison:
    """Load and compare two tables; two with nothing in common are refused in one line."""
    a, b = load_table(a_path), load_table(b_path)
    aligned = align(a, b, str(a_path), str(b_path))
    table = compare(a, b, gate, aligned)
    if table.empty:
        # Nothing to compare is an answer the user did not ask for: refused like a bad input, not printed as a result.
        raise WasmlabError(f"{str(a_path)!r} and {str(b_path)!r} have no (workload, variant, call path, parameters) in common "
                           f"(A: {_identity(a)}; B: {_identity(b)}); allowed: two runs of the same workload and variants")
    # The matched rows only: a sweep cut to one point is described by that point's metadata, not the whole grid's.
    only_a, only_b = unmatched(aligned)
    return Comparison(str(a_path), str(b_path), aligned.a, aligned.b, table, gate, aligned.note, tuple(only_a), tuple(only_b))


def render(a_path: str | Path, b_path: str | Path, gate: Gate = NO_GATE) -> str:
    """The text ``wasmlab compare`` prints."""
    return text(comparison(a_path, b_path, gate))


def text(result: Comparison) -> str:
    """A comparison as text: the two tables, the metadata that differs, the ratios, and the gate's verdict last."""
    a, b, table = result.a, result.b, result.table
    lines = [f"A: {result.a_path}{partial_note(a)}", f"B: {result.b_path}{partial_note(b)}"]
    lines += [f"Matched: {result.matched}", ""] if result.matched else [""]
    diffs = metadata_differences(a, b)
    lines.append("Metadata that differs:" if not diffs.empty else "Metadata that differs: none")
    if not diffs.empty:
        lines.append(diffs.to_string(index=False))
    lines.append("")
    lines.append(f"B / A of the per-repetition mean latencies: {UNPAIRED_METHOD}; significant when the CI excludes 1:")
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if min(table["repetitions_A"].min(), table["repetitions_B"].min()) < 5:
        lines.append("(fewer than 5 repetitions on a side: the intervals are rough; use --repeats 5 or more for figures you quote)")
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            lines.append(f"Only in {side} (not compared): {', '.join(names)}")
    if result.gate.active:
        lines.append(result.gate.verdict_line(list(table["gate"])))
    return "\n".join(lines)
