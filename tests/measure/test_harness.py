import ctypes
import itertools

import pandas as pd
import pytest
import wasmtime

from tests.conftest import small_pool_engine
from wasmlab import capi
from wasmlab.config import CacheConfig
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import calibrate, harness
from wasmlab.measure import scenario as scenarios
from wasmlab.measure.harness import MeasureConfig, measure
from wasmlab.measure.results import load_run, save_measurement
from wasmlab.measure.traces import repeat


def small(**changes):
    base = dict(requests=60, repeats=2, warmup=10, slots=4, variants=("baseline", "pooled+cached"))
    return scenarios.Scenario(**{**base, **changes})


def test_tidy_tables_name_their_units_and_carry_the_metadata(tmp_path):
    m = scenarios.run(small(phases=True))
    s = m.summary
    assert len(s) == 4 and set(s["status"]) == {"ok"}
    for column in ("latency_us_p50", "latency_us_p99", "throughput_rps", "rss_mib_after", "vmsize_mib_after",
                   "minor_faults_per_request", "cache_hit_rate", "compile_ms_total"):
        assert column in s
    for column in ("run_id", "timestamp", "wasmtime_version", "python_version", "cpu_model", "cpu_count", "git_commit",
                   "parameters_json", "timer_overhead_ns", "harness_overhead_ns", "crossing_ns", "workload_sha256"):
        assert s[column].notna().all(), column
    assert len(m.samples) == 2 * 2 * 60 and (m.samples["latency_ns"] > 0).all()
    assert set(m.phases["phase"]) == {"get_module", "new_store", "instantiate", "export_lookup", "call", "drop_store", "read_output"}
    # Interleaving: the variants' order rotates between repetitions.
    first = s.sort_values(["repetition", "position"]).groupby("repetition")["variant"].first().tolist()
    assert first == ["baseline", "pooled+cached"]
    folder = save_measurement(m, tmp_path / "run")
    loaded = load_run(folder)
    pd.testing.assert_frame_equal(loaded["summary"], s)
    assert loaded["metadata"]["requests"] == 60 and not list(folder.glob("*.tmp"))


def test_a_failing_variant_does_not_lose_the_others():
    # 128 KiB of data do not fit a pool whose memories are capped at 64 KiB: pooled variants fail.
    scenario = small(workload="data-heavy:kib=128", pool={"max_memory_size": 65536}, variants=("cached", "pooled+cached", "baseline"))
    m = scenarios.run(scenario)
    assert set(m.errors) == {"pooled+cached"}
    assert "does not fit in pooling allocator" in m.errors["pooled+cached"]
    ok = m.summary[m.summary["status"] == "ok"]
    assert set(ok["variant"]) == {"cached", "baseline"} and len(ok) == 4


@pytest.mark.timing
def test_pooled_cached_is_at_least_10x_faster_than_baseline_side_by_side(seed_workload):
    """The seed's reviewer asked for a threshold: here ~70x on this machine, asserted at 10x for noisy CI."""
    runtimes = build_runtimes(["baseline", "pooled+cached"], small_pool_engine(20), CacheConfig(), [seed_workload])
    m = measure(runtimes, repeat(300), MeasureConfig(warmup=50, repeats=3))
    table = m.variants("baseline").set_index("variant")
    assert table.loc["pooled+cached", "speedup"] >= 10, table


def test_bad_measurement_knobs_are_refused():
    with pytest.raises(ValueError, match="repeats = 0 is out of range"):
        MeasureConfig(repeats=0)
    with pytest.raises(ValueError, match="cpu = 999 is not available"):
        MeasureConfig(cpu=999)
    with pytest.raises(ValueError, match="scenario parameter 'slot' is not allowed"):
        scenarios.Scenario.from_dict({"slot": 3})


def test_an_interrupted_save_is_detected_not_read(tmp_path):
    from wasmlab.errors import WasmlabError

    m = scenarios.run(small(requests=20, repeats=1))
    folder = save_measurement(m, tmp_path / "run")
    (folder / "metadata.json").unlink()  # as if killed before the last file
    with pytest.raises(WasmlabError, match="incomplete run folder"):
        load_run(folder)
    assert not list(folder.glob(".*.tmp"))


