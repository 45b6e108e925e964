"""Runs a request trace through runtimes and measures it honestly.

What it does, and why:

* warm-up requests per variant before anything is timed (caches filled, pool slots warm,
  code paths hot); the cache counters are reset after it, so hit rates describe timed requests;
* ``repeats`` repetitions; in each, every variant serves the whole trace once, in a Williams design
  (:mod:`~wasmlab.measure.order`): each variant takes each position and follows each other equally often;
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
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from wasmlab.config import MiB
from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.host.callpaths import PHASES
from wasmlab.host.outcomes import KINDS, OK, REQUEST_FAILURES, classify, first_line, kind_of
from wasmlab.host.runtime import Runtime
from wasmlab.measure import linux_counters, order
from wasmlab.measure import metadata as md
from wasmlab.measure.calibrate import Crossings, cache_lookup_ns, calibrate, count_crossings, timed_loop
from wasmlab.measure.hygiene import Hygiene, pin
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.stats import LATENCY_STATISTICS, describe_ns
from wasmlab.measure.traces import Trace
from wasmlab.workloads.model import Workload

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built, not by every command that imports this
    import pandas as pd


@dataclass(frozen=True)
class MeasureConfig:
    """How a measurement is taken."""

    warmup: int = 200
    repeats: int = 5
    phases: bool = False
    cpu: int | None = None
    keep_samples: bool = True
    # Each repetition serves its trace in this many rounds; in each round every variant serves the next
    # slice of the trace, in the repetition's order.  A machine that drifts between states (frequency,
    # a neighbour's load) then shifts the variants of one repetition alike, so the paired ratios over
    # repetitions are not at the mercy of which state a short block happened to fall in.  Capped so that
    # a slice holds at least ``MIN_SLICE`` requests; a trace of several modules is served in one round
    # (see :func:`rounds_for`).
    rounds: int = 10

    def __post_init__(self) -> None:
        for name, minimum in (("warmup", 0), ("repeats", 1), ("rounds", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} = {value!r} is out of range; allowed: an integer >= {minimum}")
        if self.cpu is not None:
            available = sorted(os.sched_getaffinity(0))
            if self.cpu not in available:
                raise ConfigError(f"cpu = {self.cpu!r} is not available; allowed: one of {available}")


# The fewest requests a round's slice holds: below it, the switch between variants (their code and data
# leaving the CPU's caches) would be a visible part of each slice.
MIN_SLICE = 25


# Untimed requests before each slice when a repetition has several: after another variant's slice, the first
# request or two of a slice find the CPU's caches and TLB full of the other variant's code and data (measured
# here: ~35 µs for the first pooled+cached request after a baseline slice, ~10 for the second, ~9 after),
# a cost of the lab's interleaving, not of the variant; one block per variant pays it once, slices would
# pay it each time.
REWARM_PER_SLICE = 2


def rounds_for(indices: Sequence[int], rounds: int) -> int:
    """The rounds a trace is served in: ``rounds`` for a trace of one module; one for a trace of several,
    where the untimed requests before each slice (:data:`REWARM_PER_SLICE`) would change what the cache
    holds when the timed ones run."""
    return rounds if len(set(indices)) <= 1 else 1


def slices(requests: int, rounds: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` of each round's slice of a trace of ``requests``: ``rounds`` slices of nearly
    equal size, fewer when a slice would hold less than :data:`MIN_SLICE` requests (one at least)."""
    count = max(1, min(rounds, requests // MIN_SLICE))
    bounds = [round(k * requests / count) for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(count)]


def _memory() -> tuple[float, float]:
    info = psutil.Process().memory_info()
    return info.rss / MiB, info.vms / MiB


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
    import pandas as pd

    if not runtimes:
        raise ConfigError("no runtimes to measure")
    indices = list(trace.indices)
    names = list(runtimes)
    run = md.new_run()
    previous_affinity = pin(config.cpu)
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    sample_frames: list[pd.DataFrame] = []
    phase_frames: list[pd.DataFrame] = []
    try:
        calibration = calibrate(next(iter(runtimes.values())).engine)
        hygiene = Hygiene()
        lookups: dict[str, float] = {}
        crossings: dict[str, Crossings | None] = {}
        for name in names:
            try:
                _warm_up(runtimes[name], indices, config.warmup)
                lookups[name] = cache_lookup_ns(runtimes[name], indices[0])
                crossings[name] = count_crossings(runtimes[name], indices[0])
            except WasmlabError as exc:
                errors[name] = first_line(exc)
                rows.append({**_runtime_columns(runtimes[name]), "repetition": 0, "status": "error", "error": errors[name]})
        schedule = order.orders(names, config.repeats)
        parts = slices(len(indices), rounds_for(indices, config.rounds))
        for rep in range(config.repeats):
            sequence = [name for name in schedule[rep] if name not in errors]
            blocks: dict[str, _Block] = {}
            gc.collect()
            gc.disable()  # for the whole repetition: a collection would land in one variant's slice
            try:
                for start, stop in parts:
                    for name in sequence:
                        if name in errors:
                            continue
                        runtime = runtimes[name]
                        if name not in blocks:
                            if progress is not None:
                                progress(name, rep, config.repeats)
                            blocks[name] = _Block(runtime, indices)
                        try:
                            blocks[name].serve(start, stop, rewarm=REWARM_PER_SLICE if len(parts) > 1 else 0)
                            if config.phases:
                                # Right after the timed slice, the same requests phased: both see the machine in one state.
                                phase_frames.append(_phased_block(runtime, indices[start:stop], rep, first=start, manage_gc=False))
                        except WasmlabError as exc:
                            errors[name] = first_line(exc)
                            rows.append({**_runtime_columns(runtime), "repetition": rep, "status": "error", "error": errors[name]})
            finally:
                gc.enable()
            for position, name in enumerate(sequence):
                if name in errors or name not in blocks:
                    continue
                runtime = runtimes[name]
                block = blocks[name]
                rows.append({**block.summary(), "repetition": rep, "position": position, "status": "ok", "error": "",
                             "rounds": len(parts), "cache_lookup_ns": lookups.get(name, float("nan")),
                             **_crossing_columns(crossings.get(name))})
                if config.keep_samples:
                    sample_frames.append(
                        pd.DataFrame(
                            {
                                "variant": name,
                                "repetition": rep,
                                "request_index": np.arange(len(indices), dtype=np.int32),
                                "workload_index": np.asarray(indices, dtype=np.int32),
                                "latency_ns": np.asarray(block.samples, dtype=np.int64),
                                "outcome": pd.Categorical(block.outcomes),
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
        "variant_order": order.describe(len(names), config.repeats),
        "rounds": len(slices(len(indices), rounds_for(indices, config.rounds))),
        "rewarm_per_slice": REWARM_PER_SLICE if len(slices(len(indices), rounds_for(indices, config.rounds))) > 1 else 0,
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


def _crossing_columns(crossings: Crossings | None) -> dict[str, float]:
    """A variant's counted C calls per request and their ctypes cost (``nan`` where the count failed)."""
    if crossings is None:
        return {"crossings_per_request": float("nan"), "dispatch_ns_per_request": float("nan")}
    return {"crossings_per_request": crossings.count, "dispatch_ns_per_request": crossings.dispatch_ns}


def _warm_up(runtime: Runtime, indices: list[int], count: int) -> None:
    handle = runtime.handle
    for i in range(count):
        try:
            handle(indices[i % len(indices)])
        except REQUEST_FAILURES:
            pass  # a hostile guest fails every request; its outcomes are counted when timed
    runtime.cache.reset_stats()


def expected_kind(workload: Workload) -> str:
    """The outcome kind a request of ``workload`` is expected to end with (``ok``, or what a hostile guest provokes)."""
    return kind_of(workload.expected_outcome)


class _Block:
    """One variant's timed requests in one repetition, served slice by slice (see ``MeasureConfig.rounds``)
    with the cyclic GC off; :meth:`summary` is its row of the summary table."""

    def __init__(self, runtime: Runtime, indices: list[int]) -> None:
        self.runtime = runtime
        self.indices = indices
        runtime.cache.reset_stats()
        self.waits_before, self.wait_ns_before = runtime.pool_waits, runtime.pool_wait_ns
        n = len(indices)
        self.samples = [0] * n
        self.outcomes = [OK] * n
        self.failures: list[tuple[int, BaseException]] = []
        self.wall_ns = 0
        self.kernel = linux_counters.ZERO
        self.rss0, self.vms0 = _memory()
        # A guest that fails every request (a hostile one) has no warm state to restore.
        self.expects_ok = all(expected_kind(w) == OK for w in runtime.workloads)

    def _rewarm(self, index: int, count: int) -> None:
        runtime, stats = self.runtime, self.runtime.cache.stats
        counters = (stats.hits, stats.misses, stats.evictions, stats.compile_ns)
        waits, wait_ns = runtime.pool_waits, runtime.pool_wait_ns
        for _ in range(count):
            try:
                runtime.handle(index)
            except REQUEST_FAILURES:
                pass  # it is timed and classified when it is part of a slice
        stats.hits, stats.misses, stats.evictions, stats.compile_ns = counters
        self.waits_before += runtime.pool_waits - waits
        self.wait_ns_before += runtime.pool_wait_ns - wait_ns

    def serve(self, start: int, stop: int, rewarm: int = 0) -> None:
        """Serve and time requests ``start`` to ``stop`` of the trace, after ``rewarm`` untimed ones (of the
        same module, counted nowhere: the cache's counters and the pool's waits are put back)."""
        if rewarm and self.expects_ok:
            self._rewarm(self.indices[start], rewarm)
        out = [0] * (stop - start)
        failures: list[tuple[int, BaseException]] = []
        before = linux_counters.counts()
        runtime = self.runtime
        if runtime.block is not None:  # the path times its own requests (the native loop, in C)
            self.wall_ns += runtime.block(self.indices[start:stop], out, failures)
        else:
            self.wall_ns += timed_loop(runtime.handle, self.indices[start:stop], out, failures)
        self.kernel += linux_counters.counts() - before
        self.samples[start:stop] = out
        self.failures.extend((start + k, exc) for k, exc in failures)

    def summary(self) -> dict[str, Any]:
        runtime, indices, samples, outcomes = self.runtime, self.indices, self.samples, self.outcomes
        rss1, vms1 = _memory()
        n = len(indices)
        for k, exc in self.failures:
            outcomes[k] = classify(exc, runtime.memory_limit)
        counts = Counter(outcomes)
        kinds = Counter(kind_of(o) for o in outcomes)
        # Latency and throughput describe requests that were served (ended as the workload is expected to end);
        # the others are reported beside them with their own latency, never as throughput.
        expected = [expected_kind(runtime.workloads[index]) for index in indices]
        served = [samples[k] for k in range(n) if kind_of(outcomes[k]) == expected[k]]
        failed = [samples[k] for k in range(n) if kind_of(outcomes[k]) != expected[k]]
        return {
            **_runtime_columns(runtime),
            "requests": n,
            "served_requests": len(served),
            "failed_requests": len(failed),
            **(describe_ns(served) if served else {f"latency_us_{s}": float("nan") for s in LATENCY_STATISTICS}),
            "failed_latency_us_p50": float(np.median(failed)) / 1000 if failed else float("nan"),
            "total_ms": sum(samples) / 1e6,
            "wall_ms": self.wall_ns / 1e6,
            "throughput_rps": len(served) / (self.wall_ns / 1e9),
            **self.kernel.per_request(n),
            "rss_mib_before": self.rss0,
            "rss_mib_after": rss1,
            "vmsize_mib_before": self.vms0,
            "vmsize_mib_after": vms1,
            **runtime.cache.stats.as_dict(),
            **{f"outcome_{kind}": kinds.get(kind, 0) for kind in KINDS},
            "outcomes_json": json.dumps(dict(sorted(counts.items()))),
            "first_failure": first_line(self.failures[0][1]) if self.failures else "",
            "pool_waits": runtime.pool_waits - self.waits_before,
            "pool_wait_ms": (runtime.pool_wait_ns - self.wait_ns_before) / 1e6,
        }


def _phased_block(runtime: Runtime, indices: list[int], repetition: int, first: int = 0, manage_gc: bool = True) -> pd.DataFrame:
    """Each request with a timestamp between phases; long format: one row per request and phase.  ``first`` is the
    trace position of ``indices[0]``; ``manage_gc`` False when the caller already turned the cyclic GC off."""
    import pandas as pd

    n = len(indices)
    stamps = np.empty((n, len(PHASES) + 1), dtype=np.int64)
    row = [0] * (len(PHASES) + 1)
    handle = runtime.handle_phased
    ok = np.ones(n, dtype=bool)
    step_stamps = runtime.step_stamps
    steps: list[tuple[int, int, list[int]]] = []  # (position in block, workload index, the request's step stamps)
    was_enabled = gc.isenabled()
    if manage_gc:
        gc.collect()
    gc.disable()
    try:
        if runtime.block_phased is not None:  # the path stamps inside its own loop (native: in C), one call for the block
            served, block_steps = runtime.block_phased(indices, stamps)
            ok = np.asarray(served, dtype=bool)
            steps = [(i, index, block_steps[i]) for i, index in enumerate(indices) if ok[i] and block_steps[i]]
        else:
            for i, index in enumerate(indices):
                try:
                    handle(index, row)
                except REQUEST_FAILURES:
                    ok[i] = False  # its phases are incomplete: left out of the phase table
                    continue
                stamps[i] = row
                if index in step_stamps:
                    steps.append((i, index, step_stamps[index][:]))
    finally:
        if was_enabled:
            gc.enable()
    stamps, request_ids = stamps[ok], np.arange(first, first + n, dtype=np.int32)[ok]
    n = int(ok.sum())
    durations = np.diff(stamps, axis=1)
    frame = pd.DataFrame(
        {
            "variant": runtime.variant.name,
            "call_path": runtime.call_path,
            "repetition": repetition,
            "request_index": np.repeat(request_ids, len(PHASES)),
            "phase": np.tile(np.array(PHASES), n),
            "step": "",
            "duration_ns": durations.reshape(-1),
        }
    )
    return pd.concat([frame, _step_rows(runtime, steps, repetition, first)], ignore_index=True) if steps else frame


def _step_rows(runtime: Runtime, steps: list[tuple[int, int, list[int]]], repetition: int, first: int) -> pd.DataFrame:
    """A recipe's steps as rows of the phase table: phase ``call`` (they are what the call phase does), ``step``
    naming each (``2. call malloc``), so that a table of phases leaves them out and a table of steps reads them."""
    import pandas as pd

    rows = []
    for position, index, stamps in steps:
        labels = runtime.workloads[index].step_labels
        for label, (start, end) in zip(labels, zip(stamps, stamps[1:])):
            rows.append((first + position, label, end - start))
    return pd.DataFrame({"variant": runtime.variant.name, "call_path": runtime.call_path, "repetition": repetition,
                         "request_index": np.array([r[0] for r in rows], dtype=np.int32), "phase": "call",
                         "step": [r[1] for r in rows], "duration_ns": np.array([r[2] for r in rows], dtype=np.int64)})


def _empty_samples() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("repetition", "int64"), ("request_index", "int32"), ("workload_index", "int32"), ("latency_ns", "int64"), ("outcome", "object"))})


def _empty_phases() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("variant", "object"), ("call_path", "object"), ("repetition", "int64"), ("request_index", "int32"), ("phase", "object"), ("step", "object"), ("duration_ns", "int64"))})


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

