"""Resident memory over a long run of the native path: flat, or growing per request (issue 26).

Each series serves its requests in this process through the lab's own native runtimes (``Scenario.build_runtimes``,
``Runtime.block``: the C request loop, GIL released), in chunks, and after each chunk samples resident memory (VmRSS
from /proc/self/status) and the allocator's view (glibc ``mallinfo2``: bytes in use, ``uordblks + hblkhd``, which
wasmtime's Rust code shares with the C driver and Python).  Series: the seed scenario's baseline and pooled+cached
variants on the core seed and the component seed (1,000,000 requests each at full size), then failures that take other
paths through the driver and wasmtime: traps (``trap``), epoch deadlines (``infinite-loop`` with a 1 ms deadline) and
an exhausted pool (one slot, held by an instance this script keeps, so every request is refused).  Every request must
end as its series expects (ok, trap, timeout, pool_exhausted), or the run stops: no series can skip its work.

Verdict per series and view: the first 10% of its requests are warm-up (the cache, the pool's slots, malloc's arenas
and Python's free lists fill), and the rest is fitted with a Theil-Sen line (``scipy.stats.theilslopes``, 95% interval):
bytes per request.  "flat" when the interval's upper bound is below the threshold (default 1 byte per request, i.e.
under 1 MiB per million requests: the smallest leak the driver could have, one malloc per request, costs at least
glibc's 32-byte minimum chunk, 32x the threshold).  RSS moves in whole pages, so for RSS the threshold is never below
two pages over the fitted requests (it only matters for short series: 0.9 B/request over 9,000 failures).

    python benchmarks/long_run_memory.py [--requests 1000000] [--failures 10000] [--chunks 100] [--plot rss.png] [--format json]

It measures memory, not time: a shared, busy machine changes its wall time, not its figures.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import wasmtime
from scipy.stats import theilslopes

from wasmlab.errors import ConfigError
from wasmlab.host.callpaths import BlockServer
from wasmlab.host.outcomes import classify
from wasmlab.host.runtime import Runtime
from wasmlab.measure.metadata import machine
from wasmlab.measure.scenario import Scenario

MiB = 1 << 20
PAGE = resource.getpagesize()
WARMUP_FRACTION = 0.1
DEFAULT_THRESHOLD = 1.0  # bytes per request: see the module's docstring


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo2() -> Callable[[], int] | None:
    """Bytes the allocator has handed out and not had back (glibc 2.33+), or ``None`` where there is no mallinfo2."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return None
    function.restype = _Mallinfo2

    def in_use() -> int:
        info = function()
        return int(info.uordblks + info.hblkhd)
    return in_use


HEAP_IN_USE = _mallinfo2()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status: this script reads Linux's view of resident memory")


@dataclass
class Fit:
    """The growth of one view of one series after its warm-up: Theil-Sen slope (bytes per request, 95% interval)."""

    slope: float
    low: float
    high: float
    threshold: float
    growth_mib: float  # last sample minus the first sample after the warm-up
    flat: bool


def verdict(requests: Sequence[int], values: Sequence[int], threshold: float = DEFAULT_THRESHOLD,
            granularity: int = 1) -> Fit:
    """Whether ``values`` (bytes, sampled after ``requests`` requests, cumulative) grow after the first 10% of the
    requests: flat when the upper bound of the Theil-Sen slope's 95% interval is below ``threshold`` bytes per request,
    raised to two ``granularity`` steps (a page, for RSS) over the fitted requests."""
    x = np.asarray(requests, dtype=float)
    y = np.asarray(values, dtype=float)
    fitted = x > WARMUP_FRACTION * x[-1]
    if fitted.sum() < 3:
        raise ConfigError(f"{int(fitted.sum())} samples after the warm-up; allowed: at least 3 (serve more chunks)")
    x, y = x[fitted], y[fitted]
    slope, _, low, high = theilslopes(y, x, alpha=0.95)
    bound = max(threshold, 2 * granularity / float(x[-1] - x[0])) if granularity > 1 else threshold
    return Fit(float(slope), float(low), float(high), bound, float(y[-1] - y[0]) / MiB, bool(high < bound))


