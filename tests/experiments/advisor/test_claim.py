"""The advisor's claim: the worst of its own fresh runs, each long enough for a p99, stated with how it was measured,
and a ``wasmlab concurrency`` command that measures it the same way."""

from dataclasses import asdict

from wasmlab.cli.concurrency import concurrency_command
from wasmlab.experiments.advisor.claim import CLAIM_RUNS, Claim, measure_claim, recheck_command
from wasmlab.experiments.advisor.goal import TAIL_SAMPLES, Effort, Goal, confirm_requests
from wasmlab.experiments.advisor.needs import serving_needs
from wasmlab.experiments.advisor.space import Candidate
from wasmlab.experiments.advisor.summary import summarize
from wasmlab.experiments.advisor.trials import Load, TrialRunner

GOAL = Goal(("seed",), 2, 20.0)
POOL = Candidate("pooling", 2, "tight", keep_resident=65536)


def run(p99: float) -> dict:
    return {**asdict(POOL), "label": "pool", "latency_us_p99": p99, "latency_us_p50": 1.0, "throughput_rps": 1e5, "rss_bytes": 1 << 20,
            "rss_held_bytes": 0, "address_space_bytes": 1 << 20, "minor_faults_per_request": 0.0, "tlb_shootdowns_per_request": 0.0,
            "outcome": "ok"}


def test_the_claimed_p99_is_the_worst_run_with_the_median_beside_it_and_how_it_was_measured():
    claim = Claim(summarize(GOAL, POOL, [run(p) for p in (3.0, 5.0, 4.0, 9.0, 4.0)]), 10_000, 200, 2, ("concurrency",))
    assert claim.p99_us == 9.0 and claim.summary.p99_us == 4.0
    assert claim.p99_text() == "p99 <= 9.0 µs (the worst of 5 runs x 10,000 requests per worker after 200 warm-up; median 4.0 µs)"
    data = claim.to_dict()
    assert (data["p99_us"], data["p99_us_median"], data["runs"], data["requests_per_worker"]) == (9.0, 4.0, 5, 10_000)
    # The target is held to the same figure the advice states: a worst run over it fails the goal.
    assert not summarize(GOAL, POOL, [run(p) for p in (3.0, 21.0, 4.0)]).meets_target


def test_confirmation_runs_put_at_least_a_hundred_requests_above_p99_for_each_worker():
    for requests in (50, 2000, 4999):
        assert confirm_requests(Effort(requests=requests)) * 0.01 >= TAIL_SAMPLES
    assert confirm_requests(Effort(requests=8000)) == 16_000  # never fewer than twice the screening's


def test_the_recheck_command_is_the_claims_protocol_as_concurrency_reads_it():
    flags = POOL.flags(serving_needs(["seed"]), "native", ("seed",), "repeat")
    args = recheck_command(flags, 2, 10_000, 5, 200, 7)
    assert args[0] == "concurrency"
    context = concurrency_command.make_context("concurrency", list(args[1:]))
    read = context.params
    assert (read["threads"], read["requests"], read["repeats"], read["warmup"], read["seed"]) == ((2,), 10_000, 5, 200, 7)
    assert read["slots"] == 2 and read["preset"] == "none" and read["variants"] == (POOL.variant,)


def test_the_claim_is_measured_afresh_and_states_the_worst_of_its_own_runs():
    """Real runs in a child (one worker, lean path): five new rows marked ``claim``, each of the full length, and the
    claimed p99 is the worst of exactly those rows (not an earlier run's, not the best)."""
    runner = TrialRunner(serving_needs(["seed"]), Load(threads=1, call_path="lean", workloads=("seed",), requests=100, warmup=20))
    goal, rows = Goal(("seed",), 1, 1e6, call_path="lean"), [{"stage": "screen", "latency_us_p99": 0.001}]
    try:
        claim = measure_claim(runner, POOL.replace(slots=1), goal, Effort(requests=100, seed=3), ["--workload", "seed"], rows,
                              lambda stage, row: None)
    finally:
        runner.close()
    fresh = rows[1:]
    assert [r["stage"] for r in fresh] == ["claim"] * CLAIM_RUNS and [r["repetition"] for r in fresh] == list(range(CLAIM_RUNS))
    assert all(r["outcome"] == "ok" and r["outcome_ok"] == 10_000 for r in fresh)
    assert claim.p99_us == max(r["latency_us_p99"] for r in fresh) and claim.summary.runs == CLAIM_RUNS
    assert claim.command[-8:] == ("--requests", "10000", "--repeats", "5", "--warmup", "20", "--seed", "3")
