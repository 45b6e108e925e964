"""The benchmark scripts still run against today's code (at smoke sizes; their figures are read in the notes, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_json(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--format", "json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_the_component_bar_script_pairs_the_bare_loop_with_each_lab_path() -> None:
    result = run_json("component_vs_bare.py", "--requests", "100", "--api-requests", "5", "--rounds", "2", "--warmup", "20")
    for side in ("c", "native", "lean", "api"):
        assert float(result[f"{side}_p50_us"]) > 0  # type: ignore[arg-type]
    for ratio in ("native_over_c", "lean_over_native", "api_over_native"):
        point, low, high = result[ratio]  # type: ignore[misc]
        assert 0 < low <= point <= high
    assert result["requests_per_block"] == {"c": 100, "native": 100, "lean": 100, "api": 5}


@pytest.mark.slow
def test_the_core_bar_script_runs_the_c_loop_in_process() -> None:
    result = run_json("native_vs_c.py", "--requests", "100", "--pairs", "2", "--warmup", "20", "--in-process")
    assert result["c_loop"] == "in this process (a shared library)"
    point, low, high = result["native_over_c"]  # type: ignore[misc]
    assert 0 < low <= point <= high
