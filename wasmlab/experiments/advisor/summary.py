"""One candidate over its runs: the medians, the worst and best p99, and whether it meets the goal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wasmlab.experiments.advisor.goal import Goal
from wasmlab.experiments.advisor.space import Candidate


def _median(values: Sequence[Any]) -> float:
    kept = [float(v) for v in values if v is not None and v == v]
    return float(np.median(kept)) if kept else float("nan")


@dataclass(frozen=True)
class Summary:
    """One candidate over its runs: medians, the worst p99, and whether it meets the goal."""

    candidate: Candidate
    label: str
    runs: int
    p99_us: float
    p99_us_worst: float
    p99_us_best: float
    p50_us: float
    throughput_rps: float
    rss_bytes: float
    rss_held_bytes: float
    address_space_bytes: float
    faults_per_request: float
    tlb_shootdowns_per_request: float
    outcomes: tuple[str, ...]
    meets_target: bool
    within_budgets: bool
    # Instance reuse's price over the runs: reused requests, and those whose results differed from a fresh instance's.
    reused_requests: int = 0
    carried_over_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidate"] = asdict(self.candidate)
        data["variant"] = self.candidate.variant
        return data


def summarize(goal: Goal, candidate: Candidate, runs: Sequence[dict[str, Any]]) -> Summary:
    """Medians over ``runs``; the target counts as met only if every run served every request, the worst p99 met it and
    no reused request carried state over (a reuse candidate that leaks is not a recommendation, however fast)."""
    ok = [r for r in runs if r["outcome"] == "ok"]
    worst = max((r["latency_us_p99"] for r in ok), default=float("nan"))
    rss, address = _median([r["rss_bytes"] for r in ok]), _median([r["address_space_bytes"] for r in ok])
    within = bool(ok) and (goal.rss_budget is None or rss <= goal.rss_budget) and (goal.address_space is None or address <= goal.address_space)
    best = min((r["latency_us_p99"] for r in ok), default=float("nan"))
    reused, carried = (sum(int(r.get(k) or 0) for r in ok) for k in ("reused_requests", "carried_over_requests"))
    return Summary(candidate, runs[0]["label"] if runs else "", len(runs), _median([r["latency_us_p99"] for r in ok]), worst, best,
                   _median([r["latency_us_p50"] for r in ok]), _median([r["throughput_rps"] for r in ok]), rss,
                   _median([r["rss_held_bytes"] for r in ok]), address, _median([r["minor_faults_per_request"] for r in ok]),
                   _median([r["tlb_shootdowns_per_request"] for r in ok]), tuple(r["outcome"] for r in runs),
                   len(ok) == len(runs) and bool(ok) and worst <= goal.p99_us and not carried, within, reused, carried)
