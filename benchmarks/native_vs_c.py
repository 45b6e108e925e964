"""The lab's native pooled+cached request against the bare C loop (``bare_loop.c``), alternated back to back.

The bare loop is built here with the system C compiler and run as its own process on wasmtime-py's
libwasmtime, one block at a time; between its blocks the lab serves the same number of requests through
``Runtime.block`` of variant ``pooled+cached@native`` (seed preset), so both see the machine in the same
states.  The ratio is taken per pair of neighbouring blocks: geometric mean of lab/bare over the pairs with a
Student-t interval on the logs (``wasmlab.measure.stats``'s paired method).  Alongside: the Python bare loop
(``bare_loop.py``) and the lab's lean path, for the binding's share.

    python benchmarks/native_vs_c.py --requests 2000 --pairs 12 [--in-process] [--format json]

``--in-process`` builds the C loop as a shared library instead and calls its ``main`` through ctypes in this
very process (stdout redirected to read its JSON), so that both loops run in the same address space: what
remains between them is then the driver's own work, not the difference between a 20 KB program and a
Python process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bare_loop  # noqa: E402 - a sibling script, not a package
from c_main import call_main  # noqa: E402 - a sibling script
from wasmtime._ffi import dll  # noqa: E402

from wasmlab.config import PRESETS, EngineConfig  # noqa: E402
from wasmlab.host.runtime import build_runtimes  # noqa: E402
from wasmlab.measure.calibrate import timed_loop  # noqa: E402
from wasmlab.measure.stats import PAIRED_METHOD, paired_ratio  # noqa: E402
from wasmlab.workloads import load_workload  # noqa: E402


def build_c_loop(folder: Path, shared: bool = False) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise SystemExit("no C compiler (cc) on PATH")
    binary = folder / ("libbare_loop.so" if shared else "bare_loop")
    flags = ["-shared", "-fPIC", "-Dmain=bare_loop_main"] if shared else []
    subprocess.run([compiler, "-O2", *flags, "-o", str(binary), str(HERE / "bare_loop.c"), "-ldl"], check=True)
    return binary


def in_process_runner(library: Path) -> Callable[[int, int], float]:
    """``run(requests, warmup)``: the C loop's mean µs, run by calling its ``main`` in this process."""
    loop = ctypes.CDLL(str(library))

    def run(requests: int, warmup: int) -> float:
        words = [b"bare_loop", dll._name.encode(), str(requests).encode(), b"1", str(warmup).encode()]
        _, printed = call_main(loop.bare_loop_main, words)
        return float(json.loads(printed.strip().splitlines()[-1])["per_repetition"][0]["mean_us"])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per block")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--in-process", action="store_true", help="call the C loop in this process (a shared library)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()

    preset = PRESETS["seed"]
    workload = load_workload("seed")
    runtimes = build_runtimes(["pooled+cached@native", "pooled+cached"], EngineConfig(pool=preset.pool), preset.cache, [workload])
    native, lean = runtimes["pooled+cached@native"], runtimes["pooled+cached"]
    python_bare = bare_loop.build_block(preset.pool.slots or 20)
    n = args.requests
    indices = [0] * n
    means: dict[str, list[float]] = {"c": [], "native": [], "python_bare": [], "lean": []}
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_c_loop(Path(tmp), shared=args.in_process)
        run_c = in_process_runner(binary) if args.in_process else None
        for block in (lambda out: native.block(indices, out, []), lambda out: timed_loop(lean.handle, indices, out),
                      lambda out: python_bare(n, out)):
            block([0] * n)  # warm-up
        for pair in range(args.pairs):
            sides = ["c", "native", "python_bare", "lean"]
            for side in (sides if pair % 2 == 0 else sides[::-1]):
                if side == "c" and run_c is not None:
                    means["c"].append(run_c(n, args.warmup))
                    continue
                if side == "c":
                    done = subprocess.run([str(binary), dll._name, str(n), "1", str(args.warmup)], capture_output=True, text=True, check=True)
                    means["c"].append(json.loads(done.stdout)["per_repetition"][0]["mean_us"])
                    continue
                out = [0] * n
                if side == "native":
                    native.block(indices, out, [])
                elif side == "lean":
                    timed_loop(lean.handle, indices, out)
                else:
                    python_bare(n, out)
                means[side].append(statistics.fmean(out) / 1000)
    for runtime in runtimes.values():
        runtime.close()
    native_over_c = paired_ratio(means["native"], means["c"])
    lean_over_native = paired_ratio(means["lean"], means["native"])
    native_over_python_bare = paired_ratio(means["native"], means["python_bare"])
    result = {
        **{f"{side}_us_mean": statistics.fmean(values) for side, values in means.items()},
        "native_over_c": native_over_c.as_tuple(), "lean_over_native": lean_over_native.as_tuple(),
        "native_over_python_bare": native_over_python_bare.as_tuple(),
        "method": PAIRED_METHOD, "pairs": args.pairs, "requests_per_block": n,
        "c_loop": "in this process (a shared library)" if args.in_process else "in its own process",
    }
    if args.format == "json":
        print(json.dumps(result))
        return
    def show(r):
        return f"{r.point:.3f} (95% CI {r.low:.3f}-{r.high:.3f})"
    print(f"mean µs per pooled+cached seed request: bare C {result['c_us_mean']:.2f}, lab native {result['native_us_mean']:.2f}, "
          f"bare Python loop {result['python_bare_us_mean']:.2f}, lab lean {result['lean_us_mean']:.2f}")
    print(f"native/bare C {show(native_over_c)}; lean/native {show(lean_over_native)}; native/bare Python {show(native_over_python_bare)}")
    print(f"{args.pairs} rounds of {n}-request blocks, order reversed every other round, the C loop {result['c_loop']}; "
          f"{PAIRED_METHOD}")


if __name__ == "__main__":
    main()
