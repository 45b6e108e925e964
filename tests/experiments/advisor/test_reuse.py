"""The advisor with --allow-reuse: instance reuse is a knob it may propose only when allowed and only for guests reuse
serves on the goal's path (a guest it refuses is one line), and a candidate whose reused requests carried state over
never counts as meeting the goal, however fast."""

from dataclasses import asdict

from wasmlab.experiments.advisor.goal import Goal
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.space import REUSE_CHOICES, Candidate, search_space
from wasmlab.experiments.advisor.summary import summarize

GOAL = Goal(("seed",), 2, 20.0, allow_reuse=True)
NEEDS = ServingNeeds(("seed",), 65536, 65536, 0, 0, 1, 1)
REUSING = Candidate("pooling", 2, "tight", reuse=16)


def run(candidate: Candidate, p99: float, reused: int, carried: int) -> dict:
    return {**asdict(candidate), "label": "pool", "latency_us_p99": p99, "latency_us_p50": 0.1, "throughput_rps": 1e6,
            "rss_bytes": 1 << 20, "rss_held_bytes": 0, "address_space_bytes": 1 << 20, "minor_faults_per_request": 0.0,
            "tlb_shootdowns_per_request": 0.0, "outcome": "ok", "reused_requests": reused, "carried_over_requests": carried}


def test_a_reuse_candidate_is_a_variant_the_lab_and_its_flags_take():
    assert REUSING.variant == "pooled+cached+reuse16" and Candidate("on-demand", 0, reuse=4).variant == "cached+reuse4"
    assert Candidate("pooling", 2).variant == "pooled+cached"  # reuse 1: a fresh instance per request, no suffix
    assert "reuse 16 requests per instance" in REUSING.label(NEEDS)


def test_reuse_is_searched_only_when_allowed_for_modules_and_components_alike():
    needs = NEEDS
    assert search_space(needs, 2, 1).reuse == (1,)
    assert search_space(needs, 2, 1, allow_reuse=True).reuse == REUSE_CHOICES and REUSE_CHOICES[0] == 1
    components = ServingNeeds(("middleware",), 65536, 65536, 0, 0, 1, 1, components=("middleware",), max_core_instances_per_component=2,
                              max_memories_per_component=1, max_tables_per_component=1)
    assert search_space(components, 2, 1, allow_reuse=True).reuse == REUSE_CHOICES
    assert search_space(components, 2, 1).reuse == (1,)


def test_allowing_reuse_for_a_guest_reuse_refuses_is_one_line(tmp_path):
    import pytest

    from tests.host.test_component_cheats import COUNTING
    from tests.host.test_component_commands import write_command
    from tests.workloads.recipe_guests import write_recipe
    from wasmlab.errors import ConfigError
    from wasmlab.experiments.advisor.search import check_reuse_allowed

    # A component making two calls per request (a recipe's invoke steps), as tests/e2e/test_bad_inputs.py's two-calls.yaml.
    two_calls = write_recipe(tmp_path, COUNTING, {"steps": [{"invoke": "next()"}, {"invoke": "next()"}]}, "two-calls")
    with pytest.raises(ConfigError, match="--allow-reuse: workload 'two-calls' is a component making several calls per request"):
        check_reuse_allowed(Goal((two_calls,), 2, 20.0, call_path="native", allow_reuse=True))
    command = str(write_command(tmp_path))  # a component command: served on native too
    check_reuse_allowed(Goal((command,), 2, 20.0, call_path="native", allow_reuse=True))
    check_reuse_allowed(Goal(("component-seed", "seed"), 2, 20.0, call_path="native", trace="uniform", allow_reuse=True))


def test_a_fast_candidate_that_carried_state_over_does_not_meet_the_goal():
    leaking = summarize(GOAL, REUSING, [run(REUSING, 0.2, 1500, 1) for _ in range(3)])
    clean = summarize(GOAL, REUSING, [run(REUSING, 0.2, 1500, 0) for _ in range(3)])
    assert not leaking.meets_target and (leaking.reused_requests, leaking.carried_over_requests) == (4500, 3)
    assert clean.meets_target and clean.carried_over_requests == 0
