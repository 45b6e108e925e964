"""The sweep runner: spec validation, failures, resume after SIGKILL, Dask, and every notebook via smoke.yaml."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from wasmlab import sweep
from wasmlab.errors import ConfigError
from wasmlab.report.sweeps import describe_overlap

# Every sweep here executes notebooks through papermill or starts processes: make check leaves the module to make test.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY = {"requests": 20, "repeats": 1, "warmup": 2, "phases": False}


@pytest.fixture()
def lab(tmp_path: Path) -> Path:
    """A notebooks/ folder with 01 in it and a sweeps/ folder for specs."""
    (tmp_path / "notebooks" / "sweeps").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "01_seed_reproduction.ipynb", tmp_path / "notebooks")
    return tmp_path


def write_spec(lab: Path, text: str, name: str = "spec.yaml") -> Path:
    path = lab / "notebooks" / "sweeps" / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\ngird: {slots: [1]}\n", "gird: unknown key; allowed: name, notebook, parameters, grid, zip, replicates, out, description, wasmtime_release"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {slotz: 4}\n", "parameters.slotz: the notebook has no parameter 'slotz'; allowed: cache_policy, cache_size, call_path"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {requests: many}\n", "parameters.requests: 'many' is a str; allowed: an int"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {slots: [4, 2.5]}\n", "grid.slots: 2.5 is a float; allowed: an int"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {slots: []}\n", "grid.slots: must be a non-empty list of values"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {}\n", "grid: is empty"),
        ("name: s\nnotebook: 07_missing.ipynb\n", "notebook: '07_missing.ipynb' does not exist in"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {output_dir: x}\n", "'output_dir' is set by the sweep runner"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\nzip: {slots: [1, 2], cache_size: [3]}\n", "zip: zipped axes must have the same length"),
        ("name: s\nnotebook: 01_seed_reproduction.ipynb\nreplicates: 0\n", "replicates: 0 is out of range"),
        ("- not a mapping\n", "a sweep spec is a mapping"),
    ],
)
def test_bad_specs_fail_before_anything_runs_with_one_line(lab, text, message):
    path = write_spec(lab, text)
    with pytest.raises(ConfigError) as info:
        sweep.load_specs(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (lab / "data").exists()


def test_bad_spec_on_the_command_line_is_one_line_and_status_2(lab):
    path = write_spec(lab, "name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {slotz: 4}\n")
    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "sweep", str(path)], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_grid_times_zip_times_replicates(lab):
    path = write_spec(lab, "name: s\nnotebook: 01_seed_reproduction.ipynb\ngrid: {slots: [1, 2, 3]}\n"
                           "zip: {cache_size: [4, 8], requests: [10, 20]}\nreplicates: 2\n")
    spec = sweep.load_spec(path)
    points = spec.points()
    assert len(points) == 3 * 2 * 2 and len({p.point_id for p in points}) == 12
    assert {(p.parameters["cache_size"], p.parameters["requests"]) for p in points} == {(4, 10), (8, 20)}


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(lab):
    # A workload that is not there fails in its point's kernel (a bad slots value is refused before any point runs).
    path = write_spec(lab, f"name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {json.dumps(TINY)}\ngrid: {{workload: [nope, seed]}}\n")
    spec = sweep.load_spec(path, lab / "out")
    outcome = sweep.run_sweep(spec, progress=False)
    assert len(outcome.failed) == 1
    (failed_id, error), = outcome.failed.items()
    assert "workload 'nope' is not allowed" in error
    assert (lab / "out" / "points" / failed_id / "executed.ipynb").is_file()
    table = pd.read_parquet(lab / "out" / "results.parquet")
    assert set(table["param_workload"]) == {"seed"} and (table["status"] == "ok").all()
    manifest = json.loads((lab / "out" / "manifest.json").read_text())
    assert manifest["points"][failed_id]["status"] == "failed"
    for status in manifest["points"].values():
        if status["status"] == "ok":
            # Kernel start, imports and plots: accounted as the point's time the harness did not time (no bound on
            # seconds here: this shared machine's speed is not the lab's to assert).
            assert 0 < status["measure_s"] and 0 < status["non_measurement_s"] < status["wall_s"], status
            assert status["non_measurement_s"] == pytest.approx(status["wall_s"] - status["measure_s"], abs=1e-6)
    # One point after another: none was measured beside another.
    assert all(status["overlapped_by"] == [] for status in manifest["points"].values())
    assert "none; each of 2 points ran alone on its host" in describe_overlap(manifest)


def test_sigkill_mid_sweep_then_resume_loses_nothing_and_repeats_nothing(lab):
    path = write_spec(lab, f"name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {json.dumps(TINY)}\ngrid: {{slots: [1, 2]}}\n")
    out = lab / "out"
    command = [sys.executable, "-m", "wasmlab.cli", "sweep", str(path), "--out", str(out)]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("points/*/status.json"))) < 1:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the runner and its kernels, in the middle of a point
    first.wait()
    finished = {p.parent.name: p.read_text() for p in out.glob("points/*/status.json")}
    assert len(finished) == 1, finished  # killed while the second point ran
    assert not (out / "results.parquet").exists()

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{len(finished)} already finished" in second.stdout
    for point_id, text in finished.items():
        assert (out / "points" / point_id / "status.json").read_text() == text  # not run again
    statuses = [json.loads(p.read_text()) for p in out.glob("points/*/status.json")]
    assert len(statuses) == 2 and all(s["status"] == "ok" for s in statuses)
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(set(table["param_slots"])) == [1, 2]
    assert len(table) == 2 * 5  # one row per variant per point: nothing twice, nothing partial
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".tmp-*"))


def test_sweep_on_a_dask_localcluster(lab):
    from dask.distributed import LocalCluster

    path = write_spec(lab, f"name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {json.dumps(TINY)}\ngrid: {{slots: [2, 4]}}\n")
    spec = sweep.load_spec(path, lab / "out")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        outcome = sweep.run_sweep(spec, scheduler=cluster.scheduler_address, progress=False)
    assert not outcome.failed and len(outcome.statuses) == 2
    manifest = json.loads((lab / "out" / "manifest.json").read_text())
    assert manifest["executor"] == cluster.scheduler_address
    assert len(pd.read_parquet(lab / "out" / "results.parquet")) == 2 * 5
    # Two workers of one machine ran the two points at once: each is recorded beside the other, and the report says so.
    (first, a), (second, b) = manifest["points"].items()
    assert a["overlapped_by"] == [second] and b["overlapped_by"] == [first]
    assert "2 of 2 points ran while other points ran on the same host" in describe_overlap(manifest)


def test_overlap_is_found_from_each_points_host_and_times():
    statuses = {
        "a": {"host": "m1", "start_unix": 0.0, "end_unix": 10.0},
        "b": {"host": "m1", "start_unix": 5.0, "end_unix": 12.0},   # overlaps a
        "c": {"host": "m1", "start_unix": 12.0, "end_unix": 20.0},  # starts as b ends: side by side for no time
        "d": {"host": "m2", "start_unix": 1.0, "end_unix": 11.0},   # another machine: disturbs nothing here
        "e": {"host": "m1", "status": "failed"},                    # no times recorded
    }
    assert sweep.overlaps(statuses) == {"a": ["b"], "b": ["a"], "c": [], "d": []}
    manifest = {"points": {pid: {"overlapped_by": others} for pid, others in sweep.overlaps(statuses).items()}}
    assert describe_overlap(manifest).startswith("Overlap of points: 2 of 4 points ran while other points ran")
    assert "not recorded" in describe_overlap({"points": {"a": {}}})


# What each notebook must write at smoke sizes: file -> required columns (None: a figure).
SMOKE_OUTPUTS = {
    "smoke-00": {"comparison.parquet": ["run", "variant", "mean_us", "p50_us", "p99_us", "speedup"],
                 "summary.parquet": ["variant", "latency_us_mean", "call_path"], "comparison.png": None},
    "smoke-01": {"summary.parquet": ["variant", "latency_us_p50", "latency_us_p99", "wasmtime_version", "parameters_json"],
                 "samples.parquet": ["variant", "latency_ns"], "variants.parquet": ["variant", "latency_us_mean", "speedup", "speedup_ci_low"],
                 "phases.parquet": ["variant", "phase", "duration_ns"], "latency_speedup.png": None, "phases.png": None},
    "smoke-02": {"summary.parquet": ["experiment", "slots", "live", "vmsize_mib_reserved_by_pool", "pool_exhausted",
                                     "kib_dirtied", "keep_resident_bytes", "minor_faults_per_request", "drop_store_us_p50", "run_id"],
                 "pool_price.png": None, "keep_resident.png": None},
    "smoke-03": {"summary.parquet": ["distribution", "policy", "cache_size", "cache_hit_rate", "latency_us_p99", "compile_share"],
                 "samples.parquet": ["request_index", "latency_ns", "policy"], "cache_policies.png": None, "latency_over_time.png": None},
    "smoke-04": {"summary.parquet": ["workload", "operation", "setting", "median_us", "wasmtime_version"], "breakdown.png": None},
    "smoke-05": {"binding.parquet": ["variant", "lean_us_mean", "api_us_mean", "ratio", "ci95_low"], "binding.png": None, "phases.png": None},
    "smoke-06": {"summary.parquet": ["threads", "pool_mode", "cache_mode", "call_path", "keep_resident_bytes", "throughput_rps",
                                     "latency_us_p99", "tlb_shootdowns_per_request", "voluntary_switches_per_request"],
                 "open_loop.parquet": ["variant", "offered_rps", "latency_us_p99", "generator_lateness_us_p99"],
                 "concurrency.png": None, "latency_vs_load.png": None},
    "smoke-07": {"summary.parquet": ["variant", "latency_us_p50", "call_path", "workload"],
                 "paths.parquet": ["variant", "native_us_mean", "ratio", "median_ratio", "workload", "path"],
                 "request_shapes.parquet": ["request_headers", "request_body", "call_path", "p50_us", "over_native",
                                            "over_native_low", "over_native_high"],
                 "call_costs.parquet": ["workload", "part", "us_per_call", "share_of_api_call"],
                 "payload_scaling.parquet": ["request_headers", "request_body", "part", "us_per_call"],
                 "beside_core.parquet": ["workload", "kind", "entry", "p50_us", "p50_us_rep_min", "p50_us_rep_max", "over_first"],
                 "seed_table.png": None, "request_shapes.png": None, "beside_core.png": None, "call_costs.png": None,
                 "payload_scaling.png": None},
    "smoke-08": {"summary.parquet": ["release", "library_sha256", "variant", "status", "latency_us_mean", "repetition"],
                 "changes.parquet": ["variant", "from", "to", "ratio", "changed"],
                 "compiles.parquet": ["release", "workload", "status", "compile_us_p50"], "releases.png": None},
    "smoke-09": {"summary.parquet": ["label", "p99_us", "p99_us_worst", "rss_bytes", "address_space_bytes", "recommended"],
                 "runs.parquet": ["stage", "label", "allocator", "latency_us_p99", "rss_bytes", "address_space_bytes", "outcome"],
                 "front.png": None, "metadata.json": None},
    "smoke-10": {"summary.parquet": ["workload", "reuse", "latency_us_p50", "latency_us_p50_first", "latency_us_p50_reused",
                                   "reused_requests", "carried_over_requests", "carried_over_share", "speedup_ci_low"],
                 "snapshots.parquet": ["kib", "call_path", "start_up_p50_us", "snapshot_p50_us", "p50_ratio", "snapshot_faults",
                                       "snapshot_bytes", "wizer_ms"],
                 "reuse.png": None, "snapshots.png": None, "save_and_risk.png": None, "metadata.json": None},
    "smoke-11": {"summary.parquet": ["variant", "runtime", "runtime_version", "latency_us_mean", "repetition"],
                 "server.parquet": ["generator", "connections", "offered_rate", "p50_us", "p99_us", "checked"],
                 "server/metadata.json": None, "runtimes.png": None, "server.png": None, "metadata.json": None},
}


def _run_smoke_spec(spec: sweep.Spec) -> dict[str, str]:
    return sweep.run_sweep(spec, progress=False).failed


def _smoke_outputs_missing(smoke: Path, name: str) -> list[str]:
    """What notebook ``name``'s points of the smoke sweep failed to write (empty: everything, with its columns)."""
    points = list((smoke / name / "points").iterdir())
    missing = [] if points else [f"{name}: no points"]
    for point in points:
        for file, columns in SMOKE_OUTPUTS[name].items():
            target = point / "results" / file
            if not (target.is_file() and target.stat().st_size > 0):
                missing.append(f"{name}: {file}")
            elif columns:
                frame = pd.read_parquet(target)
                lacking = set(columns) - set(frame.columns)
                if len(frame) == 0 or lacking:
                    missing.append(f"{name}: {file} has {len(frame)} rows, lacks {sorted(lacking)}")
    if not (smoke / name / "results.csv").is_file():
        missing.append(f"{name}: results.csv")
    return missing


