"""A recipe's YAML parsed section by section, every key checked: one line naming the key when one is wrong.

:func:`parse` dispatches: the module, its WASI context, the steps, what the request must end with, the stubbed
imports, a single WAVE ``invoke``, and the plain options; each section is one function, and the checks that
join two sections (a byte check needs a read step, a file check a writable directory) sit with the later one."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from wasmlab.errors import ConfigError
from wasmlab.workloads.expectation import ExpectedBytes
from wasmlab.workloads.recipe import steps as step_parsers
from wasmlab.workloads.recipe.fields import digest_checks, int64, integer, mapping, regex
from wasmlab.workloads.recipe.model import (
    DEFAULT_INIT,
    DIGESTS,
    DIR_KEYS,
    EXPECT_KEYS,
    FILE_CHECKS,
    RECIPE_KEYS,
    WASI_KEYS,
    Call,
    Dir,
    Expect,
    Invoke,
    Read,
    Recipe,
    Step,
)

OPTIONS = ("allocator", "memory", "driver", "input")


class WasiContext(NamedTuple):
    """The ``wasi:`` section, as the :class:`Recipe` fields it fills."""

    argv: tuple[str, ...]
    stdin: bytes | None
    env: tuple[tuple[str, str], ...]
    dirs: tuple[Dir, ...]


class Options(NamedTuple):
    """The plain strings of a recipe."""

    allocator: str
    memory: str
    driver: str
    input: str


def module_section(data: Mapping[str, Any], base: Path) -> tuple[str, Path | None]:
    """``module:`` as written, and its path when it names a file (else a catalog name)."""
    module = data.get("module")
    if not isinstance(module, str) or not module:
        raise ConfigError("recipe module: missing; allowed: a path relative to the recipe (.wasm, .wat) or a catalog name")
    return module, (base / module) if module.endswith((".wasm", ".wat")) or "/" in module else None


def wasi_section(data: Any, base: Path) -> WasiContext:
    """``wasi:``: argv, stdin (read now), environment and directories, as the :class:`Recipe` fields they fill."""
    wasi = mapping(data or {}, "wasi", WASI_KEYS)
    argv = wasi.get("argv", [])
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ConfigError(f"recipe wasi.argv: {argv!r} is not a list of strings")
    stdin = None
    if "stdin" in wasi:
        stdin_path = base / str(wasi["stdin"])
        try:
            stdin = stdin_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"recipe wasi.stdin: {str(stdin_path)!r} cannot be read ({exc.strerror})") from None
    env = mapping(wasi.get("env") or {}, "wasi.env")
    if not isinstance(wasi.get("dirs") or [], list):
        raise ConfigError(f"recipe wasi.dirs: {wasi['dirs']!r} is not a list of directories (guest:, host:, writable:)")
    dirs = tuple(directory(entry, f"wasi.dirs[{i}]", base) for i, entry in enumerate(wasi.get("dirs") or []))
    return WasiContext(tuple(argv), stdin, tuple((str(k), str(v)) for k, v in env.items()), dirs)


def directory(data: Any, where: str, base: Path) -> Dir:
    """One ``wasi.dirs`` entry: read-only from the host or a package resource, or writable (fresh, or a host copy)."""
    entry = mapping(data, where, DIR_KEYS)
    guest, host, writable, resource = entry.get("guest"), entry.get("host"), entry.get("writable", False), entry.get("resource")
    if resource is not None and (host is not None or writable or not isinstance(resource, str)):
        raise ConfigError(f"recipe {where}.resource: {resource!r}; allowed: a folder of the module's package, read-only, "
                          f"without host:")
    guest = guest_path(guest, f"recipe {where}.guest")
    if not isinstance(writable, bool):
        raise ConfigError(f"recipe {where}.writable: {writable!r} is not true or false")
    if host is None and not writable and resource is None:
        raise ConfigError(f"recipe {where}: a read-only directory needs host:; allowed: host: DIR, or writable: true for a fresh one")
    resolved = None
    if host is not None:
        resolved = base / str(host)
        if not resolved.is_dir():
            raise ConfigError(f"recipe {where}.host: {str(resolved)!r} is not a directory")
    return Dir(guest, str(resolved) if resolved else None, writable, resource)


def guest_path(guest: Any, where: str) -> str:
    """A preopen's guest path: absolute (``/out``), or relative as a standard suite's (Sightglass preopens its benchmark's
    folder at ``.``, the working directory, where the guest opens ``foo.input``); trailing slashes dropped, no ``..``."""
    if not isinstance(guest, str) or not guest.strip() or "\0" in guest or ".." in guest.split("/"):
        raise ConfigError(f"{where}: {guest!r} is not a guest path; allowed: an absolute path such as /out, or a "
                          f"relative one such as . (the working directory) or data, without ..")
    return guest.rstrip("/") or "/"


def expected_file(value: Any, where: str, base: Path) -> ExpectedBytes | None:
    """``expect.stdout_file`` / ``stderr_file``: the file's bytes (read now: a missing file is one line before anything runs)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"recipe {where}: {value!r} is not a file; allowed: a path relative to the recipe, e.g. NAME.stdout.expected")
    path = base / value
    try:
        return ExpectedBytes(value, path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"recipe {where}: {str(path)!r} cannot be read ({exc.strerror}); allowed: a readable file of the "
                          f"output's exact bytes") from None