@dataclass(frozen=True)
class Plan:
    """One series: a variant of a scenario served ``count`` times, each request ending as ``expect``."""

    name: str
    scenario: Callable[[], Scenario]
    variant: str
    expect: str
    count: int
    hold_slot: bool = False  # keep the only pool slot busy, so every request finds the pool exhausted


@dataclass
class Series:
    name: str
    expect: str
    requests: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    heap: list[int] = field(default_factory=list)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    wall_s: float = 0.0
    fits: dict[str, Fit] = field(default_factory=dict)
    taken: int = 0

    def reserve(self, samples: int) -> None:
        """Room for every sample, made before the first: lists that grew while sampling were the script's own growth
        (three lists reallocated at 76 samples showed as 2.4 KiB more malloc in use at 76% of every failure series)."""
        self.requests, self.rss, self.heap = [0] * samples, [0] * samples, [0] * samples
        self.taken = 0

    def sample(self, served: int) -> None:
        gc.collect()  # Python's own garbage is not the driver's growth (cheap: what existed before the series is frozen)
        k = self.taken
        self.requests[k], self.rss[k] = served, rss_bytes()
        if HEAP_IN_USE is not None:
            self.heap[k] = HEAP_IN_USE()
        self.taken += 1

    def trim(self) -> None:
        """The samples taken, no room left over."""
        self.requests, self.rss = self.requests[:self.taken], self.rss[:self.taken]
        self.heap = self.heap[:self.taken] if HEAP_IN_USE is not None else []

    def judge(self, threshold: float) -> None:
        self.fits["rss"] = verdict(self.requests, self.rss, threshold, PAGE)
        if self.heap:
            self.fits["heap"] = verdict(self.requests, self.heap, threshold)

    @property
    def flat(self) -> bool:
        return all(f.flat for f in self.fits.values())


def plans(requests: int, failures: int) -> list[Plan]:
    """The series at these sizes: the seed scenario's variants on the core and component seeds, then each failure."""
    def native(workload: str, variants: Sequence[str], **flat: Any) -> Callable[[], Scenario]:
        return lambda: Scenario(workload=workload, variants=tuple(variants), call_path="native", **flat)

    out = [Plan(f"{workload} {variant}", native(workload, [variant]), variant, "ok", requests)
           for workload in ("seed", "component-seed") for variant in ("pooled+cached", "baseline")]
    out += [Plan("trap", native("trap", ["pooled+cached"]), "pooled+cached", "trap", failures),
            Plan("deadline 1 ms", native("infinite-loop", ["pooled+cached"], limits={"deadline_ms": 1}), "pooled+cached",
                 "timeout", failures),
            Plan("pool exhausted", native("seed", ["pooled+cached"], preset=None, slots=1), "pooled+cached",
                 "pool_exhausted", failures, hold_slot=True)]
    return out


@contextmanager
def slot_held(runtime: Runtime, hold: bool) -> Iterator[None]:
    """The pool's only slot taken by an instance of the runtime's own module on its own engine, while inside."""
    if not hold:
        yield
        return
    store = wasmtime.Store(runtime.engine)
    instance = wasmtime.Instance(store, wasmtime.Module(runtime.engine, runtime.workloads[0].wasm), [])
    try:
        yield
    finally:
        del instance
        store.close()


def serve_chunk(block: BlockServer, memory_limit: int, indices: list[int], out: list[int], outcomes: collections.Counter[str]) -> None:
    """One block through the C loop, each request's outcome counted: a request the loop did not time (its ns left 0)
    was not served, and counts as nothing."""
    failures: list[tuple[int, BaseException]] = []
    out[:len(indices)] = [0] * len(indices)
    block(indices, out, failures)
    outcomes.update(classify(f, memory_limit) for _, f in failures)
    outcomes["ok"] += len(indices) - out[:len(indices)].count(0) - len(failures)


