"""The same scenario across wasmtime releases: one child process per release and repetition, releases interleaved.

Each repetition runs every release once, in an order rotated by repetition, so that drift of the machine
shifts all releases of a repetition alike instead of looking like a regression; each child
(:mod:`wasmlab.measure.release_child`) loads its release's library into the native driver and serves every
variant.  The table has one row per release, variant and repetition, each carrying the release and its
library's SHA-256; :func:`changes` compares consecutive releases per variant, paired by repetition, and marks
a change only where the interval excludes no change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.config import DEFAULT_SLOTS, PoolConfig
from wasmlab.errors import ConfigError, Interrupted, signal_name
from wasmlab.host.callpaths import native_component
from wasmlab.host.callpaths.native import refusal
from wasmlab.host.pool_sizing import size_pool_for_components
from wasmlab.host.releases import Release, fetched, version_key
from wasmlab.host.user_library import ALLOWED, checked_path, describe, user_release
from wasmlab.host.variant import parse_variant
from wasmlab.measure import metadata as md
from wasmlab.measure.child import call_once
from wasmlab.measure.stats import PAIRED_METHOD, geometric_mean, paired_ratio
from wasmlab.workloads import load_workload

# The oldest release whose C API matches the driver's declarations: ``wasmtime_func_call_unchecked`` took its
# length in 0.38 and returned a ``wasmtime_error_t*`` from 3.0 on.  An older library is refused before it is opened.
OLDEST_MAJOR = 3


def pooling_knobs(slots: int, pool: dict[str, Any]) -> dict[str, int]:
    """The pooling setters' values for ``slots`` and the extra knobs, as the in-process engine sets them
    (``PoolConfig.settings``; a ``PoolConfig`` also names an unknown knob or a bad value in one line)."""
    return PoolConfig(slots=slots, **pool).settings()


def run_child(job: dict[str, Any], timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """One child's rows (:func:`wasmlab.measure.release_child.run_job` in a child of its own, which loads the
    release's library); a child that dies, or stops with an error, is one row per variant with status ``crash``,
    whose ``library_sha256`` is empty (no child reported one).  A child's refusal (the lab's own error: a library
    whose digest is not the manifest's) is raised here as that one line."""
    reply = call_once("wasmlab.measure.release_child:run_job", job, timeout_s=timeout_s)
    if reply.status == "error" and reply.lab_error:
        raise ConfigError(reply.message)
    if reply.ok:  # numpy's scalars become Python's numbers, so that the rows write as JSON and Parquet alike
        return list(json.loads(json.dumps(reply.result, default=float)))
    reason = reply.message if reply.status == "crash" else f"{reply.error_type}: {reply.message}"
    return [{"release": job["release"], "library_sha256": "", "variant": name, "repetition": job["repetition"],
             "status": "crash", "error": reason if reason.startswith("crash") else f"crash: {reason}"} for name in job["variants"]]


def user_library(path: str | Path) -> Release:
    """A user's own libwasmtime build as a release (labelled by its digest), its version read by loading it in a child
    of its own (a library that aborts takes only that child down); a path that is not a loadable library is one line."""
    file = checked_path(path)
    reply = call_once("wasmlab.host.user_library:probe", str(file), timeout_s=120.0)
    if reply.status == "error" and reply.lab_error:
        raise ConfigError(reply.message)
    if not reply.ok:
        raise ConfigError(f"--library {path}: loading it failed ({reply.message}); {ALLOWED}")
    return user_release(file, str(reply.result))


