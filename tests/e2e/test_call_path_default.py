"""``reproduce`` without ``--call-path`` serves on the native path what the native path serves, and on the lean path
what it refuses (a cache policy other than lru, the disk variant, a workload it cannot call), decided where the runtimes are built (``Scenario.call_path_for``) from the workloads built once; what its results
record, in the provenance, the metadata and every summary row, is the path that ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.workloads.recipe_guests import LIBRARY, write_recipe
from tests.workloads.test_drivers import installed_plugin  # noqa: F401  (a fixture: an installed driver plugin)
from wasmlab.cli import main
from wasmlab.measure.settings import WorkloadSettings


@pytest.mark.parametrize("workload, flags, ran", [("component-seed", [], "native"), ("seed", [], "native"),
                                                 ("seed", ["--cache-policy", "fifo"], "lean")])
def test_without_call_path_what_native_serves_runs_native_and_the_rest_lean_and_says_so(tmp_path: Path, monkeypatch: Any,
                                                                                        workload: str, flags: list[str], ran: str) -> None:
    builds = []
    build = WorkloadSettings.build

    def counted(self: WorkloadSettings) -> Any:
        builds.append(self.spec)
        return build(self)

    monkeypatch.setattr(WorkloadSettings, "build", counted)
    out = tmp_path / "run"
    done = CliRunner().invoke(main, ["reproduce", "--workload", workload, "--requests", "10", "--repeats", "1", "--warmup", "1",
                                     "--variants", "cached,pooled+cached", *flags, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert builds == [workload], builds  # the workloads are built once, by the runtimes, not again to choose the path
    assert f"call path {ran}," in done.stdout, done.stdout
    assert json.loads((out / "metadata.json").read_text())["parameters"]["call_path"] == ran
    assert set(pd.read_parquet(out / "summary.parquet")["call_path"]) == {ran}


def test_a_variant_whose_child_failed_records_the_path_its_siblings_ran(tmp_path: Path) -> None:
    """--isolate: the parent never builds the workloads, so the row of a variant whose child failed (here the native
    engine refuses a pool the child's address space cannot hold) takes the path the others recorded."""
    out = tmp_path / "run"
    done = CliRunner().invoke(main, ["reproduce", "--workload", "component-seed", "--isolate", "--child-address-space", "8GiB",
                                     "--engine", "preflight=false", "--variants", "cached,pooled+cached", "--requests", "10",
                                     "--repeats", "1", "--warmup", "1", "--out", str(out)])
    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary[summary["variant"] == "pooled+cached"]["status"]) in (["crash"], ["error"]), done.output
    assert set(summary["call_path"]) == {"native"}, summary[["variant", "call_path"]]


@pytest.mark.usefixtures("installed_plugin")
def test_a_driver_served_through_the_api_path_records_api(tmp_path: Path) -> None:
    """A plugin driver's module goes through wasmtime-py's objects whatever path was asked: the metadata says so too."""
    from wasmlab.measure.scenario import Scenario, run

    path = write_recipe(tmp_path, LIBRARY, {"driver": "xor", "input": "hi", "expect": {"stdout_match": "^hi$"}}, "library")
    measurement = run(Scenario(workload=path, variants=("cached",), requests=3, repeats=1, warmup=1))
    assert not measurement.errors, measurement.errors
    assert measurement.metadata["parameters"]["call_path"] == "api" and set(measurement.summary["call_path"]) == {"api"}
