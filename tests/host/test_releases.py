"""Other releases' libraries: the manifest, fetching with both digests checked, and the same scenario on two releases."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wasmlab.errors import ConfigError
from wasmlab.host import releases as rel

ROOT = Path(__file__).resolve().parents[2]


def fake_wheel(folder: Path, name: str, library: bytes) -> Path:
    wheel = folder / name
    with zipfile.ZipFile(wheel, "w") as archive:
        # A fixed timestamp: a wheel made again a second later is the same bytes, as PyPI's same wheel is.
        archive.writestr(zipfile.ZipInfo(rel.MEMBER, date_time=(2026, 1, 1, 0, 0, 0)), library)
    return wheel


def release_for(wheel: Path, library: bytes, **changes: str) -> rel.Release:
    fields = {"version": "99.0.0", "wheel": wheel.name, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
              "library_sha256": hashlib.sha256(library).hexdigest(), **changes}
    return rel.Release(**fields)


def test_the_manifest_pins_every_release_and_majors_resolve_to_their_newest_patch():
    manifest = rel.load_manifest()
    assert {"30.0.0", "40.0.0", "50.0.1"} <= set(manifest)
    for release in manifest.values():
        assert release.wheel.startswith(f"wasmtime-{release.version}-") and len(release.wheel_sha256) == len(release.library_sha256) == 64
    assert [r.version for r in rel.resolve(["50", "40.0.0"])] == ["50.0.1", "40.0.0"]
    with pytest.raises(ConfigError, match=r"release '99' is not in the manifest .*add a release with: wasmlab releases add VERSION"):
        rel.resolve(["99"])


def test_a_wheel_whose_digest_differs_is_refused_and_nothing_is_extracted(tmp_path):
    library = b"\x7fELF not really a library"
    wheel = fake_wheel(tmp_path, "wasmtime-99.0.0-py3-none-manylinux1_x86_64.whl", library)
    release = release_for(wheel, library, wheel_sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match=r"has SHA-256 [0-9a-f]{64}, but the manifest pins 0{64}; refusing it"):
        rel.fetch(release, cache, download=lambda r, folder: wheel)
    assert not cache.exists()
    tampered = release_for(wheel, library, library_sha256="1" * 64)
    with pytest.raises(ConfigError, match="_libwasmtime.so in .* but the manifest pins 1{64}"):
        rel.fetch(tampered, cache, download=lambda r, folder: wheel)
    assert not cache.exists()


def test_a_verified_library_is_extracted_once_and_checked_when_used(tmp_path):
    library = b"\x7fELF a library's bytes"
    wheel = fake_wheel(tmp_path, "wasmtime-99.0.0-py3-none-manylinux1_x86_64.whl", library)
    release = release_for(wheel, library)
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match="release 99.0.0 is not fetched; run: wasmlab releases fetch 99.0.0"):
        rel.fetched(release, cache)
    path = rel.fetch(release, cache, download=lambda r, folder: wheel)
    assert path.read_bytes() == library and rel.fetched(release, cache) == path
    assert rel.fetch(release, cache, download=lambda r, folder: pytest.fail("downloaded again")) == path
    path.write_bytes(b"altered")
    with pytest.raises(ConfigError, match="does not have the SHA-256 the manifest pins"):
        rel.fetched(release, cache)


def wasmlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.mark.slow  # a child per release
def test_the_same_scenario_runs_on_two_releases_each_result_tagged_with_its_library():
    """The smoke point of the releases sweep: 30 has no pooling functions, 50 has every one (make components fetches both)."""
    manifest = rel.load_manifest()
    for version in ("30.0.0", "50.0.1"):
        rel.fetched(manifest[version])  # fetched by `make components`
    done = wasmlab("releases", "run", "--releases", "30,50", "--workload", "seed", "--variants", "baseline,pooled+cached",
                   "--requests", "50", "--repeats", "2", "--warmup", "5", "--slots", "4", "--format", "json", "--no-save")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    results = {(r["release"], r["variant"]): r for r in data["results"]}
    assert results["30.0.0", "baseline"]["status"] == results["50.0.1", "baseline"]["status"] == "ok"
    assert results["50.0.1", "pooled+cached"]["status"] == "ok" and results["50.0.1", "pooled+cached"]["latency_us_mean"] > 0
    assert results["30.0.0", "pooled+cached"]["status"] == "unsupported"
    assert "has no function wasmtime_pooling_allocation_config_new" in results["30.0.0", "pooled+cached"]["error"]
    for run in data["runs"] + data["results"]:
        assert run["library_sha256"] == manifest[run["release"]].library_sha256
    # every repetition ran each release once, in rotated order
    assert sorted((r["repetition"], r["release_position"], r["release"]) for r in data["runs"] if r["variant"] == "baseline") == [
        (0, 0, "30.0.0"), (0, 1, "50.0.1"), (1, 0, "50.0.1"), (1, 1, "30.0.0")]


@pytest.mark.slow  # a child per release
def test_a_component_runs_on_releases_whose_c_api_serves_components_and_is_refused_in_one_line_elsewhere():
    """30 has no component C API; 50 serves the middleware on the native driver, its result tree compared in C on every
    request; pre-instantiation is unsupported for components on every release (the component C API has no InstancePre)."""
    manifest = rel.load_manifest()
    for version in ("30.0.0", "50.0.1"):
        rel.fetched(manifest[version])
    done = wasmlab("releases", "run", "--releases", "30,50", "--workload", "middleware", "--variants",
                   "baseline,pooled+cached,pooled+cached+pre", "--requests", "30", "--repeats", "1", "--warmup", "3",
                   "--slots", "4", "--format", "json", "--no-save")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    results = {(r["release"], r["variant"]): r for r in data["results"]}
    runs = {(r["release"], r["variant"]): r for r in data["runs"]}
    for variant in ("baseline", "pooled+cached"):
        assert results["50.0.1", variant]["status"] == "ok" and runs["50.0.1", variant]["outcome_ok"] == 30
        refused = results["30.0.0", variant]
        assert refused["status"] == "unsupported" and "has no function wasmtime_component_new" in refused["error"]
        assert "\n" not in refused["error"] and "/" not in refused["error"].partition("release 30.0.0: ")[2]
    assert results["50.0.1", "pooled+cached+pre"]["status"] == "unsupported"
    assert "no InstancePre for components" in results["50.0.1", "pooled+cached+pre"]["error"]


def test_a_release_not_in_the_manifest_is_one_line():
    done = wasmlab("releases", "run", "--releases", "30,99")
    assert done.returncode == 2 and "release '99' is not in the manifest" in done.stderr and "Traceback" not in done.stderr


# Uses the exception-handling proposal, which release 30 cannot turn on and 50 has on by default.
THROWS = """(module
  (tag $e (param i32))
  (func (export "run") (param i32) (result i32)
    (block $h (result i32)
      (try_table (catch $e $h) (throw $e (local.get 0)))
      (i32.const 0))))"""


def test_a_module_a_release_cannot_compile_is_unsupported_with_its_reason(tmp_path):
    from wasmlab.measure.release_child import needed_feature

    assert needed_feature("failed to parse: exceptions proposal not enabled (at offset 0x1a)") == "exceptions"
    assert needed_feature("exception refs not supported without the exception handling feature (at offset 0x3c)") == "exceptions"
    assert needed_feature("unexpected end of file") is None
    path = tmp_path / "throws.wat"
    path.write_text(THROWS)
    done = wasmlab("releases", "run", "--releases", "30,50", "--workload", "seed", "--variants", "baseline", "--requests", "5",
                   "--repeats", "1", "--warmup", "1", "--compile", str(path), "--format", "json", "--no-save")
    assert done.returncode == 0, done.stderr
    compiles = {row["release"]: row for row in json.loads(done.stdout)["compiles"]}
    assert compiles["50.0.1"]["status"] == "ok" and compiles["50.0.1"]["compile_us_p50"] > 0
    assert compiles["30.0.0"]["status"] == "unsupported"
    assert "exceptions proposal not enabled" in compiles["30.0.0"]["error"]
    assert "has no function wasmtime_config_wasm_exceptions_set" in compiles["30.0.0"]["error"]


def test_a_release_that_aborts_is_a_crash_row_and_the_next_child_runs():
    """wasmtime aborts (a Rust panic) when a pool cannot reserve its address space: that child's rows say crash,
    with the signal, and the run goes on with the next child."""
    from wasmlab.measure.release_run import pooling_knobs, run_child

    release = rel.load_manifest()["50.0.1"]
    job = {"release": release.version, "library": str(rel.fetched(release)), "workload": "seed", "variants": ["pooled+cached"], "requests": 20, "warmup": 2, "cache_size": 4, "repetition": 0,
           "pooling": pooling_knobs(100_000, {})}  # 100,000 memories of 4 GiB each: more than the address space
    crashed = run_child(job)
    assert [row["status"] for row in crashed] == ["crash"] and crashed[0]["error"].startswith("crash (SIGABRT): "), crashed
    served = run_child({**job, "pooling": pooling_knobs(4, {})})
    assert [row["status"] for row in served] == ["ok"] and served[0]["latency_us_mean"] > 0


def tampered_copy(release: rel.Release, folder: Path) -> Path:
    """A copy of ``release``'s real library with one byte flipped in the middle (still an ELF file dlopen would open)."""
    data = bytearray(rel.fetched(release).read_bytes())
    data[len(data) // 2] ^= 0x01
    copy = folder / "_libwasmtime.so"
    copy.write_bytes(bytes(data))
    return copy


def test_the_child_hashes_the_library_it_opens_refuses_another_and_records_its_own_digest(tmp_path):
    """The job names the file the child opens; the child hashes that very file against the manifest's pin (not a
    digest the job carries), so a library altered after the parent's check is refused in one line, not loaded."""
    from wasmlab.measure.release_run import pooling_knobs, run_child

    release = rel.load_manifest()["38.0.0"]
    tampered = tampered_copy(release, tmp_path)
    job = {"release": release.version, "library": str(tampered), "workload": "seed", "variants": ["baseline"], "requests": 5,
           "warmup": 1, "cache_size": 4, "repetition": 0, "pooling": pooling_knobs(4, {})}
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    with pytest.raises(ConfigError) as refused:
        run_child(job)
    assert str(refused.value) == (f"release 38.0.0: library {tampered} has SHA-256 {actual}, but the manifest pins "
                                  f"{release.library_sha256}; refusing to load it")
    real = rel.fetched(release)
    rows = run_child({**job, "library": str(real)})
    assert [row["status"] for row in rows] == ["ok"], rows
    assert rows[0]["library_sha256"] == hashlib.sha256(real.read_bytes()).hexdigest() == release.library_sha256


def test_a_library_altered_after_the_parents_check_stops_the_command_with_one_line(tmp_path, monkeypatch):
    """The parent's check passes (its ``fetched`` answers with the altered copy, as if the file changed after the
    check); the child refuses the file and the command ends with that one line and exit status 2."""
    from click.testing import CliRunner

    from wasmlab.cli import main
    from wasmlab.measure import release_run

    release = rel.load_manifest()["38.0.0"]
    tampered = tampered_copy(release, tmp_path)
    monkeypatch.setattr(release_run, "fetched", lambda r: tampered)
    done = CliRunner().invoke(main, ["releases", "run", "--releases", "38", "--variants", "baseline", "--requests", "5",
                                     "--repeats", "1", "--warmup", "1", "--out", str(tmp_path / "run")])
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert lines[-1].startswith(f"wasmlab: error: release 38.0.0: library {tampered} has SHA-256 ") and "Traceback" not in done.output
    assert lines[-1].endswith(f"but the manifest pins {release.library_sha256}; refusing to load it")
