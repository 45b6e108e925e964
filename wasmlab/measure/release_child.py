"""One repetition of one wasmtime release, in a child process of its own (:func:`run_job`, served by
:mod:`wasmlab.measure.child` for :func:`wasmlab.measure.release_run.run_child`).

The job is a dict: the release's version, its library's path, the workload spec, the variants in the order to
run them, requests, warm-up, pool knobs and cache size.  Before the library is opened, this process hashes the
very path it opens and refuses (a :class:`~wasmlab.errors.ConfigError`, one line) a file whose SHA-256 is not the
manifest's pin for the release; every row carries the digest computed here.  The library is opened
with ``dlopen`` by the native driver (``wasmlab._native.Library``); engines are made through that library's
own functions (``wasmlab._native.Engine``), so nothing of the installed wasmtime-py is used for the request.
A variant the release cannot serve (pooling before 32.0.0, which lacks its functions) is reported ``unsupported`` with
the missing function.  The result: a row per variant.  A release that aborts takes only this process down; the
parent records it as a crash.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from wasmlab import _native
from wasmlab.host.callpaths import PHASES, native_component
from wasmlab.host.callpaths.native import add_workload
from wasmlab.host.releases import verified_digest
from wasmlab.host.variant import parse_variant
from wasmlab.measure import linux_counters
from wasmlab.measure.stats import describe_ns
from wasmlab.workloads import load_workload


def _vmsize_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one release's repetition (see the module docstring)."""
    path = job["library"]
    # The file about to be opened, hashed in the process that opens it (a user's build: against its label's digest).
    digest = verified_digest(job["release"], path, user_sha256=job.get("user_sha256", ""))
    library = _native.Library(path=path)
    workload = load_workload(job["workload"])
    pooling = {name: int(value) for name, value in job["pooling"].items()}
    engines: dict[str, Any] = {}
    reserved: dict[str, float] = {}
    rows = []
    base = {"release": job["release"], "library_sha256": digest, "workload": workload.name,
            "repetition": job["repetition"], "requests": job["requests"], "warmup": job["warmup"]}
    unserved = component_refusal(library, job, bool(workload.wasi)) if workload.component else None
    for position, name in enumerate(job["variants"]):
        variant = parse_variant(name)
        row: dict[str, Any] = {**base, "kind": "request", "variant": variant.name, "position": position}
        if variant.disk or variant.wasmtime_cache:
            rows.append({**row, "status": "unsupported", "error": "the native driver compiles in memory (no disk or wtcache)"})
            continue
        if unserved or (workload.component and variant.pre):
            rows.append({**row, "status": "unsupported", "error": unserved or "the component C API has no InstancePre for components"})
            continue
        kind = "pooled" if variant.pooled else "on-demand"
        try:
            if kind not in engines:
                before = _vmsize_mib()
                engines[kind] = _native.Engine(library, pooling if variant.pooled else None)
                reserved[kind] = _vmsize_mib() - before
            driver = _native.Driver(library, engines[kind], cache_capacity=job["cache_size"] if variant.cached else 0, pre=variant.pre)
            if workload.component:  # with a recipe's stubs of its imports (a release without their functions: unsupported)
                driver.add_component(native_component.plan(workload, None, native_component.stub_plans(workload.stubs)))
        except LookupError as exc:
            rows.append({**row, "status": "unsupported", "error": str(exc).replace(job["library"], f"of release {job['release']}")})
            continue
        if not workload.component:
            add_workload(driver, workload)
        warm = np.zeros(max(job["warmup"], 1), dtype=np.int32)
        driver.run(warm, np.zeros((warm.size, _native.RECORD_WORDS), dtype=np.int64))
        driver.take_stats()
        n = job["requests"]
        records = np.zeros((n, _native.RECORD_WORDS), dtype=np.int64)
        start = linux_counters.counts()
        wall, message = driver.run(np.zeros(n, dtype=np.int32), records)
        spent = linux_counters.counts() - start
        stats = driver.take_stats()
        outcomes = records[:, 1]
        ok = outcomes == _native.OUT_OK
        phases = _phase_medians(driver, min(n, 500))
        driver.close()
        rows.append({
            **row, "status": "ok" if ok.all() else "failed", "error": first_line(message or ""),
            **(describe_ns(records[ok, 0]) if ok.any() else {}),
            "total_ms": float(records[:, 0].sum()) / 1e6, "wall_ms": wall / 1e6, "outcome_ok": int(ok.sum()),
            "failed_requests": int((~ok).sum()), "compile_ms_total": stats["compile_ns"] / 1e6,
            "compile_us_per_miss": stats["compile_ns"] / 1000 / max(stats["misses"], 1), "cache_hits": stats["hits"],
            "cache_misses": stats["misses"], "vmsize_mib_reserved_by_engine": reserved[kind], **spent.per_request(n), **phases,
        })
    rows.extend(compile_rows(job, library, engines, base))
    return rows


