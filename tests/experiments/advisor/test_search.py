"""The advisor's decisions on figures of known truth: the front, the pick among ties, which knobs earn their place."""

from wasmlab.experiments.advisor.advice import Effect, pareto
from wasmlab.experiments.advisor.goal import Goal
from wasmlab.experiments.advisor.search import choose, kept_for_effect, pick_finalists
from wasmlab.experiments.advisor.space import Candidate
from wasmlab.experiments.advisor.summary import summarize

GOAL = Goal(("seed",), 2, 20.0, address_space=1 << 30)


def run(candidate: Candidate, p99: float, rss: int, address: int = 1 << 20, outcome: str = "ok") -> dict:
    from dataclasses import asdict

    return {**asdict(candidate), "label": str(candidate), "latency_us_p99": p99, "latency_us_p50": p99 / 2, "throughput_rps": 1e5,
            "rss_bytes": rss, "rss_held_bytes": rss, "address_space_bytes": address, "minor_faults_per_request": 0.0,
            "tlb_shootdowns_per_request": 0.0, "outcome": outcome}


def test_pareto_keeps_exactly_the_points_nothing_beats_on_both():
    points = [(1, 9), (2, 5), (3, 5), (4, 1), (5, 6), (2, 5)]
    assert pareto(points) == [0, 1, 3, 5]


def test_the_pick_is_the_least_memory_and_ties_within_noise_go_to_less_address_space_then_fewer_knobs():
    small, large = Candidate("pooling", 2, "tight", keep_resident=65536), Candidate("pooling", 8, "tight", keep_resident=65536)
    lean = Candidate("pooling", 2, "tight", keep_resident=65536, pre=False)
    fancy = Candidate("pooling", 2, "tight", keep_resident=65536, pre=True, cow=False)
    summaries = [summarize(GOAL, large, [run(large, 4.0, 280_000, 19 << 20)] * 3),
                 summarize(GOAL, small, [run(small, 4.5, 300_000, 4 << 20)] * 3)]
    # 20 KB apart is one figure of RSS: the 2-slot pool wins on address space though its RSS reads higher.
    assert choose(summaries).candidate == small
    assert choose([summarize(GOAL, fancy, [run(fancy, 4.0, 290_000)] * 3),
                   summarize(GOAL, lean, [run(lean, 4.4, 290_000)] * 3)]).candidate == lean
    much_less = Candidate("pooling", 8, "tight")
    assert choose(summaries + [summarize(GOAL, much_less, [run(much_less, 9.0, 100_000, 19 << 20)] * 3)]).candidate == much_less


def test_the_target_counts_as_met_only_when_the_worst_run_meets_it_and_every_request_was_served():
    c = Candidate("pooling", 2, "tight")
    assert summarize(GOAL, c, [run(c, 5, 1), run(c, 19, 1), run(c, 6, 1)]).meets_target
    assert not summarize(GOAL, c, [run(c, 5, 1), run(c, 21, 1), run(c, 6, 1)]).meets_target
    assert not summarize(GOAL, c, [run(c, 5, 1), run(c, 5, 1, outcome="failed")]).meets_target


def test_a_knob_stays_only_if_its_runs_separate_from_the_defaults_or_it_saves_memory():
    c, default = Candidate("pooling", 2, "tight", cow=False), Candidate("pooling", 2, "tight")
    mine = summarize(GOAL, c, [run(c, p, 300_000) for p in (4.0, 4.2, 4.4)])
    overlapping = summarize(GOAL, default, [run(default, p, 300_000) for p in (4.3, 4.6, 6.0)])
    separated = summarize(GOAL, default, [run(default, p, 300_000) for p in (4.5, 4.6, 6.0)])
    assert not kept_for_effect(Effect.of("cow", c, mine, overlapping, None))
    assert kept_for_effect(Effect.of("cow", c, mine, separated, None))
    bigger = summarize(GOAL, default, [run(default, p, 600_000) for p in (4.3, 4.6, 6.0)])
    assert kept_for_effect(Effect.of("cow", c, mine, bigger, None))


def test_finalists_are_within_the_budgets_and_served_every_request():
    a, b, c = Candidate("pooling", 2, "tight"), Candidate("pooling", 4, "tight"), Candidate("on-demand", 0, "tight")
    rows = [run(a, 4, 300_000), run(b, 3, 400_000, address=2 << 30), run(c, 100, 50_000), run(a.replace(pre=True), 2, 1, outcome="failed")]
    # a meets the target (the front of those near it), c is next fastest; b reserves 2 GiB (over 1 GiB), the last failed
    assert pick_finalists(GOAL, rows) == [a, c]


def test_a_default_whose_every_run_failed_is_a_reason_to_keep_the_knob_not_a_crash():
    c, default = Candidate("pooling", 2, "tight", decommit_batch=1), Candidate("pooling", 2, "tight", decommit_batch=2)
    mine = summarize(GOAL, c, [run(c, p, 300_000) for p in (4.0, 4.2)])
    failed = summarize(GOAL, default, [run(default, 0, 0, outcome="failed")] * 2)
    effect = Effect.of("decommit_batch", c, mine, failed, None)
    assert kept_for_effect(effect) and "no run served every request (failed)" in effect.line
