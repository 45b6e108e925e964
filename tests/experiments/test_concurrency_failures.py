"""``wasmlab concurrency`` when requests fail: counted by kind, and the table drawn even when none was served."""

from __future__ import annotations

from wasmlab.experiments.concurrency_load import Load, run_load
from wasmlab.measure.scenario import Scenario


def test_concurrency_on_a_component_that_always_traps_counts_every_request_and_draws_its_table(tmp_path):
    """Every request failed, none served: the run's table shows empty latencies (it raised a KeyError before)."""
    trapping = tmp_path / "trap.wat"
    trapping.write_text('(component (core module $t (func (export "boom") (param i32) (result i32) unreachable))'
                        ' (core instance $j (instantiate $t))'
                        ' (func (export "run") (param "x" u32) (result u32) (canon lift (core func $j "boom"))))')
    scenario = Scenario(workload=str(trapping), variants=("pooled+cached",), requests=300, warmup=5, repeats=1, slots=2)
    served = run_load(scenario, Load(threads=(2,), call_paths=("native",)))
    row = served.summary.iloc[0]
    assert row["failed_requests"] == 600 and row["served_requests"] == 0 and row["outcome_trap"] == 600
    assert row["latency_us_p99"] != row["latency_us_p99"]  # NaN: nothing to time
