"""The registry's smallest commands (hello, core and component) and the seed lifted with an interface export: each served
on every path with its output or result checked, and their parameters refused in one line when unknown."""

from __future__ import annotations

import dataclasses

import pytest

from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import load_workload

POOL = EngineConfig(pool=PoolConfig(slots=2, max_memory_size=1 << 20), memory_reservation=1 << 20)


@pytest.mark.parametrize("spec", ["hello", "hello:kind=component", "component-seed:export=interface"])
def test_each_is_served_on_every_path_with_every_request_checked(spec):
    m = scenarios.run(scenarios.Scenario(workload=spec, requests=20, repeats=1, warmup=2, slots=2, call_path="native,lean,api",
                                         variants=("cached", "pooled+cached")))
    assert not m.errors, dict(m.errors)
    assert (m.variants(None)["outcome_ok"] == 20).all()


@pytest.mark.parametrize("kind", ["core", "component"])
@pytest.mark.parametrize("call_path", ["native", "lean", "api"])
def test_a_hello_whose_stdout_is_not_the_expected_fails(kind, call_path):
    wrong = dataclasses.replace(load_workload(f"hello:kind={kind}"), stdout_pattern="^goodbye\n$")
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [wrong], call_path)["pooled+cached"]
    try:
        with pytest.raises(Exception, match="stdout"):
            runtime.handle(0)
    finally:
        runtime.close()


def test_the_interface_form_of_the_seed_calls_its_function_inside_the_interface():
    w = load_workload("component-seed:export=interface")
    assert w.entry == "wasmlab:seed/api@1.0.0#run" and w.expected == 42


@pytest.mark.parametrize("spec, message", [("hello:kind=rust", "hello kind 'rust' is not allowed; allowed: component, core"),
                                           ("component-seed:export=nested",
                                            "component-seed export 'nested' is not allowed; allowed: interface, top")])
def test_an_unknown_parameter_value_is_one_line(spec, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        load_workload(spec)
