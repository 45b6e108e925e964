"""The lab's pooled+cached lean request against the bare loop, alternated in one process.

Two separate processes run back to back on a shared machine see different machine states (this
one switches between a fast and a slow state for seconds at a time), so their figures can differ by
more than the gap being measured.  Here the two run in one process, in blocks that alternate
(bare, lab, lab, bare, ...), and the ratio is taken per pair of neighbouring blocks: the geometric
mean of lab/bare over the pairs, with a Student-t interval on the logs (``wasmlab.measure.stats``'s
paired method).  The bare side is ``bare_loop.build_block`` (six C calls, no wasmlab); the lab side is
``Runtime.handle`` of variant ``pooled+cached`` on the seed preset, timed by the harness's own
``timed_loop``, so it includes everything a lab request does: the cache lookup, the result check.

    python benchmarks/lab_vs_bare.py --requests 2000 --pairs 20 [--format json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bare_loop  # noqa: E402 - a sibling script, not a package

from wasmlab.config import PRESETS, EngineConfig  # noqa: E402
from wasmlab.host.runtime import build_runtimes  # noqa: E402
from wasmlab.measure.calibrate import timed_loop  # noqa: E402
from wasmlab.measure.stats import PAIRED_METHOD, paired_ratio  # noqa: E402
from wasmlab.workloads import load_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per block")
    parser.add_argument("--pairs", type=int, default=20, help="pairs of blocks (one bare, one lab)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()

    preset = PRESETS["seed"]
    runtime = build_runtimes(["pooled+cached"], EngineConfig(pool=preset.pool), preset.cache,
                             [load_workload("seed")])["pooled+cached"]
    bare = bare_loop.build_block(preset.pool.slots or 20)
    n = args.requests
    indices = [0] * n

    def lab(count: int, out: list[int]) -> None:
        timed_loop(runtime.handle, indices[:count], out)

    bare(args.warmup, [0] * args.warmup)
    lab(args.warmup, [0] * args.warmup)
    means: dict[str, list[float]] = {"bare": [], "lab": []}
    p50s: dict[str, list[float]] = {"bare": [], "lab": []}
    for pair in range(args.pairs):
        # Alternate which side goes first, so neither always follows the other.
        for side in (("bare", "lab") if pair % 2 == 0 else ("lab", "bare")):
            samples = [0] * n
            gc.disable()
            try:
                (bare if side == "bare" else lab)(n, samples)
            finally:
                gc.enable()
            means[side].append(statistics.fmean(samples) / 1000)
            p50s[side].append(statistics.median(samples) / 1000)
    runtime.close()
    mean_ratio = paired_ratio(means["lab"], means["bare"])
    p50_ratio = paired_ratio(p50s["lab"], p50s["bare"])
    result = {
        "bare_us_mean": statistics.fmean(means["bare"]), "lab_us_mean": statistics.fmean(means["lab"]),
        "bare_us_p50": statistics.median(p50s["bare"]), "lab_us_p50": statistics.median(p50s["lab"]),
        "lab_over_bare_mean": mean_ratio.point, "lab_over_bare_mean_ci": [mean_ratio.low, mean_ratio.high],
        "lab_over_bare_p50": p50_ratio.point, "lab_over_bare_p50_ci": [p50_ratio.low, p50_ratio.high],
        "method": PAIRED_METHOD, "pairs": args.pairs, "requests_per_block": n, "warmup": args.warmup,
    }
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(f"bare mean {result['bare_us_mean']:.2f} µs, lab pooled+cached lean mean {result['lab_us_mean']:.2f} µs: "
              f"lab/bare {mean_ratio.point:.3f} (95% CI {mean_ratio.low:.3f}-{mean_ratio.high:.3f}); "
              f"p50s {result['bare_us_p50']:.2f} / {result['lab_us_p50']:.2f} µs: {p50_ratio.point:.3f} "
              f"({p50_ratio.low:.3f}-{p50_ratio.high:.3f}); {args.pairs} pairs of {n}-request blocks; {PAIRED_METHOD}")


if __name__ == "__main__":
    main()