def run_releases(releases: Sequence[Release], workload: str, variants: Sequence[str], requests: int, repeats: int, warmup: int = 200,  # noqa: PLR0913 - run in a child per release: its arguments cross a process boundary as plain values
                 slots: int = DEFAULT_SLOTS, pool: dict[str, Any] | None = None, cache_size: int = 16,
                 progress: Callable[[str, int], None] | None = None, compile_workloads: Sequence[str] = (),
                 compile_repeats: int = 3) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every release x variant x repetition (see the module docstring), plus the compile time of each of
    ``compile_workloads`` per release and repetition (rows of ``kind`` ``compile``); the table and the run's metadata."""
    names = [parse_variant(v).name for v in variants]
    for release in releases:
        if release.major is not None and release.major < OLDEST_MAJOR:
            raise ConfigError(f"release {release.version} is older than {OLDEST_MAJOR}.0, whose C API the native driver declares; "
                              f"allowed: releases {OLDEST_MAJOR}.0 and later")
    served = load_workload(workload)
    reason = native_component.refusal(served) if served.component else refusal(served, linked=False)
    if reason:
        raise ConfigError(f"releases run: {reason}")
    libraries = {r.version: fetched(r) for r in releases}  # one line for a release not fetched, before anything runs
    knobs = pooling_knobs(slots, dict(pool or {}))
    if served.component:  # the pool sized for the component itself, as the in-process engines size it
        # Instance sizes under wasmtime's 1 MiB default stay unset (pool_sizing.instance_size_limit), so each release
        # keeps its own default: releases lay instances out anew (44 and 47 need more than 50 for the middleware).
        knobs = size_pool_for_components(PoolConfig(slots=slots, **dict(pool or {})), [served]).settings()
    run = md.new_run()
    metadata = {**run, **md.machine(), "releases": {r.version: describe(r) for r in releases},
                "workload": workload, "variants": names, "requests": requests, "repeats": repeats, "warmup": warmup,
                "pooling": knobs, "cache_size": cache_size, "order": "releases rotated by repetition, one child process each",
                "ratio_method": PAIRED_METHOD}
    rows: list[dict[str, Any]] = []
    order, children = list(releases), 0
    try:
        for repetition in range(repeats):
            shift = repetition % len(order)
            for position, release in enumerate(order[shift:] + order[:shift]):
                if progress is not None:
                    progress(release.version, repetition)
                # The variants' order is rotated too, inside each child.
                turn = repetition % len(names)
                job = {"release": release.version, "library": str(libraries[release.version]), "workload": workload,
                       "variants": names[turn:] + names[:turn], "requests": requests, "warmup": warmup, "pooling": knobs,
                       "cache_size": cache_size, "repetition": repetition, "compile": list(compile_workloads),
                       "user_sha256": release.library_sha256 if release.user_path else "",
                       "compile_repeats": compile_repeats}
                # A child's rows are kept whole or not at all: an interrupt during its run leaves none of them.
                finished = [{**row, "release_position": position, "run_id": run["run_id"]} for row in run_child(job)]
                rows.extend(finished)
                children += 1
    except KeyboardInterrupt as exc:
        raise interrupted(signal_name(exc), rows, metadata, children, repeats * len(order)) from None
    return pd.DataFrame(rows), metadata


# What an interrupted run across releases counts as done: each child is one release's repetition.
UNIT = "children (one per release and repetition)"


def interrupted(stopped_by: str, rows: list[dict[str, Any]], metadata: dict[str, Any], done: int, planned: int) -> Interrupted:
    """The interrupt of a run across releases, with the finished children's rows and metadata marked partial (every row
    too, so that a release selected out of the table, ``RUN@50``, still says it is partial)."""
    if not rows:
        return Interrupted(stopped_by, None, 0, planned, UNIT)
    marks = {"partial": True, "repeats_planned": metadata["repeats"], "interrupted_by": stopped_by}
    table = pd.DataFrame([{**row, **marks} for row in rows])
    kept = {**metadata, **marks, "repeats": int(table["repetition"].nunique()), "children_planned": planned, "children_done": done}
    return Interrupted(stopped_by, (table, kept), done, planned, UNIT)