@pytest.mark.notebook
def test_every_notebook_runs_in_the_smoke_sweep_writes_its_results_and_the_report_exports_html(tmp_path):
    """Every notebook at smoke sizes, two specs at a time (one per core; timings do not matter here, outputs do),
    then ``wasmlab report`` on one of them.  One test, not one per notebook: the sweep runs once whichever pytest
    worker takes it (pytest-xdist's groups do not hold on pytest 9.2, pytest-dev/pytest-xdist#1386)."""
    from concurrent.futures import ProcessPoolExecutor

    smoke = tmp_path / "smoke"
    specs = sweep.load_specs(ROOT / "notebooks" / "sweeps" / "smoke.yaml", smoke)
    assert sorted(spec.name for spec in specs) == sorted(SMOKE_OUTPUTS)
    with ProcessPoolExecutor(max_workers=2) as pool:
        failed = {spec.name: f for spec, f in zip(specs, pool.map(_run_smoke_spec, specs), strict=True) if f}
    assert not failed
    missing = [line for name in sorted(SMOKE_OUTPUTS) for line in _smoke_outputs_missing(smoke, name)]
    assert not missing
    (releases_point,) = (smoke / "smoke-08" / "points").iterdir()
    ran = set(pd.read_parquet(releases_point / "results" / "summary.parquet")["release"])
    assert {"30.0.0", "50.0.1"} <= ran and any(r.startswith("library:") for r in ran), ran  # the spec's wasmtime_library

    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "report", str(smoke / "smoke-01")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "without encryption" not in done.stderr + done.stdout  # the lab's kernels talk over IPC
    html = Path(done.stdout.strip().splitlines()[-1].removeprefix("Report: "))
    assert html.is_file()
    text = html.read_text()
    assert text.count("data:image/png;base64") >= 1 and "Sweep summary" in text and "Traceback" not in text
    assert "Seed table (lean path, slots=" in done.stdout and "Pooled + Cached" in done.stdout
    assert "lean speedup" in done.stdout and "Measured: " in done.stdout and "Harness:" not in done.stdout  # the short one
    from wasmlab.report.html import text_summary

    assert "Harness:" in text_summary(smoke / "smoke-01", full=True)  # every line, one flag away
    assert (smoke / "smoke-01" / "report" / "speedups.png").is_file()


