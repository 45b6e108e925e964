"""The provenance lines of a run in which a path served no request successfully: no path ratio to print, no crash."""

from __future__ import annotations

from wasmlab.measure.scenario import Scenario, run
from wasmlab.report import text

EXITS_1 = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") i32.const 1 call $exit))"""


def test_a_run_whose_every_request_failed_on_both_paths_has_provenance_without_a_path_ratio(tmp_path):
    guest = tmp_path / "exit1.wat"
    guest.write_text(EXITS_1)
    measurement = run(Scenario(workload=str(guest), variants="pooled+cached", call_path="lean,api", requests=10, repeats=1,
                               warmup=1, slots=2))
    assert text.api_over_lean(measurement) is None
    lines = text.provenance(measurement)
    assert "Binding:" not in lines and "Machine:" in lines