def serve(plan: Plan, chunks: int) -> Series:
    """``plan`` served in ``chunks`` blocks, memory sampled before the first and after each; every outcome checked."""
    runtime = plan.scenario().build_runtimes()[plan.variant]
    series = Series(plan.name, plan.expect)
    series.reserve(chunks + 1)
    size = -(-plan.count // chunks)
    indices, out = [0] * size, [0] * size
    gc.freeze()
    began = time.perf_counter()
    try:
        block = runtime.block
        if block is None:
            raise SystemExit(f"{plan.name}: the runtime serves no blocks (not the native path)")
        with slot_held(runtime, plan.hold_slot):
            series.sample(0)
            served = 0
            while served < plan.count:
                n = min(size, plan.count - served)
                serve_chunk(block, runtime.memory_limit, indices[:n] if n < size else indices, out, series.outcomes)
                served += n
                series.sample(served)
    finally:
        runtime.close()
    series.trim()
    series.wall_s = time.perf_counter() - began
    outcomes = +series.outcomes  # zero counts dropped
    if set(outcomes) != {plan.expect} or outcomes[plan.expect] != plan.count:
        raise SystemExit(f"{plan.name}: outcomes {dict(outcomes)} of {plan.count:,} requests; every request must end {plan.expect!r}")
    series.outcomes = outcomes
    return series


def provenance(args: argparse.Namespace) -> dict[str, Any]:
    facts = machine()
    return {"machine": f"{facts['cpu_model']}, {facts['cpu_count']} cores, {platform.platform()}",
            "versions": f"Python {facts['python_version']}, wasmtime {facts['wasmtime_version']}, {' '.join(platform.libc_ver())}, "
                        f"numpy {facts['numpy_version']}, scipy {facts['scipy_version']}, commit {facts['git_commit'][:12]}",
            "settings": {"requests": args.requests, "failures": args.failures, "chunks": args.chunks,
                         "threshold_bytes_per_request": args.threshold, "warmup_fraction": WARMUP_FRACTION,
                         "preset": "seed (20 slots, LRU 16) unless said", "call_path": "native (in process)",
                         "deadline": "1 ms, epoch ticks every 1 ms", "exhausted pool": "1 slot, held by this script"},
            "method": "VmRSS from /proc/self/status and glibc mallinfo2 (uordblks + hblkhd) after each chunk (gc.collect() "
                      "first); Theil-Sen slope with its 95% interval over the samples after the first 10% of requests",
            "heap_view": HEAP_IN_USE is not None, "pid": os.getpid()}


def table(series: Sequence[Series]) -> str:
    rows = [f"{'series':<30} {'requests':>9} {'RSS start':>10} {'RSS end':>10}  {'RSS B/req (95% CI)':<26} "
            f"{'heap B/req (95% CI)':<26} {'growth MiB':>10} {'wall s':>7}  verdict"]
    for s in series:
        rss, heap = s.fits["rss"], s.fits.get("heap")
        def ci(f: Fit | None) -> str:
            return "-" if f is None else f"{f.slope:+.3f} ({f.low:+.3f}..{f.high:+.3f})"
        rows.append(f"{s.name:<30} {s.requests[-1]:>9,} {s.rss[0] / MiB:>9.1f}M {s.rss[-1] / MiB:>9.1f}M  {ci(rss):<26} "
                    f"{ci(heap):<26} {rss.growth_mib:>+10.2f} {s.wall_s:>7.1f}  {'flat' if s.flat else 'GROWS'}")
    return "\n".join(rows)


def plot(series: Sequence[Series], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(len(series), 1, figsize=(8, 2.2 * len(series)), squeeze=False)
    for ax, s in zip(axes[:, 0], series, strict=True):
        # Change since the series began, each view from its own start: a leak is a slope, whatever the process held before.
        ax.plot(s.requests, (np.asarray(s.rss) - s.rss[0]) / 1024, label=f"RSS (from {s.rss[0] / MiB:.1f} MiB)")
        if s.heap:
            ax.plot(s.requests, (np.asarray(s.heap) - s.heap[0]) / 1024, label=f"malloc in use (from {s.heap[0] / MiB:.1f} MiB)")
        ax.axvline(WARMUP_FRACTION * s.requests[-1], color="grey", linestyle=":")
        ax.set_title(f"{s.name}: {'flat' if s.flat else 'grows'} (RSS {s.fits['rss'].slope:+.3f} B/request)", fontsize=9)
        ax.set_ylabel("KiB since start")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("requests served")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def as_json(about: dict[str, Any], done: Sequence[Series], wall: float, partial: bool) -> dict[str, Any]:
    return {**about, "wall_s": wall, "partial": partial, "all_flat": all(s.flat for s in done),
            "series": [{"name": s.name, "expect": s.expect, "requests": s.requests[-1], "rss_start": s.rss[0], "rss_end": s.rss[-1],
                        "wall_s": s.wall_s, "flat": s.flat, "outcomes": dict(s.outcomes), "fits": {k: asdict(f) for k, f in s.fits.items()},
                        "samples": {"requests": s.requests, "rss": s.rss, "heap": s.heap}} for s in done]}


def refuse(message: str) -> NoReturn:
    """A bad flag: one line naming it and what is allowed, exit 2 (argparse's own errors print a usage line first)."""
    print(f"long_run_memory: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[Plan]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests per ok series")
    parser.add_argument("--failures", type=int, default=10_000, help="requests per failure series (trap, deadline, exhausted pool)")
    parser.add_argument("--chunks", type=int, default=100, help="blocks per series, memory sampled after each")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="bytes per request under which a series is flat")
    parser.add_argument("--only", default="", help="comma list of series names to run (default: all)")
    parser.add_argument("--plot", type=Path, help="write RSS and malloc's bytes in use against requests to this PNG")
    parser.add_argument("--out", type=Path, help="write the JSON result here too (marked partial if interrupted)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    for name in ("requests", "failures", "chunks"):
        if getattr(args, name) < 10:
            refuse(f"--{name} {getattr(args, name)} is out of range; allowed: an integer >= 10")
    if not args.threshold > 0:
        refuse(f"--threshold {args.threshold} is out of range; allowed: a number > 0 (bytes per request)")
    names = [p.name for p in plans(10, 10)]
    unknown = [n for n in args.only.split(",") if n and n not in names]
    if unknown:
        refuse(f"--only names series {unknown[0]!r}; allowed: {', '.join(names)}")
    return args, [p for p in plans(args.requests, args.failures) if not args.only or p.name in args.only.split(",")]


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main(argv: Sequence[str] | None = None) -> int:
    args, chosen = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    about = provenance(args)
    if args.format == "table":
        print(f"Machine: {about['machine']}\nVersions: {about['versions']}\nSettings: {about['settings']}\nMethod: {about['method']}",
              flush=True)
        print(table([]), flush=True)
    done: list[Series] = []
    began = time.perf_counter()
    partial = False
    try:
        for plan in chosen:
            series = serve(plan, args.chunks)
            series.judge(args.threshold)
            done.append(series)
            if args.format == "table":
                print(table([series]).splitlines()[-1], flush=True)
    except KeyboardInterrupt as stop:
        partial = True
        where = f"; kept in {args.out}" if args.out else ""
        print(f"long_run_memory: stopped by {stop.args[0] if stop.args else 'SIGINT'}; {len(done)} of {len(chosen)} series finished "
              f"(partial){where}", file=sys.stderr)
    wall = time.perf_counter() - began
    result = as_json(about, done, wall, partial)
    if args.out is not None:
        args.out.write_text(json.dumps(result))
    if partial:
        return 130
    if args.plot is not None:
        plot(done, args.plot)
    if args.format == "json":
        print(json.dumps(result))
        return 0
    print(table(done))
    print(f"(flat: the slope's 95% upper bound below {args.threshold:g} B/request after the first {WARMUP_FRACTION:.0%} of requests, in RSS "
          f"and in malloc's bytes in use; for RSS at least 2 pages over the fitted requests)")
    growing = [s.name for s in done if not s.flat]
    print(f"Verdict: {'GROWTH in ' + ', '.join(growing) if growing else 'every series flat'}; wall time {wall:.0f} s"
          f"{'; plot ' + str(args.plot) if args.plot else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
