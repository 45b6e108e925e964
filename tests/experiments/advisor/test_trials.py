"""Advisor trials run in a child: a candidate whose pool wasmtime cannot reserve aborts that child only; it is
recorded as a crash and the next candidate is measured in a new child."""

from __future__ import annotations

from wasmlab.experiments.advisor.needs import serving_needs
from wasmlab.experiments.advisor.space import Candidate
from wasmlab.experiments.advisor.trials import Load, TrialRunner


def test_a_wasmtime_abort_costs_one_candidate_and_the_next_is_measured():
    runner = TrialRunner(serving_needs(["seed"]), Load(threads=1, call_path="lean", workloads=("seed",), requests=50, warmup=5))
    try:
        # 100,000 memories of 4 GiB each: more than the 47-bit user address space. wasmtime answered it with a Rust panic
        # (the child's crash); the preflight now refuses it first, and the runner goes on as after a crash.
        refused = runner.measure(Candidate("pooling", 100_000))
        assert refused["outcome"] == "refused" and "47-bit user address space" in refused["error"] and runner.crashes == 0, refused
        served = runner.measure(Candidate("pooling", 2))
        assert served["outcome"] == "ok" and served["latency_us_p50"] > 0 and runner.measured == 1
    finally:
        runner.close()