def test_the_wasmtime_library_axis_reaches_the_notebook_as_absolute_paths_checked_when_the_sweep_starts(lab, tmp_path):
    shutil.copy(ROOT / "notebooks" / "08_releases.ipynb", lab / "notebooks")
    head = "name: r\nnotebook: 08_releases.ipynb\n"
    build = lab / "notebooks" / "builds" / "libwasmtime.so"
    spec = sweep.load_spec(write_spec(lab, head + "wasmtime_library: [../builds/libwasmtime.so]\n"))
    assert [p.parameters["libraries"] for p in spec.points()] == [[str(build.resolve())]]
    with pytest.raises(ConfigError, match=r"wasmtime_library: .*libwasmtime.so is not a file; allowed: paths of libwasmtime builds"):
        spec.check_ready()
    build.parent.mkdir()
    build.write_bytes(b"\x7fELF")
    spec.check_ready()
    for text, message in [("wasmtime_library: []\n", "wasmtime_library: []; allowed: a non-empty list of paths"),
                          ("wasmtime_library: [a.so]\nparameters: {libraries: [b.so]}\n", "is also given as 'libraries'")]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            sweep.load_spec(write_spec(lab, head + text))
    with pytest.raises(ConfigError, match="wasmtime_library: the notebook has no 'libraries' parameter"):
        sweep.load_spec(write_spec(lab, "name: s\nnotebook: 01_seed_reproduction.ipynb\nwasmtime_library: [a.so]\n"))


