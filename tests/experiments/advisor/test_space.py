"""What the advisor derives before it measures: the limits serving needs, each candidate's flags and address space."""

import pytest

from wasmlab.config import GiB, MiB
from wasmlab.errors import Infeasible
from wasmlab.experiments.advisor.goal import Effort, Goal
from wasmlab.experiments.advisor.needs import serving_needs
from wasmlab.experiments.advisor.search import advise, feasible_shapes
from wasmlab.experiments.advisor.space import Candidate, search_space
from wasmlab.host.engine import build_engine
from wasmlab.measure import footprint
from wasmlab.measure.scenario import Scenario

# Starts with one page and grows to five while it serves a request.
GROWER = """(module (memory (export "memory") 1)
  (func (export "run") (param i32) (result i32)
    (drop (memory.grow (i32.const 4)))
    (i32.store (i32.const 300000) (i32.const 7))
    (i32.load (i32.const 300000))))"""


@pytest.fixture(scope="module")
def grower(tmp_path_factory):
    path = tmp_path_factory.mktemp("advisor") / "grower.wat"
    path.write_text(GROWER)
    return str(path)


def test_a_guest_that_grows_its_memory_gets_max_memory_size_for_serving_not_for_instantiation(grower):
    needs = serving_needs([grower])
    assert needs.instantiation_memory == 64 * 1024
    assert needs.max_memory_size == 5 * 64 * 1024
    for candidate in (Candidate("pooling", 2, "tight"), Candidate("pooling", 4, "default", keep_resident=64 * 1024)):
        assert candidate.pool_knobs(needs)["max_memory_size"] == 5 * 64 * 1024
        assert "max_memory_size=327680" in candidate.flags(needs, "native", (grower,), "repeat")
    # The tight layout reserves what serving needs, so a pool of it serves the grown request.
    assert Candidate("pooling", 2, "tight").engine_knobs(needs) == {"memory_reservation": 327680, "memory_guard_size": 0}


def test_flags_build_the_candidates_own_configuration_through_the_cli_scenario():
    needs = serving_needs(["dirty-memory:kib=64"])
    candidate = Candidate("pooling", 4, "tight", keep_resident=128 * 1024, warm_slots="0", decommit_batch=4, cow=False, pre=True)
    flags = candidate.flags(needs, "native", ("dirty-memory:kib=64",), "repeat")
    assert flags[flags.index("--variants") + 1] == "pooled+cached+pre"
    pool = {
        flags[i + 1].split("=")[0]: int(flags[i + 1].split("=")[1]) for i, f in enumerate(flags) if f == "--pool"}
    engine = {flags[i + 1].split("=")[0]: flags[i + 1].split("=")[1] for i, f in enumerate(flags) if f == "--engine"}
    scenario = Scenario(workload="dirty-memory:kib=64", variants=("pooled+cached+pre",), preset=None, slots=4, pool=pool,
                        engine={k: (v == "true") if v in ("true", "false") else int(v) for k, v in engine.items()})
    assert scenario.engine_config() == candidate.engine_config(needs).replace(allocator="on-demand")


def test_the_address_space_estimate_is_a_lower_bound_of_what_the_pool_really_reserves():
    needs = serving_needs(["dirty-memory:kib=64"])
    for candidate in (Candidate("pooling", 2, "tight"), Candidate("pooling", 8, "tight"), Candidate("pooling", 2, "no-guard")):
        before = footprint.now()
        engine = build_engine(candidate.engine_config(needs))
        reserved = footprint.now().address_space - before.address_space
        del engine
        estimate = candidate.address_space_estimate(needs, 2)
        assert estimate <= reserved <= 1.2 * estimate + 8 * MiB, candidate


def test_an_address_space_budget_rules_out_layouts_before_anything_is_measured():
    needs = serving_needs(["dirty-memory:kib=64"])
    space = search_space(needs, 2, 1)
    pooled, on_demand = feasible_shapes(Goal(("dirty-memory:kib=64",), 2, 20.0, address_space=8 * GiB), needs, space)
    # Two slots of 4 GiB + 32 MiB guard (plus stacks) exceed 8 GiB; without a guard they do not.
    assert (2, "default") not in pooled and (2, "no-guard") not in pooled and (2, "tight") in pooled
    assert "tight" in on_demand and "default" not in on_demand
    pooled, on_demand = feasible_shapes(Goal(("dirty-memory:kib=64",), 2, 20.0, address_space=1 * MiB), needs, space)
    assert not pooled and on_demand == ["tight"]


def test_a_budget_below_every_candidate_is_refused_in_one_line_before_measuring():
    with pytest.raises(Infeasible, match=r"address space 64 KiB is below what 2 concurrent request\(s\) reserve"):
        advise(Goal(("dirty-memory:kib=64",), 2, 20.0, address_space=64 * 1024), Effort(budget_s=1))


@pytest.mark.parametrize("kwargs,message", [
    ({"concurrency": 0}, "concurrency = 0 is out of range"),
    ({"p99_us": -1.0}, "p99 target = -1.0"),
    ({"call_path": "api"}, "call path 'api' is not allowed for advise"),
    ({"workloads": ("seed", "fresh")}, "2 workloads need a trace"),
])
def test_a_bad_goal_names_the_value_and_what_is_allowed(kwargs, message):
    with pytest.raises(Exception, match=message):
        Goal(**{"workloads": ("seed",), "concurrency": 2, "p99_us": 20.0, **kwargs})
