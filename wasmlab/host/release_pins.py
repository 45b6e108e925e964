"""``wasmlab releases add VERSION``: a release's manifest line written from its wheel, digests pinned on first fetch.

A version not in the manifest (``48.0.0``, or a major, ``48``: its newest patch on PyPI) is downloaded with
``pip download --no-deps`` (never installed); the wheel's SHA-256 and that of the ``_libwasmtime.so`` inside it are
written into ``data/releases/manifest.yaml`` (trust on first use, said so in one line) and the library is extracted
into the cache as :func:`wasmlab.host.releases.fetch` does.  A version already in the manifest is verified against
its pins (fetched if it is not cached), never rewritten.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wasmlab.errors import ConfigError
from wasmlab.host.releases import Release, cache_dir, fetch, library_of, library_path, load_manifest, manifest_path, version_key
from wasmlab.storage import atomic_write

VERSION = re.compile(r"\d+(\.\d+\.\d+)?")
ALLOWED = "allowed: a wasmtime-py version on PyPI, e.g. 48.0.0, or a major, e.g. 48 (its newest patch)"
WHEEL = re.compile(r"wasmtime-(\d+\.\d+\.\d+)-py3-none-manylinux1_x86_64\.whl")


@dataclass(frozen=True)
class Added:
    """What ``add`` did: the release, its library in the cache, and whether its digests were pinned now or verified."""

    release: Release
    library: Path
    pinned_now: bool

    def line(self) -> str:
        r = self.release
        if self.pinned_now:
            return (f"{r.version}: pinned on first fetch: wheel {r.wheel} sha256 {r.wheel_sha256}, library sha256 "
                    f"{r.library_sha256} (written to {manifest_path().name}); library {self.library}")
        return f"{r.version}: already in the manifest; verified against its pins (library sha256 {r.library_sha256[:12]}): {self.library}"


def requirement(version: str) -> str:
    """The pip requirement of ``version``: exact, or a major's newest patch; a malformed version is one line."""
    if not VERSION.fullmatch(version):
        raise ConfigError(f"release {version!r} is not a version; {ALLOWED}")
    if "." in version:
        return f"wasmtime=={version}"
    major = int(version)
    return f"wasmtime>={major}.0.0,<{major + 1}"


def pip_download_spec(spec: str, folder: Path) -> Path:
    """The linux x86_64 wheel that pip picks for ``spec``, downloaded into ``folder`` (no dependencies, nothing
    installed); a version PyPI does not have is one line."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:", "--platform", "manylinux1_x86_64",
         "--python-version", "3.11", "--dest", str(folder), spec],
        capture_output=True, text=True,
    )
    wheels = sorted(folder.glob("wasmtime-*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        errors = [line for line in done.stderr.strip().splitlines() if line.startswith("ERROR")]
        last = (errors or done.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
        raise ConfigError(f"release {spec.removeprefix('wasmtime').removeprefix('==')}: no wasmtime-py wheel on PyPI ({last}); {ALLOWED}")
    return wheels[0]


def pinned_release(wheel: Path) -> tuple[Release, bytes]:
    """The manifest entry of a downloaded wheel (its version from the file name) and its library's bytes."""
    import hashlib

    found = WHEEL.fullmatch(wheel.name)
    if not found:
        raise ConfigError(f"wheel {wheel.name} is not a linux x86_64 wasmtime-py wheel; {ALLOWED}")
    data = library_of(wheel)
    with open(wheel, "rb") as handle:
        wheel_sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return Release(found.group(1), wheel.name, wheel_sha256, hashlib.sha256(data).hexdigest()), data


def manifest_line(release: Release) -> str:
    return (f'  "{release.version}": {{wheel: {release.wheel}, wheel_sha256: {release.wheel_sha256}, '
            f"library_sha256: {release.library_sha256}}}")


def write_manifest(releases: dict[str, Release], path: Path | None = None) -> Path:
    """The manifest with every release's line, oldest first, after its comment header (kept as it is)."""
    path = path or manifest_path()
    lines = path.read_text().splitlines()
    header = lines[: lines.index("releases:") + 1]
    entries = [manifest_line(r) for r in sorted(releases.values(), key=lambda r: version_key(r.version))]
    return atomic_write(path, lambda tmp: tmp.write_text("\n".join(header + entries) + "\n"))


def known(version: str, manifest: dict[str, Release]) -> Release | None:
    """The manifest's release for an exact version, or ``None`` (a major is looked up on PyPI: a newer patch may exist)."""
    return manifest.get(version) if "." in version else None


def add(version: str, manifest_file: Path | None = None, cache: Path | None = None,
        download: Callable[[str, Path], Path] = pip_download_spec) -> Added:
    """Release ``version`` in the manifest: verified when it is there, else fetched and pinned (see the module docstring)."""
    manifest = load_manifest(manifest_file)
    spec = requirement(version.strip())
    present = known(version.strip(), manifest)
    if present is not None:
        return Added(present, fetch(present, cache), pinned_now=False)
    with tempfile.TemporaryDirectory(prefix="wasmlab-release-") as tmp:
        release, data = pinned_release(download(spec, Path(tmp)))
    if release.version in manifest:  # a major whose newest patch is already pinned: check the download against it
        pinned = manifest[release.version]
        if (pinned.wheel_sha256, pinned.library_sha256) != (release.wheel_sha256, release.library_sha256):
            raise ConfigError(f"wheel {release.wheel} has SHA-256 {release.wheel_sha256} (library {release.library_sha256}), "
                              f"but the manifest pins {pinned.wheel_sha256} (library {pinned.library_sha256}); refusing it")
        return Added(pinned, fetch(pinned, cache), pinned_now=False)
    path = library_path(release, cache or cache_dir())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    write_manifest({**manifest, release.version: release}, manifest_file)
    return Added(release, path, pinned_now=True)

