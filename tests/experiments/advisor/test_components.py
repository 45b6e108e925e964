"""The advisor on components: what one instance holds (asked of wasmtime) sizes the pool it searches, recommends and
writes as code, the memory a request grows to is measured as for core modules, and its candidates serve every request."""

from __future__ import annotations

import re

import pytest

from tests.host.test_component_pools import TWO_INSTANCES
from wasmlab.experiments.advisor.goal import Effort, Goal
from wasmlab.experiments.advisor.needs import serving_needs
from wasmlab.experiments.advisor.search import advise
from wasmlab.experiments.advisor.snippets import release_symbols, rust, spin, wasmtime_serve
from wasmlab.experiments.advisor.space import Candidate, search_space
from wasmlab.experiments.advisor.trials import Load, TrialRunner
from wasmlab.measure.scenario import Scenario

BIG_BODY = "middleware:request=auth-ok,headers=4,body=65536"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    path = tmp_path_factory.mktemp("advisor") / "two.wat"
    path.write_text(TWO_INSTANCES)
    return str(path)


def test_a_components_instance_sizes_the_pools_totals_in_the_flags_and_every_snippet(two):
    needs = serving_needs([two])
    assert needs.components == ("two.wat",)
    assert (needs.max_core_instances_per_component, needs.max_memories_per_component, needs.max_tables_per_component) == (2, 1, 0)
    assert 0 < needs.max_component_instance_size < 1 << 20
    candidate = Candidate("pooling", 3, "tight")
    knobs = candidate.pool_knobs(needs)
    # Three concurrent requests of a two-core-instance component take six core instance slots.
    assert knobs["max_core_instances_per_component"] == 2 and knobs["total_core_instances"] == 6
    assert "total_memories" not in knobs  # one memory each: the slots say it
    flags = candidate.flags(needs, "native", (two,), "repeat")
    assert "total_core_instances=6" in flags and "max_core_instances_per_component=2" in flags
    release, has_symbol = release_symbols()
    code = rust(candidate, needs, release, has_symbol)
    assert ".total_core_instances(6)" in code and ".max_core_instances_per_component(2)" in code
    assert ".total_component_instances(3)" in code and ".max_component_instance_size(1048576)" in code
    serve = wasmtime_serve(candidate, needs)
    assert "-O pooling-total-core-instances=6" in serve and "-O pooling-max-core-instances-per-component=2" in serve
    assert "-O pooling-max-component-instance-size=1048576" in serve
    env = spin(candidate, needs)
    assert "SPIN_WASMTIME_CORE_INSTANCE_COUNT=2" in env and "SPIN_WASMTIME_INSTANCE_COUNT=3" in env
    assert "SPIN_WASMTIME_INSTANCE_SIZE=1048576" in env
    # Spin has no variable for the total: the note says so rather than leaving it out silently.
    assert re.search(r"not settable there: .*total_core_instances", env)
    # The component C API has no InstancePre: the search never proposes it.
    assert search_space(needs, 2, 1).pre == (False,)


def test_the_memory_a_component_request_grows_to_is_what_the_pool_gets():
    needs = serving_needs([BIG_BODY])
    assert needs.instantiation_memory == 64 * 1024 and needs.max_memory_size == 128 * 1024
    assert Candidate("pooling", 2, "tight").pool_knobs(needs)["max_memory_size"] == 128 * 1024


def test_a_component_candidates_flags_serve_every_request_at_its_concurrency(two):
    needs = serving_needs([two])
    runner = TrialRunner(needs, Load(threads=2, call_path="native", workloads=(two,), requests=200, warmup=10))
    try:
        row = runner.measure(Candidate("pooling", 2, "tight"))
        assert row["outcome"] == "ok" and row["outcome_ok"] == 400 and row["failed_requests"] == 0, row
    finally:
        runner.close()
    # The same flags through the command's scenario: the pool the child measured is the one the flags build.
    flags = Candidate("pooling", 2, "tight").flags(needs, "native", (two,), "repeat")
    pool = dict(f.split("=") for f in flags[1::2] if "=" in f and not f.startswith("memory_"))
    scenario = Scenario(workload=two, variants=("pooled+cached",), preset=None, slots=2, pool={k: int(v) for k, v in pool.items()})
    assert scenario.engine_config().pool.total_core_instances == 4


@pytest.mark.slow  # a search with its screening, confirmation and explanation: ~5-12 s
def test_advise_recommends_a_pool_for_the_middleware_component():
    advice = advise(Goal(("middleware",), 2, 5000.0), Effort(budget_s=4, requests=300, repeats=2))
    assert advice.feasible and advice.recommended is not None, advice.reason
    # Pooled candidates among those measured (wasmtime's defaults are anchors).  A candidate may fail requests (one that
    # batches decommits with as many slots as workers can find no free slot under load): then it is not the one
    # recommended, whose every run served every request.
    measured = [r for r in advice.rows if r.get("stage") != "exhaustion"]
    assert any(r["allocator"] == "pooling" for r in measured)
    chosen = [r for r in measured if r["label"] == advice.recommended.label]
    assert chosen and all(r["outcome"] == "ok" and r["failed_requests"] == 0 for r in chosen), chosen
    if advice.recommended.candidate.pooled:
        assert "max_core_instances_per_component=1" in advice.flags
    assert "Components (middleware): one instance holds 1 core instance(s)" in advice.render()