def component_refusal(library: Any, job: dict[str, Any], wasi: bool) -> str | None:
    """Why the job's release's library cannot serve a component on the native driver (its component C API, or the WASI
    functions a component importing ``wasi:*`` needs, missing), or ``None``."""
    reason: str | None = library.component_refusal()
    if not reason and wasi:
        try:
            library.enable_wasi()
        except LookupError as exc:
            reason = str(exc)
    if not reason:
        return None
    path = "libwasmtime " + job["library"]
    return f"release {job['release']}: " + reason.replace(path, "its library")


def _phase_medians(driver: Any, n: int) -> dict[str, float]:
    """Median µs of each phase over ``n`` phased requests (stamped inside the same C loop), as ``<phase>_us_p50``."""
    records = np.zeros((n, _native.RECORD_WORDS), dtype=np.int64)
    stamps = np.zeros((n, len(PHASES) + 1), dtype=np.int64)
    driver.run(np.zeros(n, dtype=np.int32), records, stamps)
    ok = records[:, 1] == _native.OUT_OK
    if not ok.any():
        return {}
    durations = np.diff(stamps[ok], axis=1) / 1000
    return {f"{phase}_us_p50": float(np.median(durations[:, k])) for k, phase in enumerate(PHASES)}


def compile_rows(job: dict[str, Any], library: Any, engines: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Compile time of each of ``job["compile"]``'s workloads on this release's on-demand engine, ``compile_repeats`` times."""
    rows = []
    for spec in job.get("compile", []):
        workload = load_workload(spec)
        row: dict[str, Any] = {**base, "kind": "compile", "variant": f"compile {workload.name}", "workload": workload.name}
        if workload.component:
            rows.append({**row, "status": "unsupported", "error": "components are not compiled by the native driver"})
            continue
        if "on-demand" not in engines:  # made once, and only when a module is compiled
            engines["on-demand"] = _native.Engine(library, None)
        repeats, features = int(job.get("compile_repeats", 3)), ""
        try:
            times = np.asarray(engines["on-demand"].compile(workload.wasm, repeats), dtype=np.float64) / 1000
        except ValueError as exc:
            # A module that uses a proposal the release leaves off by default is compiled with it turned on, as a host
            # of that release would; a release that cannot turn it on cannot compile the module.
            feature = needed_feature(str(exc))
            reason = first_line(str(exc).removeprefix("the module does not compile: "))
            if feature is None:
                rows.append({**row, "status": "failed", "error": reason})
                continue
            try:
                engine = engines.setdefault(f"on-demand+{feature}", _native.Engine(library, None, {feature: True}))
                times = np.asarray(engine.compile(workload.wasm, repeats), dtype=np.float64) / 1000
            except (LookupError, ValueError) as again:
                rows.append({**row, "status": "unsupported",
                             "error": f"release {job['release']} cannot compile it ({reason}) and " + first_line(str(again)).replace(f"libwasmtime {job['library']}", "its library")})
                continue
            features = feature
        rows.append({**row, "status": "ok", "error": "", "compile_us_p50": float(np.median(times)), "compile_us_min": float(times.min()),
                     "compile_repeats": int(times.size), "module_bytes": len(workload.wasm), "engine_features": features})
    return rows


# The proposal a parse error names (wasmparser says "exceptions proposal not enabled" or "... not supported without
# the exception handling feature"), as wasmtime_config_wasm_<proposal>_set spells it.
_FEATURES = {"exception handling": "exceptions", "exceptions": "exceptions", "gc": "gc", "threads": "threads",
             "tail calls": "tail_call", "tail call": "tail_call", "function references": "function_references",
             "memory64": "memory64", "multi-memory": "multi_memory", "multi memory": "multi_memory",
             "relaxed SIMD": "relaxed_simd", "wide arithmetic": "wide_arithmetic"}


def needed_feature(message: str) -> str | None:
    """The proposal a module needs that the engine left off, from wasmtime's parse error, or ``None``."""
    found = re.search(r"without the ([\w -]+?) feature", message) or re.search(r"([\w -]+?) (?:proposal|support) (?:is )?not enabled", message)
    return _FEATURES.get(found.group(1).strip()) if found else None


def first_line(text: str) -> str:
    """The cause of a wasmtime error on one line: its last 'Caused by' line, or its first."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Caused by:" in lines:
        after = lines[lines.index("Caused by:") + 1:]
        causes = [line for line in after if not line.startswith(("Stack backtrace", "0:", "1:")) and not line[:1].isdigit()]
        if causes:
            return causes[0]
    return lines[0] if lines else text