def test_every_shipped_spec_is_valid():
    for path in sorted((ROOT / "notebooks" / "sweeps").glob("*.yaml")):
        for spec in sweep.load_specs(path):
            assert spec.points()


def test_compare_lists_differing_metadata_first_and_ratios(tmp_path):
    def run(out: Path, slots: int) -> None:
        done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "reproduce", "--requests", "40", "--repeats", "5", "--warmup", "5",
                               "--variants", "baseline,pooled+cached", "--slots", str(slots), "--out", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    run(tmp_path / "a", 2)
    run(tmp_path / "b", 4)
    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "compare", str(tmp_path / "a"), str(tmp_path / "b")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.index("Metadata that differs:") < next(i for i, line in enumerate(lines) if "ratio_B_over_A" in line)
    assert any("parameter slots" in line and "2" in line and "4" in line for line in lines)
    assert sum(1 for line in lines if line.strip().startswith("seed")) == 2


def test_a_point_whose_kernel_dies_is_recorded_as_a_crash_and_the_sweep_goes_on(lab):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('output_dir: str = ""\nabort: bool = False')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import resource\n"
        "from wasmlab.config import EngineConfig\n"
        "from wasmlab.host.engine import build_engine\n"
        "if abort:  # wasmtime aborts the process when a pool cannot be reserved and the preflight is off\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))\n"
        "    build_engine(EngineConfig(allocator='pooling', preflight=False))"
    )]
    nbformat.write(nb, lab / "notebooks" / "abort.ipynb")
    path = write_spec(lab, "name: s\nnotebook: abort.ipynb\ngrid: {abort: [true, false]}\n")
    outcome = sweep.run_sweep(sweep.load_spec(path, lab / "out"), progress=False)
    statuses = {s["parameters"]["abort"]: s for s in outcome.statuses.values()}
    assert statuses[True]["status"] == "crash" and statuses[True]["error"].startswith("crash: DeadKernelError")
    assert statuses[False]["status"] == "ok"


