"""Issue 14's bar, end to end: ``wasmlab advise`` for a goal, then its flags re-measured by ``wasmlab concurrency``.

The advice is only worth its figures if another command, run afterwards with nothing but the printed flags,
measures the same: the re-measured p99 must be within ``--slack`` (1.25x) of the target and the reserved
address space within the budget.  Each re-measurement is a separate ``wasmlab concurrency`` process with
``--repeats`` runs in rotation (its median p99, and the worst run's beside it).

    python benchmarks/advise_bar.py [--workload dirty-memory:kib=64 --concurrency 2 --p99-us 20 --address-space 8GiB]
                                    [--budget-s 60] [--remeasures 3] [--format json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from wasmlab.config import parse_size

WASMLAB = [sys.executable, "-m", "wasmlab.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WASMLAB, *args], capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="dirty-memory:kib=64")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--p99-us", type=float, default=20.0)
    parser.add_argument("--address-space", default="8GiB")
    parser.add_argument("--budget-s", default="60")
    parser.add_argument("--remeasures", type=int, default=3, help="separate wasmlab concurrency processes")
    parser.add_argument("--requests", default="20000", help="per worker, in each re-measurement")
    parser.add_argument("--slack", type=float, default=1.25)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args()
    started = time.perf_counter()
    advised = run("advise", "--workload", args.workload, "--concurrency", str(args.concurrency), "--p99-us", str(args.p99_us),
                  "--address-space", args.address_space, "--budget-s", args.budget_s, "--format", "json")
    if advised.returncode != 0:
        print(advised.stderr.strip(), file=sys.stderr)
        return advised.returncode
    advice = json.loads(advised.stdout)
    budget = parse_size(args.address_space)
    again = []
    for _ in range(args.remeasures):
        done = run("concurrency", "--threads", str(args.concurrency), *advice["flags"], "--requests", args.requests, "--repeats", "3",
                   "--format", "json")
        if done.returncode != 0:
            print(done.stderr.strip(), file=sys.stderr)
            return done.returncode
        row = json.loads(done.stdout)["results"][0]
        again.append({k: row[k] for k in ("latency_us_p50", "latency_us_p99", "latency_us_p99_max", "address_space_bytes",
                                          "rss_bytes", "throughput_rps", "failed_requests")})
    met = all(r["latency_us_p99"] <= args.slack * args.p99_us and r["address_space_bytes"] <= budget and not r["failed_requests"]
              for r in again)
    result = {"flags": advice["flags"], "advised": {k: advice[k] for k in ("p99_us", "p99_us_worst", "rss_bytes", "address_space_bytes")},
              "why": [w["line"] for w in advice["why"]], "remeasured": again, "bar_met": met,
              "bar": f"re-measured p99 <= {args.slack:g} x {args.p99_us:g} µs and address space <= {args.address_space}",
              "elapsed_s": time.perf_counter() - started, "metadata": advice["metadata"]}
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        print("flags:", " ".join(advice["flags"]))
        print(f"advised: p99 {advice['p99_us']:.1f} µs (worst run {advice['p99_us_worst']:.1f}), RSS {advice['rss_bytes'] / 1024:.0f} KiB, "
              f"address space {advice['address_space_bytes'] / 2**20:.2f} MiB")
        for r in again:
            print(f"re-measured: p99 {r['latency_us_p99']:.1f} µs (worst of 3 runs {r['latency_us_p99_max']:.1f}), p50 "
                  f"{r['latency_us_p50']:.1f} µs, {r['throughput_rps']:,.0f} req/s, address space {r['address_space_bytes'] / 2**20:.2f} MiB")
        print(("bar met: " if met else "bar NOT met: ") + result["bar"] + f" ({result['elapsed_s']:.0f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