def requests_of(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of served requests (not compile timings)."""
    return table[table["kind"] != "compile"] if "kind" in table else table


def compiles_of(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of compile timings."""
    return table[table["kind"] == "compile"] if "kind" in table else table.iloc[0:0]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per release and variant (with the release's library SHA-256): status, geometric-mean latency over
    repetitions, p50/p99 medians, compile time."""
    rows = []
    for (release, variant), group in requests_of(table).groupby(["release", "variant"], sort=False):
        ok = group[group["status"] == "ok"]
        digests = [d for d in group["library_sha256"] if d]  # as the children computed it (a crashed child reported none)
        row: dict[str, Any] = {"release": release, "library_sha256": digests[0] if digests else "", "variant": variant,
                               "repetitions": len(ok),
                               "status": "ok" if len(ok) == len(group) else str(group["status"].iloc[0]),
                               "error": "" if len(ok) == len(group) else str(group.loc[group["status"] != "ok", "error"].iloc[0])}
        if not ok.empty:
            row.update({"latency_us_mean": geometric_mean(ok["latency_us_mean"]), "latency_us_p50": float(ok["latency_us_p50"].median()),
                        "latency_us_p99": float(ok["latency_us_p99"].median()),
                        "compile_us_per_miss": float(ok["compile_us_per_miss"].median()),
                        "minor_faults_per_request": float(ok["minor_faults_per_request"].median()),
                        "vmsize_mib_reserved_by_engine": float(ok["vmsize_mib_reserved_by_engine"].median()),
                        **{c: float(ok[c].median()) for c in ("new_store_us_p50", "instantiate_us_p50", "drop_store_us_p50") if c in ok}})
        rows.append(row)
    frame = pd.DataFrame(rows)
    order = sorted(frame["release"].unique(), key=version_key)
    frame["release"] = pd.Categorical(frame["release"], categories=order, ordered=True)
    return frame.sort_values(["variant", "release"]).reset_index(drop=True)


def changes(table: pd.DataFrame, column: str = "latency_us_mean") -> pd.DataFrame:
    """Consecutive releases per variant: later/earlier of ``column``, paired by repetition, 95% interval; ``changed``
    only where the interval excludes 1 ("release 41: pooled+cached -12% (CI -15..-9)")."""
    ok = table[(table["status"] == "ok") & table[column].notna()] if column in table else table.iloc[0:0]
    versions = sorted(ok["release"].unique(), key=version_key)
    rows = []
    for variant, group in ok.groupby("variant", sort=False):
        for earlier, later in zip(versions, versions[1:]):
            a = group[group["release"] == earlier].set_index("repetition")[column]
            b = group[group["release"] == later].set_index("repetition")[column]
            common = a.index.intersection(b.index)
            if common.empty:
                continue
            ratio = paired_ratio(b[common].to_numpy(), a[common].to_numpy())
            changed = bool(ratio.low == ratio.low and (ratio.low > 1 or ratio.high < 1))
            rows.append({"variant": variant, "from": earlier, "to": later, "ratio": ratio.point, "ci95_low": ratio.low,
                         "ci95_high": ratio.high, "repetitions": ratio.repetitions, "changed": changed,
                         "label": (f"release {later}: {variant} {ratio.point - 1:+.0%} (CI {ratio.low - 1:+.0%}..{ratio.high - 1:+.0%})"
                                   if changed else "")})
    return pd.DataFrame(rows)


def compile_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per release and compiled workload: the median over repetitions of each repetition's median compile time."""
    rows = compiles_of(table)
    if rows.empty:
        return pd.DataFrame(columns=["release", "workload", "status", "compile_us_p50", "module_bytes", "engine_features", "error"])
    ok = rows[rows["status"] == "ok"]
    if "engine_features" not in ok:
        ok = ok.assign(engine_features="")
    frame = ok.groupby(["release", "workload"], sort=False).agg(compile_us_p50=("compile_us_p50", "median"),
                                                               compile_us_min=("compile_us_min", "min"),
                                                               module_bytes=("module_bytes", "first"),
                                                               repetitions=("compile_us_p50", "size"),
                                                               engine_features=("engine_features", "first")).reset_index()
    frame = frame.assign(status="ok", error="")
    # A release that cannot compile a module (or failed to) keeps a row saying why, beside the timings of the others.
    others = rows[rows["status"] != "ok"].drop_duplicates(["release", "workload"])
    others = others[~others.set_index(["release", "workload"]).index.isin(frame.set_index(["release", "workload"]).index)]
    if not others.empty:
        frame = pd.concat([frame, others[["release", "workload", "status", "error"]].assign(engine_features="")], ignore_index=True)
    order = sorted(frame["release"].unique(), key=version_key)
    frame["release"] = pd.Categorical(frame["release"], categories=order, ordered=True)
    return frame.sort_values(["workload", "release"]).reset_index(drop=True)