def test_a_point_without_a_harness_run_is_not_reported_as_all_overhead(tmp_path):
    """Notebooks 04 and 06 time operations themselves and save no run metadata: only papermill's time is known."""
    executed = tmp_path / "executed.ipynb"
    executed.write_text(json.dumps({"cells": [{"metadata": {"papermill": {"duration": 200.0}}}]}))
    (tmp_path / "results").mkdir()
    timing = sweep._timing(executed, tmp_path / "results", wall=203.5)
    assert timing == {"cells_s": 200.0, "papermill_overhead_s": 3.5}
    (tmp_path / "results" / "metadata.json").write_text(json.dumps({"run_wall_s": 150.0}))
    timing = sweep._timing(executed, tmp_path / "results", wall=203.5)
    assert timing["measure_s"] == 150.0 and timing["non_measurement_s"] == 53.5


def test_a_recipe_is_a_workload_of_a_sweep_like_any_other(lab):
    """A grid's workload axis over two recipes (a component in WAVE, a real library module from npm), taken as it
    takes catalog workloads."""
    recipes = [str(ROOT / "data" / "recipes" / "middleware-reject.yaml"), str(ROOT / "data" / "recipes" / "hash-wasm-sha256.yaml")]
    path = write_spec(lab, f"name: s\nnotebook: 01_seed_reproduction.ipynb\nparameters: {json.dumps({**TINY, 'variants': 'baseline,pooled+cached'})}\n"
                           f"grid: {{workload: {json.dumps(recipes)}}}\n")
    outcome = sweep.run_sweep(sweep.load_spec(path, lab / "out"), progress=False)
    assert not outcome.failed, outcome.failed
    table = pd.read_parquet(lab / "out" / "results.parquet")
    assert set(table["param_workload"]) == set(recipes) and (table["status"] == "ok").all()
    assert set(table.loc[table["param_workload"] == recipes[1], "workload_kind"]) == {"recipe"}


def test_the_wasmtime_release_axis_runs_every_point_across_its_releases(lab, monkeypatch, tmp_path):
    shutil.copy(ROOT / "notebooks" / "08_releases.ipynb", lab / "notebooks")
    head = "name: r\nnotebook: 08_releases.ipynb\n"
    spec = sweep.load_spec(write_spec(lab, head + "wasmtime_release: [30, '50.0.1']\ngrid: {workload: [seed, fresh]}\n"))
    points = spec.points()
    assert len(points) == 2  # the axis does not split points: the releases are interleaved inside each
    assert all(p.parameters["releases"] == ["30.0.0", "50.0.1"] for p in points)
    assert spec.to_dict()["wasmtime_release"] == ["30.0.0", "50.0.1"]
    for text, message in [
        ("grid: {wasmtime_release: [30, 50]}\n", "grid.wasmtime_release: releases are interleaved within each point"),
        ("wasmtime_release: [30, 7]\n", "wasmtime_release: release '7' is not in the manifest"),
        ("wasmtime_release: []\n", "wasmtime_release: []; allowed: a non-empty list of releases"),
        ("wasmtime_release: [30]\nparameters: {releases: ['50']}\n", "wasmtime_release: is also given as 'releases'"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            sweep.load_spec(write_spec(lab, head + text))
    with pytest.raises(ConfigError, match="wasmtime_release: the notebook has no 'releases' parameter"):
        sweep.load_spec(write_spec(lab, "name: s\nnotebook: 01_seed_reproduction.ipynb\nwasmtime_release: [50]\n"))
    # Nothing runs when a release is not fetched: here, a cache folder that holds none.
    monkeypatch.setattr("wasmlab.host.releases.cache_dir", lambda: tmp_path / "no-releases")
    with pytest.raises(ConfigError, match="wasmtime_release: release 30.0.0 is not fetched; run: wasmlab releases fetch 30.0.0"):
        sweep.run_sweep(spec, progress=False)
    assert not (spec.out / "points").exists()
