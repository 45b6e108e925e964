"""`wasmlab releases add`: a new release pinned on first fetch (both digests written, said so), one already in the
manifest verified and never rewritten, a version PyPI lacks in one line; `--library PATH`: a user's own build."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wasmlab.errors import ConfigError
from wasmlab.host import release_pins
from wasmlab.host import releases as rel

ROOT = Path(__file__).resolve().parents[2]


def wasmlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def fake_download(library: bytes, version: str = "99.0.1"):
    asked: list[str] = []

    def download(spec: str, folder: Path) -> Path:
        asked.append(spec)
        wheel = folder / f"wasmtime-{version}-py3-none-manylinux1_x86_64.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            # A fixed timestamp: a wheel made again a second later is the same bytes, as PyPI's same wheel is.
            archive.writestr(zipfile.ZipInfo(rel.MEMBER, date_time=(2026, 1, 1, 0, 0, 0)), library)
        return wheel

    return download, asked


def test_a_new_release_is_pinned_on_first_fetch_and_then_verified_never_rewritten(tmp_path):
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(rel.manifest_path(), manifest)
    before = rel.load_manifest(manifest)
    library = b"\x7fELF a library's bytes"
    download, asked = fake_download(library)
    added = release_pins.add("99", manifest, tmp_path / "cache", download=download)
    assert asked == ["wasmtime>=99.0.0,<100"] and added.pinned_now
    assert added.line().startswith("99.0.1: pinned on first fetch: wheel wasmtime-99.0.1-py3-none-manylinux1_x86_64.whl sha256 ")
    assert added.library.read_bytes() == library
    after = rel.load_manifest(manifest)
    assert after["99.0.1"].library_sha256 == hashlib.sha256(library).hexdigest()
    assert {k: v for k, v in after.items() if k != "99.0.1"} == before and list(after)[-1] == "99.0.1"
    assert manifest.read_text().startswith(rel.manifest_path().read_text().split("releases:")[0])  # the header kept
    text = manifest.read_text()
    again = release_pins.add("99.0.1", manifest, tmp_path / "cache", download=lambda spec, folder: pytest.fail("downloaded again"))
    assert not again.pinned_now and "already in the manifest; verified" in again.line() and manifest.read_text() == text
    # the major again: PyPI's newest patch is the one pinned, its digests checked against the pins, nothing written
    assert not release_pins.add("99", manifest, tmp_path / "cache", download=download).pinned_now and manifest.read_text() == text
    other, _ = fake_download(b"\x7fELF other bytes")
    with pytest.raises(ConfigError, match="but the manifest pins .*; refusing it"):
        release_pins.add("99", manifest, tmp_path / "cache", download=other)
    assert manifest.read_text() == text


def test_an_existing_release_is_verified_and_the_manifest_is_unchanged():
    rel.fetched(rel.load_manifest()["50.0.1"])  # fetched by `make components`
    text = rel.manifest_path().read_bytes()
    done = wasmlab("releases", "add", "50.0.1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("50.0.1: already in the manifest; verified against its pins (library sha256 3127ca42fe7c)")
    assert rel.manifest_path().read_bytes() == text


@pytest.mark.parametrize(("version", "expected"), [("4x", "release '4x' is not a version"), ("99.0.0", "release 99.0.0: ")])
def test_a_version_that_is_not_on_pypi_is_one_line_exit_2(version, expected):
    text = rel.manifest_path().read_bytes()
    done = wasmlab("releases", "add", version)
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "allowed: a wasmtime-py version on PyPI" in done.stderr
    assert rel.manifest_path().read_bytes() == text


def test_the_manifest_has_the_newest_patch_of_every_major_from_40_to_50():
    majors = {r.major for r in rel.load_manifest().values()}
    assert set(range(40, 51)) <= majors


def test_a_path_that_is_not_a_loadable_libwasmtime_is_one_line(tmp_path):
    junk = tmp_path / "junk.so"
    junk.write_text("not a library")
    libm = next(p for p in (Path("/lib/x86_64-linux-gnu/libm.so.6"), Path("/usr/lib/x86_64-linux-gnu/libm.so.6")) if p.exists())
    for path, expected in ((junk, "not a loadable libwasmtime"), (tmp_path / "none.so", "no such file"),
                           (libm, "not a loadable libwasmtime (")):
        done = wasmlab("releases", "run", "--library", str(path), "--requests", "5", "--repeats", "1", "--no-save")
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # a child to read the version, one per repetition
def test_a_users_own_build_is_measured_labelled_by_its_digest_with_the_version_it_says(tmp_path):
    pinned = rel.fetched(rel.load_manifest()["50.0.1"])
    build = tmp_path / "libwasmtime-mine.so"
    shutil.copy(pinned, build)
    digest = hashlib.sha256(build.read_bytes()).hexdigest()
    done = wasmlab("releases", "run", "--library", str(build), "--workload", "seed", "--variants", "pooled+cached", "--requests", "30",
                   "--repeats", "1", "--warmup", "3", "--slots", "4", "--format", "json", "--no-save")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    label = f"library:{digest[:12]}"
    (result,) = data["results"]
    assert result["release"] == label and result["status"] == "ok" and result["library_sha256"] == digest
    assert data["metadata"]["releases"][label] == {"library": str(build), "library_sha256": digest, "library_version": "50"}


def test_the_child_refuses_a_users_build_that_changed_since_it_was_labelled(tmp_path):
    from wasmlab.measure.release_run import run_child

    build = tmp_path / "lib.so"
    build.write_bytes(b"\x7fELF changed")
    job = {"release": "library:000000000000", "library": str(build), "user_sha256": "0" * 64}
    with pytest.raises(ConfigError, match=r"library:000000000000: library .* has SHA-256 [0-9a-f]{64}, but its label was made from 0{64}"):
        run_child(job)


def elf_with(sections: dict[bytes, bytes]) -> bytes:
    """An ELF64 file with these sections (and its section-name table), as a serialized module is laid out."""
    import struct

    names = b"\0" + b"".join(name + b"\0" for name in sections) + b".shstrtab\0"
    body, offsets = b"", []
    for data in [*sections.values(), names]:
        offsets.append(64 + len(body))
        body += data
    table = 64 + len(body)
    headers = struct.pack("<IIQQQQIIQQ", *[0] * 10)
    name_at = 1
    for (name, data), offset in zip(sections.items(), offsets):
        headers += struct.pack("<IIQQQQIIQQ", name_at, 1, 0, 0, offset, len(data), 0, 0, 1, 0)
        name_at += len(name) + 1
    headers += struct.pack("<IIQQQQIIQQ", name_at, 3, 0, 0, offsets[-1], len(names), 0, 0, 1, 0)
    head = b"\x7fELF" + bytes(36) + struct.pack("<Q", table) + bytes(10) + struct.pack("<HHH", 64, len(sections) + 2, len(sections) + 1)
    return head + body + headers


def test_an_artifacts_engine_section_says_the_version():
    from wasmlab.host.user_library import UNKNOWN, engine_section_version

    assert engine_section_version(b"not an elf") == UNKNOWN
    assert engine_section_version(elf_with({b".text": b"\x90" * 8, b".wasmtime.engine": b"\x00\x0630.0.0\x18x86_64"})) == "30.0.0"
    assert engine_section_version(elf_with({b".wasmtime.engine": b"\x00\x0250\x18x86_64"})) == "50"
    assert engine_section_version(elf_with({b".text": b"\x00\x0250"})) == UNKNOWN


def test_a_release_library_says_its_own_version_read_in_a_child():
    from wasmlab.measure.release_run import user_library

    release = rel.load_manifest()["30.0.0"]
    found = user_library(rel.fetched(release))  # fetched by `make components`
    assert (found.library_version, found.version, found.library_sha256) == ("30.0.0", f"library:{release.library_sha256[:12]}",
                                                                           release.library_sha256)
    assert found.major == 30 and rel.version_key(found.version) > rel.version_key("50.0.1")  # a user's build sorts last
