"""A Scenario is made of parts (workload, engine, pool, cache, measurement) and stored as flat parameters: both forms
describe the same thing, and a stored run's parameters build it again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from wasmlab.errors import ConfigError
from wasmlab.measure.scenario import Scenario
from wasmlab.measure.settings import CacheSettings, EngineSettings, MeasurementSettings, PoolSettings, WorkloadSettings

ROOT = Path(__file__).resolve().parents[2]


def full() -> Scenario:
    return Scenario(
        workload=WorkloadSettings(spec="dirty-memory:kib=64", trace="zipf", modules=3, zipf_s=1.3, seed=7),
        variants=("baseline", "pooled+cached"), call_path="native,lean", preset="spin",
        engine=EngineSettings(knobs={"memory_guard_size": 65536}, limits={"fuel": 10_000, "exhaustion": "wait"}),
        pool=PoolSettings(slots=4, knobs={"linear_memory_keep_resident": 4096}),
        cache=CacheSettings(policy="lfu", size=3), measurement=MeasurementSettings(requests=40, repeats=2, warmup=3, rounds=2))


def test_the_parts_and_the_flat_names_build_the_same_scenario():
    flat = Scenario(workload="dirty-memory:kib=64", trace="zipf", modules=3, zipf_s=1.3, seed=7, variants=("baseline", "pooled+cached"),
                    call_path="native,lean", preset="spin", engine={"memory_guard_size": 65536}, limits={"fuel": 10_000, "exhaustion": "wait"},
                    slots=4, pool={"linear_memory_keep_resident": 4096}, cache_policy="lfu", cache_size=3, requests=40, repeats=2, warmup=3,
                    rounds=2)
    assert flat == full()
    assert flat.pool.slots == 4 and flat.measurement.requests == 40 and flat.workload.spec == "dirty-memory:kib=64"
    assert flat.engine_config().pool.slots == 4 and flat.cache_config().policy == "lfu" and flat.limits_config().fuel == 10_000


def test_to_dict_and_from_dict_round_trip_through_json():
    scenario = full()
    data = json.loads(json.dumps(scenario.to_dict()))
    assert Scenario.from_dict(data) == scenario
    assert data["slots"] == 4 and data["pool"] == {"linear_memory_keep_resident": 4096} and "tenants" not in data
    several = dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, tenants=("seed", "dirty-memory:kib=64")))
    assert Scenario.from_dict(json.loads(json.dumps(several.to_dict()))) == several


def test_a_stored_runs_parameters_build_the_scenario_again():
    metadata = json.loads((ROOT / "data/results/reference/both-paths-1/metadata.json").read_text())
    stored = {k: v for k, v in metadata["parameters"].items() if not k.endswith("_config")}
    again = Scenario.from_dict(stored).to_dict()
    assert {k: again[k] for k in stored} == stored


def test_an_unknown_parameter_is_named():
    with pytest.raises(ConfigError, match="scenario parameter 'slot' is not allowed"):
        Scenario.from_dict({"slot": 3})
    with pytest.raises(TypeError, match="slot"):
        Scenario(slot=3)
