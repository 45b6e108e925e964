"""The seed's pooled+cached figures of two source trees, measured back to back: did a change make them slower?

Each round runs ``wasmlab reproduce`` once per tree, in its own process, the order alternating (A B, B A, ...), so
a drift in the machine's speed lands on both trees alike; per call path, the ratio B/A is taken per round, and the
figure is the geometric mean over rounds with a 95% Student-t interval on the log ratios (``wasmlab.measure.stats``'s
paired method).  A tree is a checkout with its C extension built in place (``python setup.py build_ext --inplace``);
an older commit goes in a git worktree:

    git worktree add /tmp/before HEAD~5 && (cd /tmp/before && python setup.py build_ext --inplace)
    python benchmarks/trees_ab.py /tmp/before . --rounds 6 [--format json]

The figure compared is each variant's median (``--statistic mean``: mean) per-request latency over the run's timed requests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from wasmlab.measure.stats import PAIRED_METHOD, paired_ratio

VARIANTS = ("pooled+cached", "pooled+cached@native")  # the first on the lean path, which carries no suffix


def run_tree(tree: Path, requests: int, repeats: int, statistic: str) -> dict[str, float]:
    """One ``reproduce`` of ``tree``: per variant, its latency ``statistic`` in µs."""
    command = [sys.executable, "-m", "wasmlab.cli", "reproduce", "--variants", "pooled+cached", "--call-path", "native,lean",
               "--requests", str(requests), "--repeats", str(repeats), "--no-save", "--format", "json"]
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: reproduce exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    variants = json.loads(done.stdout)["variants"]
    return {name: float(variants[name][f"latency_us_{statistic}"]) for name in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    # The median by default: this machine moves between a fast and a slow state for seconds at a time, and a run that
    # straddles a switch moves its mean far more than its median.
    parser.add_argument("--statistic", choices=("p50", "mean"), default="p50")
    options = parser.parse_args()
    trees = {"before": options.before.resolve(), "after": options.after.resolve()}
    figures: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_index in range(options.rounds):
        order = ("before", "after") if round_index % 2 == 0 else ("after", "before")
        for side in order:
            figures[side].append(run_tree(trees[side], options.requests, options.repeats, options.statistic))
    report: dict[str, object] = {"statistic": options.statistic, "method": PAIRED_METHOD.replace("repetition", "round"), "rounds": options.rounds, "requests": options.requests, "repeats": options.repeats}
    for variant in VARIANTS:
        before = [row[variant] for row in figures["before"]]
        after = [row[variant] for row in figures["after"]]
        ratio = paired_ratio(after, before)
        report[variant] = {"before_us": before, "after_us": after, "after_over_before": ratio.point,
                           "ci95": [ratio.low, ratio.high]}
    if options.format == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"after/before of each run's latency {options.statistic}, {options.rounds} rounds of {options.requests} x {options.repeats} requests "
          "per tree (geometric mean over rounds of each round's ratio, 95% Student-t interval on the log ratios)")
    for variant in VARIANTS:
        row = report[variant]
        print(f"  {variant}: before {sorted(row['before_us'])[len(row['before_us']) // 2]:.2f} µs, after "
              f"{sorted(row['after_us'])[len(row['after_us']) // 2]:.2f} µs (medians over rounds); "
              f"after/before {row['after_over_before']:.3f} (95% CI {row['ci95'][0]:.3f}-{row['ci95'][1]:.3f})")


if __name__ == "__main__":
    main()