def stream_digest(value: Any, where: str) -> str:
    """A stream's expected SHA-256: 64 hexadecimal digits, kept in lower case."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ConfigError(f"recipe {where}: {value!r} is not a SHA-256; allowed: 64 hexadecimal digits (sha256sum's output)")
    return value.lower()


def expect_section(data: Any, steps: Sequence[Step], dirs: Sequence[Dir], base: Path) -> Expect:
    """``expect:``: exit, output patterns and exact outputs, the last call's result, digests of reads and of written files."""
    expect_data = mapping(data or {}, "expect", EXPECT_KEYS)
    read_names = {s.name for s in steps if isinstance(s, Read)}
    byte_checks = digest_checks(expect_data.get("bytes") or {}, "expect.bytes", DIGESTS)
    for name in byte_checks:
        if name not in read_names:
            raise ConfigError(f"recipe expect.bytes.{name}: no step reads {name!r}; allowed: "
                              + (", ".join(sorted(read_names)) if read_names else "names of read steps"))
    file_checks = digest_checks(expect_data.get("files") or {}, "expect.files", FILE_CHECKS, binary=True)
    for guest_path in file_checks:
        if not any(guest_path.startswith(d.guest + "/") and d.writable for d in dirs):
            raise ConfigError(f"recipe expect.files.{guest_path}: not inside a writable directory; allowed: paths under "
                              + (", ".join(d.guest for d in dirs if d.writable) or "a wasi.dirs entry with writable: true"))
    for key in ("stdout_match", "stderr_match"):
        if key in expect_data:
            regex(str(expect_data[key]), f"expect.{key}", binary=True)  # matched on the stream's bytes, as file patterns are
    digests = {key: stream_digest(expect_data[key], f"expect.{key}") if key in expect_data else None
               for key in ("stdout_sha256", "stderr_sha256")}
    return Expect(
        exit=integer(expect_data["exit"], "expect.exit") if "exit" in expect_data else None,
        stdout_match=str(expect_data["stdout_match"]) if "stdout_match" in expect_data else None,
        stderr_match=str(expect_data["stderr_match"]) if "stderr_match" in expect_data else None,
        stdout_file=expected_file(expect_data.get("stdout_file"), "expect.stdout_file", base),
        stderr_file=expected_file(expect_data.get("stderr_file"), "expect.stderr_file", base),
        stdout_sha256=digests["stdout_sha256"], stderr_sha256=digests["stderr_sha256"],
        result=(expect_data["result"] if isinstance(expect_data.get("result"), str)
                else int64(integer(expect_data["result"], "expect.result"), "expect.result") if "result" in expect_data else None),
        bytes=byte_checks, files=file_checks)


