"""Other wasmtime releases' libraries: the manifest of wasmtime-py wheels the lab may run, and fetching them.

``data/releases/manifest.yaml`` pins, per release, the wheel's file name and SHA-256 and the SHA-256 of the
``_libwasmtime.so`` inside it.  :func:`fetch` downloads a wheel with ``pip download --no-deps`` (never
installs it), checks both digests and extracts the library into ``data/workloads/cache/releases/<version>/``;
a wheel or library whose digest differs is refused in one line and nothing is extracted.  The native
driver (``wasmlab._native``) opens such a library with ``dlopen`` in a child process of its own.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.storage import atomic_write, project_root

MEMBER = "wasmtime/linux-x86_64/_libwasmtime.so"


def manifest_path() -> Path:
    return project_root(Path(__file__).resolve().parent) / "data" / "releases" / "manifest.yaml"


def cache_dir() -> Path:
    return project_root(Path(__file__).resolve().parent) / "data" / "workloads" / "cache" / "releases"


@dataclass(frozen=True)
class Release:
    """One wasmtime release of the manifest, or a user's own libwasmtime build (``user_path`` set; no wheel, its
    ``version`` the label ``library:<first 12 hex of its SHA-256>``, ``library_version`` what the library says of itself)."""

    version: str
    wheel: str
    wheel_sha256: str
    library_sha256: str
    user_path: str = ""
    library_version: str = ""

    @property
    def major(self) -> int | None:
        """The major version (of a user's build: the one its library says, or ``None``)."""
        said = self.library_version if self.user_path else self.version
        head = said.split(".")[0]
        return int(head) if head.isdigit() else None


# A label that is not a version (a user's build, ``library:...``) sorts after every release.
LAST = (1 << 62,)


def version_key(version: object) -> tuple[int, ...]:
    """A release's version as numbers, to sort releases oldest first ("9.0.0" before "10.0.0"); a user's build last."""
    parts = str(version).split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else LAST


def load_manifest(path: Path | None = None) -> dict[str, Release]:
    """Every release the manifest pins, by version, oldest first."""
    data = yaml.safe_load((path or manifest_path()).read_text()) or {}
    releases = {str(v): Release(str(v), e["wheel"], e["wheel_sha256"], e["library_sha256"]) for v, e in (data.get("releases") or {}).items()}
    return dict(sorted(releases.items(), key=lambda item: version_key(item[0])))


def resolve(names: Sequence[str], manifest: dict[str, Release] | None = None) -> list[Release]:
    """Releases by version (``50.0.1``) or major (``50``: its newest patch in the manifest); an unknown one is one line."""
    manifest = manifest if manifest is not None else load_manifest()
    found = []
    for name in names:
        name = str(name).strip()
        if name in manifest:
            found.append(manifest[name])
            continue
        majors = [r for r in manifest.values() if name.isdigit() and r.major == int(name)]
        if not majors:
            raise ConfigError(f"release {name!r} is not in the manifest ({manifest_path().name}); allowed: "
                              f"{', '.join(manifest)} (or their majors); add a release with: wasmlab releases add VERSION")
        found.append(majors[-1])
    return list(dict.fromkeys(found))


def since(major: int, manifest: dict[str, Release] | None = None) -> list[Release]:
    """Every release of the manifest from ``major`` on."""
    manifest = manifest if manifest is not None else load_manifest()
    return [r for r in manifest.values() if (r.major or 0) >= major]


def library_path(release: Release, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / release.version / "_libwasmtime.so"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read in chunks (a library is tens of MiB)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verified_digest(version: str, path: Path, manifest: dict[str, Release] | None = None, user_sha256: str = "") -> str:
    """The SHA-256 of ``path`` when it is the one the manifest pins for release ``version`` (for a user's build:
    ``user_sha256``, the digest its label was made from); otherwise one line refusing it.

    The release's child calls this on the very path it then opens: the parent's check (:func:`fetched`) happened in
    another process, earlier, and the file may have changed (or the job may name another file) since."""
    if user_sha256:
        pinned, source = user_sha256, "its label was made from"
    else:
        manifest = manifest if manifest is not None else load_manifest()
        if version not in manifest:
            raise ConfigError(f"release {version!r} is not in the manifest ({manifest_path().name}); allowed: {', '.join(manifest)}")
        pinned, source = manifest[version].library_sha256, "the manifest pins"
    actual = file_sha256(path)
    if actual != pinned:
        raise ConfigError(f"release {version}: library {path} has SHA-256 {actual}, but {source} {pinned}; refusing to load it")
    return actual


def fetched(release: Release, cache: Path | None = None) -> Path:
    """The verified library of ``release``; one line saying how to fetch it when it is missing or altered."""
    if release.user_path:  # a user's build: the file its label was made from, unchanged since
        verified_digest(release.version, Path(release.user_path), user_sha256=release.library_sha256)
        return Path(release.user_path)
    path = library_path(release, cache)
    if not path.is_file():
        raise ConfigError(f"release {release.version} is not fetched; run: wasmlab releases fetch {release.version}")
    if file_sha256(path) != release.library_sha256:
        raise ConfigError(f"{path} does not have the SHA-256 the manifest pins for release {release.version}; "
                          f"run: wasmlab releases fetch {release.version}")
    return path


def pip_download(release: Release, folder: Path) -> Path:
    """The wheel of ``release`` downloaded into ``folder`` with pip (no dependencies, nothing installed)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:", "--platform", "manylinux1_x86_64",
         "--python-version", "3.11", "--dest", str(folder), f"wasmtime=={release.version}"],
        capture_output=True, text=True,
    )
    wheel = folder / release.wheel
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
        raise WasmlabError(f"could not fetch wasmtime=={release.version}: {last}")
    return wheel


def library_of(wheel: Path) -> bytes:
    """The libwasmtime a wasmtime-py wheel ships (:data:`MEMBER`), or one line saying it has none."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(MEMBER)
        except KeyError:
            raise ConfigError(f"wheel {wheel.name} has no {MEMBER}") from None


def fetch(release: Release, cache: Path | None = None, download: Callable[[Release, Path], Path] = pip_download) -> Path:
    """The library of ``release``, downloaded, verified and extracted first if it is not already."""
    if release.user_path:  # a user's build is not downloaded: its file, checked against its label's digest
        return fetched(release)
    path = library_path(release, cache)
    if path.is_file() and _sha256(path.read_bytes()) == release.library_sha256:
        return path
    with tempfile.TemporaryDirectory(prefix="wasmlab-release-") as tmp:
        wheel = download(release, Path(tmp))
        actual = _sha256(wheel.read_bytes())
        if actual != release.wheel_sha256:
            raise ConfigError(f"wheel {release.wheel} has SHA-256 {actual}, but the manifest pins {release.wheel_sha256}; refusing it")
        data = library_of(wheel)
    actual = _sha256(data)
    if actual != release.library_sha256:
        raise ConfigError(f"{MEMBER} in {release.wheel} has SHA-256 {actual}, but the manifest pins {release.library_sha256}; refusing it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
