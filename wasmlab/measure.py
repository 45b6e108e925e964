"""Runs a request trace through runtimes and measures it honestly.

What it does, and why:

* warm-up requests per variant before anything is timed (caches filled, pool slots warm,
  code paths hot); the cache counters are reset after it, so hit rates describe timed requests;
* ``repeats`` repetitions; in each, every variant serves the whole trace once, in an order
  rotated per repetition, so slow drift of the machine is spread over all variants;
* one ``perf_counter_ns`` sample per request, with the cyclic GC off inside timed loops;
* calibration of the timer, of the harness loop itself and of one C call made the way the
  lean path makes its calls, reported beside the figures;
* page faults (``getrusage``), RSS and virtual size before and after each block;
* machine hygiene as pyperf does it: optional CPU pinning, the load average and other
  processes' CPU time during the run, and a warning when the machine was busy.

A variant that fails (for example a module that does not fit the pool) is recorded with its
error and dropped from later repetitions; the other variants' figures are kept.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
import os
import resource
import time
import timeit
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import psutil
import wasmtime

from wasmlab import metadata as md
from wasmlab.config import MiB
from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.outcomes import KINDS, OK, classify, first_line, kind_of
from wasmlab.runtime import LEAN_CROSSINGS_PER_REQUEST, PHASES, Runtime, crossing_probe
from wasmlab.stats import describe_ns, variant_table
from wasmlab.traces import Trace

# Other processes' CPU use, in cores, above which a run is flagged as taken on a busy machine.
BUSY_CORES = 0.25


@dataclass(frozen=True)
class MeasureConfig:
    """How a measurement is taken."""

    warmup: int = 200
    repeats: int = 5
    phases: bool = False
    cpu: int | None = None
    keep_samples: bool = True

    def __post_init__(self) -> None:
        for name, minimum in (("warmup", 0), ("repeats", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} = {value!r} is out of range; allowed: an integer >= {minimum}")
        if self.cpu is not None:
            available = sorted(os.sched_getaffinity(0))
            if self.cpu not in available:
                raise ConfigError(f"cpu = {self.cpu!r} is not available; allowed: one of {available}")


@dataclass
class Measurement:
    """The outcome of one run: tidy tables plus what is needed to trust them."""

    summary: pd.DataFrame
    samples: pd.DataFrame
    phases: pd.DataFrame
    metadata: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    # Derived tables (bootstrap intervals are the slow part), computed once per measurement.
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def busy(self) -> bool:
        return bool(self.metadata.get("machine_busy"))

    @classmethod
    def load(cls, folder: Any) -> "Measurement":
        """A measurement saved by ``results.save_measurement``."""
        from wasmlab.results import load_run

        run = load_run(folder)
        metadata = dict(run["metadata"])
        errors = metadata.pop("errors", {}) or {}
        return cls(run["summary"], run["samples"], run["phases"], metadata, errors)

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result, computed once: the tables are read-only once measured."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def variants(self, reference: str | None = "baseline") -> pd.DataFrame:
        """One row per variant with pooled percentiles and the speedup over ``reference``."""
        return self.derived(("variants", reference), lambda: variant_table(
            self.summary, self.samples if not self.samples.empty else None, reference))


def _memory() -> tuple[float, float]:
    info = psutil.Process().memory_info()
    return info.rss / MiB, info.vms / MiB


def _faults() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


# What a request may end with without stopping its variant: wasmtime's traps and errors (classified
# by ``outcomes.classify``).  The lab's own errors (a module that does not compile, a missing
# export, a wrong result) stop the variant instead.
REQUEST_FAILURES = (wasmtime.Trap, wasmtime.WasmtimeError)


def _timed_loop(handle: Callable[[int], object], indices: Sequence[int], out: list[int],
                failures: list[tuple[int, BaseException]] | None = None) -> int:
    """Time each request; return the block's wall time in ns.  Kept minimal: it is the harness overhead.

    A request that fails with a trap or a wasmtime error is timed too and recorded in ``failures``.
    """
    clock = time.perf_counter_ns
    i = 0
    start = clock()
    for index in indices:
        t0 = clock()
        try:
            handle(index)
        except REQUEST_FAILURES as exc:
            out[i] = clock() - t0
            if failures is None:
                raise
            failures.append((i, exc))
            i += 1
            continue
        out[i] = clock() - t0
        i += 1
    return clock() - start


def calibrate(engine: wasmtime.Engine | None = None, rounds: int = 20000) -> dict[str, float]:
    """The harness's own costs, in ns: a ``perf_counter_ns`` pair, the timed loop around a
    no-op handler, and one C call made the way the lean path makes them."""
    clock = time.perf_counter_ns
    pairs = np.empty(rounds, dtype=np.int64)
    for i in range(rounds):
        t0 = clock()
        pairs[i] = clock() - t0
    noop_samples = [0] * rounds
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _timed_loop(lambda index: None, [0] * rounds, noop_samples)
    finally:
        if gc_was_enabled:
            gc.enable()
    probe = crossing_probe(engine or wasmtime.Engine())
    crossing = min(timeit.repeat(probe, number=rounds, repeat=5)) / rounds * 1e9
    return {
        "timer_overhead_ns": float(np.median(pairs)),
        "harness_overhead_ns": float(np.median(noop_samples)),
        "crossing_ns": crossing,
        "lean_dispatch_ns_estimate": crossing * LEAN_CROSSINGS_PER_REQUEST,
    }


class _Hygiene:
    """Load average and other processes' CPU time across a run."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.load_before = os.getloadavg()
        self._system = self._busy_seconds()
        self._own = self._own_seconds()
        self._wall = time.monotonic()

    @staticmethod
    def _busy_seconds() -> float:
        t = psutil.cpu_times()
        return float(sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")))

    def _own_seconds(self) -> float:
        t = self._proc.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def finish(self) -> dict[str, Any]:
        wall = max(time.monotonic() - self._wall, 1e-9)
        other = max(0.0, (self._busy_seconds() - self._system) - (self._own_seconds() - self._own))
        load_after = os.getloadavg()
        other_cores = other / wall
        return {
            "loadavg_1m_before": self.load_before[0],
            "loadavg_1m_after": load_after[0],
            "other_cpu_cores": other_cores,
            "run_wall_s": wall,
            "machine_busy": other_cores > BUSY_CORES,
        }


def _pin(cpu: int | None) -> set[int] | None:
    if cpu is None:
        return None
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    return previous


def _runtime_columns(runtime: Runtime) -> dict[str, Any]:
    cache = runtime.cache
    return {
        "variant": runtime.variant.name,
        "allocator": runtime.variant.allocator,
        "instantiation": runtime.variant.instantiation,
        "cache_policy": cache.config.policy,
        "cache_size": cache.config.size if cache.config.policy != "none" else 0,
        "call_path": runtime.call_path,
    }


def measure(
    runtimes: Mapping[str, Runtime],
    trace: Trace,
    config: MeasureConfig = MeasureConfig(),
    parameters: Mapping[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Measurement:
    """Serve ``trace`` with every runtime, interleaved, and return tidy results.

    ``parameters`` (the knobs that built the runtimes) are stored with the results.
    ``progress(variant, repetition, repeats)`` is called before each timed block.
    """
    if not runtimes:
        raise ConfigError("no runtimes to measure")
    indices = list(trace.indices)
    names = list(runtimes)
    run = md.new_run()
    previous_affinity = _pin(config.cpu)
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    sample_frames: list[pd.DataFrame] = []
    phase_frames: list[pd.DataFrame] = []
    try:
        calibration = calibrate(next(iter(runtimes.values())).engine)
        hygiene = _Hygiene()
        for name in names:
            try:
                _warm_up(runtimes[name], indices, config.warmup)
            except WasmlabError as exc:
                errors[name] = first_line(exc)
                rows.append({**_runtime_columns(runtimes[name]), "repetition": 0, "status": "error", "error": errors[name]})
        samples = [0] * len(indices)
        outcomes = [OK] * len(indices)
        for rep in range(config.repeats):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for position, name in enumerate(order):
                if name in errors:
                    continue
                runtime = runtimes[name]
                if progress is not None:
                    progress(name, rep, config.repeats)
                try:
                    row = _block(runtime, indices, samples, outcomes)
                    if config.phases:
                        phase_frames.append(_phased_block(runtime, indices, rep))
                except WasmlabError as exc:
                    errors[name] = first_line(exc)
                    rows.append({**_runtime_columns(runtime), "repetition": rep, "status": "error", "error": errors[name]})
                    continue
                rows.append({**row, "repetition": rep, "position": position, "status": "ok", "error": ""})
                if config.keep_samples:
                    sample_frames.append(
                        pd.DataFrame(
                            {
                                "variant": name,
                                "repetition": rep,
                                "request_index": np.arange(len(indices), dtype=np.int32),
                                "workload_index": np.asarray(indices, dtype=np.int32),
                                "latency_ns": np.asarray(samples, dtype=np.int64),
                                "outcome": pd.Categorical(outcomes),
                            }
                        )
                    )
        hygiene_info = hygiene.finish()
    finally:
        for runtime in runtimes.values():
            runtime.close()
        if previous_affinity is not None:
            os.sched_setaffinity(0, previous_affinity)

    meta = {
        **run,
        **calibration,
        **hygiene_info,
        **trace.describe(),
        "requests": len(indices),
        "warmup": config.warmup,
        "repeats": config.repeats,
        "phases": config.phases,
        "cpu_pinned": config.cpu if config.cpu is not None else -1,
        "gc_disabled_in_timed_loops": True,
        "variant_order": "rotated per repetition",
        "parameters": dict(parameters or {}),
    }
    if meta["machine_busy"]:
        warnings.warn(
            f"the machine was busy during this run: other processes used {meta['other_cpu_cores']:.2f} cores "
            f"(load average {meta['loadavg_1m_before']:.2f} -> {meta['loadavg_1m_after']:.2f}); figures may be noisy",
            RuntimeWarning,
            stacklevel=2,
        )
    return Measurement(
        summary=_with_metadata(pd.DataFrame(rows), meta),
        samples=_with_run(pd.concat(sample_frames, ignore_index=True) if sample_frames else _empty_samples(), run),
        phases=_with_run(pd.concat(phase_frames, ignore_index=True) if phase_frames else _empty_phases(), run),
        metadata=meta,
        errors=errors,
    )


def _warm_up(runtime: Runtime, indices: list[int], count: int) -> None:
    handle = runtime.handle
    for i in range(count):
        try:
            handle(indices[i % len(indices)])
        except REQUEST_FAILURES:
            pass  # a hostile guest fails every request; its outcomes are counted when timed
    runtime.cache.reset_stats()


def _block(runtime: Runtime, indices: list[int], samples: list[int], outcomes: list[str]) -> dict[str, Any]:
    runtime.cache.reset_stats()
    waits_before, wait_ns_before = runtime.pool_waits, runtime.pool_wait_ns
    failures: list[tuple[int, BaseException]] = []
    gc.collect()
    rss0, vms0 = _memory()
    minflt0, majflt0 = _faults()
    gc.disable()
    try:
        wall_ns = _timed_loop(runtime.handle, indices, samples, failures)
    finally:
        gc.enable()
    minflt1, majflt1 = _faults()
    rss1, vms1 = _memory()
    n = len(indices)
    for k in range(n):
        outcomes[k] = OK
    for k, exc in failures:
        outcomes[k] = classify(exc, runtime.memory_limit)
    counts = Counter(outcomes[:n])
    kinds = Counter(kind_of(o) for o in outcomes[:n])
    return {
        **_runtime_columns(runtime),
        "requests": n,
        **describe_ns(samples),
        "total_ms": sum(samples) / 1e6,
        "wall_ms": wall_ns / 1e6,
        "throughput_rps": n / (wall_ns / 1e9),
        "minor_faults_per_request": (minflt1 - minflt0) / n,
        "major_faults_per_request": (majflt1 - majflt0) / n,
        "rss_mib_before": rss0,
        "rss_mib_after": rss1,
        "vmsize_mib_before": vms0,
        "vmsize_mib_after": vms1,
        **runtime.cache.stats.as_dict(),
        **{f"outcome_{kind}": kinds.get(kind, 0) for kind in KINDS},
        "outcomes_json": json.dumps(dict(sorted(counts.items()))),
        "first_failure": first_line(failures[0][1]) if failures else "",
        "pool_waits": runtime.pool_waits - waits_before,
        "pool_wait_ms": (runtime.pool_wait_ns - wait_ns_before) / 1e6,
    }


def _phased_block(runtime: Runtime, indices: list[int], repetition: int) -> pd.DataFrame:
    """Each request with a timestamp between phases; long format: one row per request and phase."""
    n = len(indices)
    stamps = np.empty((n, len(PHASES) + 1), dtype=np.int64)
    row = [0] * (len(PHASES) + 1)
    handle = runtime.handle_phased
    ok = np.ones(n, dtype=bool)
    gc.collect()
    gc.disable()
    try:
        for i, index in enumerate(indices):
            try:
                handle(index, row)
            except REQUEST_FAILURES:
                ok[i] = False  # its phases are incomplete: left out of the phase table
                continue
            stamps[i] = row
    finally:
        gc.enable()
    stamps, request_ids = stamps[ok], np.arange(n, dtype=np.int32)[ok]
    n = int(ok.sum())
    durations = np.diff(stamps, axis=1)
    return pd.DataFrame(
        {
            "variant": runtime.variant.name,
            "call_path": runtime.call_path,
            "repetition": repetition,
            "request_index": np.repeat(request_ids, len(PHASES)),
            "phase": np.tile(np.array(PHASES), n),
            "duration_ns": durations.reshape(-1),
        }
    )


def _empty_samples() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("repetition", "int64"), ("request_index", "int32"), ("workload_index", "int32"), ("latency_ns", "int64"), ("outcome", "object"))})


def _empty_phases() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("call_path", "object"), ("repetition", "int64"), ("request_index", "int32"), ("phase", "object"), ("duration_ns", "int64"))})


def _with_run(frame: pd.DataFrame, run: Mapping[str, Any]) -> pd.DataFrame:
    frame.insert(0, "run_id", run["run_id"])
    return frame


def _with_metadata(frame: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """Every summary row carries the run's metadata, flattened into columns (parameters as JSON)."""
    for key, value in meta.items():
        if key == "parameters":
            frame["parameters_json"] = json.dumps(value, sort_keys=True, default=str)
        elif key not in frame.columns:
            frame[key] = value
    return frame