def imports_section(data: Any) -> dict[str, Any]:
    """``imports:``: an import -> what its stub returns, as written.  A core module's are ``MODULE.NAME: INTEGER``; a
    component's ``INSTANCE#FUNCTION`` (or a top-level import's bare name) with a WAVE constant, ``null`` for a function
    without a result.  Which it is depends on the module, so the values are checked when the recipe is bound to it."""
    stubs = mapping(data or {}, "imports")
    for key, value in stubs.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"recipe imports: {key!r} is not an import; allowed: MODULE.NAME (a core module's, e.g. "
                              f"env.host_interrupt) or INSTANCE#FUNCTION (a component's, e.g. bench#start)")
        if value is not None and not isinstance(value, (int, float, str)):
            raise ConfigError(f"recipe imports.{key}: {value!r} is not a constant; allowed: an integer, or for a component's "
                              f"import a WAVE value or null")
    return dict(stubs)


def invoke_section(invoke: Any, steps: Sequence[Step]) -> str | None:
    """``invoke:``: one call in WAVE, its syntax checked now (its types once the module's are known)."""
    if invoke is None:
        return None
    if not isinstance(invoke, str):
        raise ConfigError(f"recipe invoke: {invoke!r} is not a call in WAVE such as 'handle({{method: \"GET\"}})'")
    if steps:
        raise ConfigError("recipe invoke: a single call in WAVE; allowed: invoke or steps, not both")
    from wasmlab.workloads.wave import parse_call

    parse_call(invoke, "recipe invoke")
    return invoke


def init_section(data: Mapping[str, Any]) -> str | None:
    """``init:``: the export name of the module's start-up function (its checks against the module come when bound)."""
    if "init" not in data:
        return None
    init = data["init"]
    if not isinstance(init, str) or not init.strip() or init != init.strip():
        raise ConfigError(f"recipe init: {init!r} is not an export name; allowed: the name of the module's start-up "
                          f"function, e.g. init: {DEFAULT_INIT}")
    return init


def options_section(data: Mapping[str, Any], steps: Sequence[Step]) -> Options:
    """The plain strings: the allocator and memory the steps use, a plugin driver and its input."""
    for key in OPTIONS:
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"recipe {key}: {data[key]!r} is not a string")
    if data.get("driver") and steps:
        raise ConfigError("recipe driver: a driver runs the whole request; allowed: driver or steps, not both")
    if data.get("driver"):
        from wasmlab.workloads.hostfuncs import driver

        driver(str(data["driver"]))  # an unknown driver is one line now, not at the first request
    return Options(str(data.get("allocator", "malloc")), str(data.get("memory", "memory")), str(data.get("driver", "")),
                   str(data.get("input", "")))


def parse(data: Any, source: str = "recipe", base: Path | None = None) -> Recipe:
    """A :class:`Recipe` from its YAML data, every key checked (one line naming the key when one is wrong)."""
    base = base or Path.cwd()
    data = mapping(data, "", RECIPE_KEYS)
    module, path = module_section(data, base)
    wasi = wasi_section(data.get("wasi"), base)
    steps = tuple(step_parsers.steps(data.get("steps") or [], base))
    expect = expect_section(data.get("expect"), steps, wasi.dirs, base)
    imports = imports_section(data.get("imports"))
    invoke = invoke_section(data.get("invoke"), steps)
    if expect.result is not None and not any(isinstance(s, (Call, Invoke)) for s in steps) and invoke is None:
        raise ConfigError("recipe expect.result: no call step; allowed: expect.exit or stdout_match for a plain command")
    options = options_section(data, steps)
    if options.driver and (expect.stdout_file or expect.stderr_file):
        raise ConfigError("recipe expect.stdout_file: a driver's output is checked by expect.stdout_match; allowed: "
                          "stdout_file and stderr_file for a command")
    return Recipe(source=source, module=module, module_path=path, name=str(data.get("name") or Path(module).stem),
                  argv=wasi.argv, stdin=wasi.stdin, env=wasi.env, dirs=wasi.dirs, steps=steps, expect=expect,
                  allocator=options.allocator, memory=options.memory, wasi=bool(data.get("wasi")), driver=options.driver,
                  input=options.input, invoke=invoke, imports=imports, init=init_section(data))


def load(path: str | Path) -> Recipe:
    """The recipe in YAML file ``path`` (paths inside it are relative to its folder)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"recipe {str(path)!r} cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {str(path)!r} is not YAML: {str(exc).splitlines()[0]}") from None
    return parse(data, str(path), path.parent)
