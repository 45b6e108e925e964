"""The advisor's claim: the recommendation measured afresh, long enough for its p99, the figure it states with how it
was measured, and the ``wasmlab concurrency`` command that measures it again the same way.

Why fresh runs: the recommendation was picked because its confirmation runs met the target; figures from the runs
that picked it carry the winner's curse (the lowest of several noisy p99s reads low).  Runs made after the choice,
used for nothing else, do not.

Why the worst run: on a shared machine a run's p99 moves with the machine's state more than with sampling (here it
takes one of two levels, about 2x apart, that persist for a fraction of a second), so a re-run draws a new state,
not only new samples.  The claim is the worst of :data:`CLAIM_RUNS` runs' p99: the upper end of a distribution-free
confidence interval for the median run's p99 (all runs fall below that median with probability 2^-runs: 3% at 5
runs), so a re-run's median p99 exceeds the claim about that rarely when nothing changed.  It is also the figure
the target is held to (a candidate meets the target only if its worst run does), so claim and decision agree.  The
median beside it is what ``wasmlab concurrency`` prints as its p99 for the same command.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmlab.experiments.advisor.goal import Effort, Goal, confirm_requests
from wasmlab.experiments.advisor.space import Candidate
from wasmlab.experiments.advisor.summary import Summary, summarize
from wasmlab.experiments.advisor.trials import TrialRunner

# Runs the claim rests on (or --repeats, if more): 5 makes the worst run a 97% upper bound of the median run.
CLAIM_RUNS = 5


def claim_runs(effort: Effort) -> int:
    return max(CLAIM_RUNS, effort.repeats)


@dataclass(frozen=True)
class Claim:
    """What the advisor states about its recommendation: the summary of its claim runs, how they were measured, and the
    command that measures it again."""

    summary: Summary
    requests: int  # per worker and run
    warmup: int  # per worker and run, untimed
    workers: int
    command: tuple[str, ...]  # the arguments of ``wasmlab`` that re-measure it

    @property
    def p99_us(self) -> float:
        """The claimed p99: the worst of the claim runs' (see the module's docstring)."""
        return self.summary.p99_us_worst

    @property
    def how(self) -> str:
        """How the claim was measured, in words: ``the worst of 5 runs x 10,000 requests per worker after 200 warm-up``."""
        return f"the worst of {self.summary.runs} runs x {self.requests:,} requests per worker after {self.warmup} warm-up"

    def p99_text(self) -> str:
        return f"p99 <= {self.p99_us:.1f} µs ({self.how}; median {self.summary.p99_us:.1f} µs)"

    @property
    def command_text(self) -> str:
        return "wasmlab " + shlex.join(self.command)

    def to_dict(self) -> dict[str, Any]:
        return {"p99_us": self.p99_us, "p99_us_median": self.summary.p99_us, "p99_us_best": self.summary.p99_us_best,
                "statistic": f"p99: {self.how}; the other figures: medians of the same runs", "runs": self.summary.runs,
                "requests_per_worker": self.requests, "warmup_per_worker": self.warmup, "workers": self.workers,
                "command": ["wasmlab", *self.command], "command_text": self.command_text}


def recheck_command(flags: list[str], workers: int, requests: int, runs: int, warmup: int, seed: int) -> tuple[str, ...]:
    """``wasmlab concurrency``'s arguments for the claim's protocol: the same workers, requests, warm-up, runs and seeds
    (its run k is seeded ``seed + k``, as the claim's run k is)."""
    return ("concurrency", "--threads", str(workers), *flags, "--requests", str(requests), "--repeats", str(runs),
            "--warmup", str(warmup), "--seed", str(seed))


def measure_claim(runner: TrialRunner, candidate: Candidate, goal: Goal, effort: Effort, flags: list[str],
                  rows: list[dict[str, Any]], report: Callable[[str, dict[str, Any]], None]) -> Claim:
    """``candidate`` measured :func:`claim_runs` times afresh, one run after another as ``wasmlab concurrency`` does."""
    requests, runs = confirm_requests(effort), claim_runs(effort)
    measured = []
    for k in range(runs):
        row = {**runner.measure(candidate, requests=requests, seed=effort.seed + k), "stage": "claim", "repetition": k}
        measured.append(row)
        rows.append(row)
        report("claim", row)
    warmup = runner.load.warmup
    return Claim(summarize(goal, candidate, measured), requests, warmup, goal.concurrency,
                 recheck_command(flags, goal.concurrency, requests, runs, warmup, effort.seed))