def test_the_c_calls_of_a_request_are_counted_per_variant_and_path():
    m = scenarios.run(scenarios.Scenario(variants=("pooled+cached", "pooled+cached+pre", "cached@api"), requests=20, repeats=1,
                                         warmup=3, slots=2, limits={"fuel": 100000}))
    counted = m.variants(None).set_index("variant")["crossings_per_request"]
    # store new, context, fuel, instantiate, export lookup, call, store delete: seven on the lean path.
    assert counted["pooled+cached"] == 7 and counted["pooled+cached+pre"] == 7
    assert counted["cached@api"] > counted["pooled+cached"]  # wasmtime-py's objects make more
    plain = scenarios.run(scenarios.Scenario(variants=("pooled+cached",), requests=20, repeats=1, warmup=3, slots=2))
    assert plain.variants(None)["crossings_per_request"].iloc[0] == 6


@pytest.mark.timing
def test_the_c_calls_of_a_request_are_costed_at_their_own_arities():
    m = scenarios.run(scenarios.Scenario(variants=("pooled+cached", "cached@api"), requests=20, repeats=1, warmup=3, slots=2))
    cost = m.variants(None).set_index("variant")["dispatch_ns_per_request"]
    assert (cost > 0).all()
    # wasmtime-py's objects make more calls, each through converting argtypes: more dispatch per request.
    assert cost["cached@api"] > cost["pooled+cached"]


@pytest.mark.timing
def test_a_call_with_more_arguments_costs_more_to_dispatch():
    """Measured side by side, alternating five times and each taken at its least (a burst on the shared machine lands
    in one reading, as CI once read the one-argument call at 360 ns against its usual 165): a six-argument call
    (instantiate) against a one-argument one (the store's context)."""
    probe = (capi.instance_new, (None, None, None, ctypes.c_size_t(0), ctypes.byref(capi.instance_t()), ctypes.byref(capi.trap_slot())))
    engine = wasmtime.Engine()
    readings = [(calibrate.dispatch_ns([probe], engine), calibrate.dispatch_ns([(capi.store_context, (None,))], engine))
                for _ in range(5)]
    six, one = min(r[0] for r in readings), min(r[1] for r in readings)
    assert six > 1.2 * one > 0
    assert calibrate.dispatch_ns([probe, probe], engine) > six  # summed over the calls


def test_a_trace_of_several_modules_is_served_in_one_round():
    assert harness.rounds_for([0] * 50, 10) == 10
    assert harness.rounds_for([0, 1, 0, 2], 10) == 1  # untimed requests between slices would change the cache


def test_a_trace_is_cut_into_nearly_equal_slices_of_at_least_25_requests():
    assert harness.slices(300, 10) == [(30 * k, 30 * (k + 1)) for k in range(10)]
    assert harness.slices(60, 10) == [(0, 30), (30, 60)]  # 10 slices of 6 would be mostly switching
    assert harness.slices(10, 10) == [(0, 10)]
    cuts = harness.slices(1001, 7)
    assert cuts[0][0] == 0 and cuts[-1][1] == 1001 and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    assert max(b - a for a, b in cuts) - min(b - a for a, b in cuts) <= 1


def test_variants_take_turns_slice_by_slice_within_a_repetition(seed_workload):
    runtimes = build_runtimes(["cached", "pooled+cached"], small_pool_engine(2), CacheConfig(), [seed_workload])
    served: list[str] = []
    for name, runtime in runtimes.items():
        def recording(index, handle=runtime.handle, name=name):
            served.append(name)
            return handle(index)
        runtime.handle = recording
    m = measure(runtimes, repeat(100), MeasureConfig(warmup=5, repeats=2, rounds=4))
    timed = served[2 * 5:]  # after each variant's warm-up
    slice_ = harness.REWARM_PER_SLICE + 25  # untimed requests, then the slice's 25
    for repetition in (timed[:8 * slice_], timed[8 * slice_:]):  # 4 rounds x 2 variants, taking turns
        assert [len(list(group)) for _, group in itertools.groupby(repetition)] == [slice_] * 8
    s = m.summary
    assert (s["rounds"] == 4).all() and (s["requests"] == 100).all() and m.metadata["rounds"] == 4
    # The untimed requests are counted nowhere: every timed request of a repetition was a hit, and only those.
    assert (s["cache_hits"] == 100).all() and (s["cache_misses"] == 0).all()
    assert len(m.samples) == 2 * 2 * 100 and (m.samples["latency_ns"] > 0).all()
