"""The lab's native pooled+cached component request against a bare C loop (``bare_component_loop.c``), alternated.

Issue 25's bar: on the lab's hand-written middleware with the auth-ok request (8 headers, a 512-byte body, a ``modify``
answer), pooled+cached, the native path's p50 within 15% of a bare C loop's over the same component C API calls,
measured side by side in one run.  The bare loop is built here with the system C compiler as a shared library and its
``main`` called through ctypes in this very process (stdout redirected to read its JSON), one block at a time, on
wasmtime-py's own libwasmtime; between its blocks the lab serves the same number of requests through ``Runtime.block``
of ``pooled+cached@native`` and, for the binding's share, ``Runtime.handle`` of the lean and api paths.  Each block's
figure is its median request; the ratios are taken per round of neighbouring blocks (geometric mean over the rounds,
Student-t interval on the logs: ``wasmlab.measure.stats``'s paired method), the order reversed every other round.

What the two loops do differently, by design: the lab compares the whole result tree in C on every request (the bare
loop checks only the variant's case, as a bare host might) and stamps a clock per request into its sample array.

    python benchmarks/component_vs_bare.py --requests 2000 --rounds 12 [--api-requests 200] [--format json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from c_main import call_main
from wasmtime._ffi import dll

from wasmlab.config import PRESETS, EngineConfig
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.measure.calibrate import timed_loop
from wasmlab.measure.stats import PAIRED_METHOD, paired_ratio
from wasmlab.workloads import load_workload

HERE = Path(__file__).resolve().parent
MIDDLEWARE_WAT = HERE.parent / "wasmlab" / "workloads" / "guests" / "middleware" / "middleware.wat"


def build_bare_loop(folder: Path) -> Callable[[int, int], float]:
    """``run(requests, warmup)``: the bare loop's median µs of one repetition, called in this process."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise SystemExit("no C compiler (cc) on PATH")
    library = folder / "libbare_component_loop.so"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-Dmain=bare_component_main", "-o", str(library),
                    str(HERE / "bare_component_loop.c"), "-ldl"], check=True)
    loop = ctypes.CDLL(str(library))

    def run(requests: int, warmup: int) -> float:
        words = [b"bare_component_loop", dll._name.encode(), str(MIDDLEWARE_WAT).encode(), str(requests).encode(),
                 b"1", str(warmup).encode()]
        status, printed = call_main(loop.bare_component_main, words)
        if status != 0:
            raise SystemExit(f"the bare component loop failed (status {status}); see its stderr")
        return float(json.loads(printed.strip().splitlines()[-1])["per_repetition"][0]["p50_us"])
    return run


def lab_block(runtime: Runtime, native: bool, n: int) -> float:
    """One block of ``n`` requests of the lab's runtime: its median in µs."""
    out = [0] * n
    if native:
        runtime.block([0] * n, out, [])
    else:
        timed_loop(runtime.handle, [0] * n, out)
    return statistics.median(out) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per block (bare C, native, lean)")
    parser.add_argument("--api-requests", type=int, default=200, help="requests per api block (each ~1 ms)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()

    workload = load_workload("middleware")
    runtimes = build_runtimes(["pooled+cached@native", "pooled+cached", "pooled+cached@api"],
                              EngineConfig(pool=PRESETS["seed"].pool), PRESETS["seed"].cache, [workload])
    sizes = {"c": args.requests, "native": args.requests, "lean": args.requests, "api": args.api_requests}
    p50s: dict[str, list[float]] = {side: [] for side in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        run_c = build_bare_loop(Path(tmp))

        def block(side: str, n: int) -> float:
            if side == "c":
                return run_c(n, args.warmup)
            return lab_block(runtimes[{"native": "pooled+cached@native", "lean": "pooled+cached", "api": "pooled+cached@api"}[side]],
                             side == "native", n)

        for side in sizes:
            block(side, min(args.warmup, sizes[side]))  # warm-up: compiled, cached, pools touched
        for round_ in range(args.rounds):
            sides = list(sizes)
            for side in (sides if round_ % 2 == 0 else sides[::-1]):
                p50s[side].append(block(side, sizes[side]))
    for runtime in runtimes.values():
        runtime.close()
    ratios = {"native_over_c": paired_ratio(p50s["native"], p50s["c"]),
              "lean_over_native": paired_ratio(p50s["lean"], p50s["native"]),
              "api_over_native": paired_ratio(p50s["api"], p50s["native"])}
    result = {**{f"{side}_p50_us": statistics.median(values) for side, values in p50s.items()},
              **{name: r.as_tuple() for name, r in ratios.items()},
              "bar": "native_over_c below 1.15", "bar_met": ratios["native_over_c"].point < 1.15,
              "method": PAIRED_METHOD, "rounds": args.rounds, "requests_per_block": sizes,
              "workload": workload.name, "variant": "pooled+cached", "libwasmtime": dll._name}
    if args.format == "json":
        print(json.dumps(result))
        return
    def show(r):  # noqa: ANN001, ANN202 - a local formatter
        return f"{r.point:.3f} (95% CI {r.low:.3f}-{r.high:.3f})"
    print(f"p50 µs per pooled+cached middleware auth-ok request (median of {args.rounds} blocks): bare C {result['c_p50_us']:.2f}, "
          f"lab native {result['native_p50_us']:.2f}, lean {result['lean_p50_us']:.2f}, api {result['api_p50_us']:.1f}")
    print(f"native/bare C {show(ratios['native_over_c'])} (bar: below 1.15, {'met' if result['bar_met'] else 'NOT met'}); "
          f"lean/native {show(ratios['lean_over_native'])}; api/native {show(ratios['api_over_native'])}")
    print(f"{args.rounds} rounds, blocks of {sizes}, order reversed every other round, the C loop in this process; {PAIRED_METHOD}")


if __name__ == "__main__":
    main()
