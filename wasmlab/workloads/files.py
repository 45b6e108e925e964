"""Any module on disk as a workload: a ``.wasm`` or ``.wat`` file, a core module, a WASI command or a component."""

from __future__ import annotations

import re
from pathlib import Path

import wasmtime

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.component_command import command_workload, run_entry
from wasmlab.workloads.components import component_workload
from wasmlab.workloads.hostfuncs import host_function_sets
from wasmlab.workloads.model import COMPONENT_VERSION, CORE_VERSION, VALUE_TYPES, WASM_MAGIC, Workload
from wasmlab.workloads.unsatisfied_import import core_import


def read_module(path: Path) -> bytes:
    """A module file's bytes, a ``.wat`` file assembled; one line when it cannot be read or assembled."""
    if path.is_dir():
        raise directory_error(str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"workload file {str(path)!r} cannot be read ({exc.strerror})") from None
    if path.suffix == ".wat":
        try:
            data = bytes(wasmtime.wat2wasm(data.decode()))
        except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"workload file {str(path)!r} is not valid WAT{wat_position(str(exc))}: {str(exc).splitlines()[0]}") from None
    return data


def check_preopens(preopens: tuple[tuple[str, str], ...]) -> None:
    """Every preopened host directory exists, or one line naming it."""
    for host, _ in preopens:
        if not Path(host).is_dir():
            raise ConfigError(f"preopened directory {host!r} is not a directory; allowed: an existing host directory")


# wat2wasm's pointer to the error: `` --> <anon>:4:5`` on the line after the message.
_WAT_POSITION = re.compile(r"-->\s*[^\n]*?:(\d+):(\d+)")


def wat_position(message: str) -> str:
    """`` at line L, column C`` from a wat2wasm error (its multi-line caret drawing left out), or nothing."""
    found = _WAT_POSITION.search(message)
    return f" at line {found.group(1)}, column {found.group(2)}" if found else ""


def directory_error(spec: str) -> ConfigError:
    """The one line for a directory given where a workload file belongs."""
    return ConfigError(f"workload {spec!r} is a directory; allowed: a .wasm or .wat file, a recipe (.yaml), or a catalog name "
                       f"(wasmlab workloads lists them)")


def from_path(path: str | Path, entry: str | None = None, args: tuple[int, ...] | None = None,
              expected: int | None = None, argv: tuple[str, ...] = (), stdin: bytes | None = None,
              preopens: tuple[tuple[str, str], ...] = (), stdout_pattern: str | None = None, library: bool = False) -> Workload:
    """A workload from a ``.wasm`` (or ``.wat``) file: the export ``entry`` (default ``run``, else
    ``_start``) called with ``args`` (default zeros); its result is checked only if ``expected`` is given.
    A WASI command (a core one, or a component exporting ``wasi:cli/run`` given without ``entry``) gets ``argv``,
    ``stdin`` and read-only ``preopens`` (host path, guest path), and its stdout must match ``stdout_pattern`` (a
    regular expression) when one is given.  ``library``: a core module without ``run`` or ``_start`` is a library (no
    request to make; ``wasmlab inspect`` sizes a pool for it) rather than an error."""
    path = Path(path)
    data = read_module(path)
    if data[:4] != WASM_MAGIC:
        raise ConfigError(f"workload file {str(path)!r} is not WebAssembly (it does not start with \\0asm); allowed: a .wasm or .wat file")
    if data[4:8] == COMPONENT_VERSION:
        if entry is None and args is None and expected is None:
            try:
                exports = introspect.component_types(data).exports
            except wasmtime.WasmtimeError as exc:
                raise ConfigError(f"workload file {str(path)!r} is not a valid component: {str(exc).splitlines()[0]}") from None
            if run_entry(exports) is not None:
                check_preopens(preopens)
                return command_workload(path.name, data, exports, f"file {path.name}", argv=tuple(argv), stdin=stdin,
                                        preopens=tuple(preopens), stdout_pattern=stdout_pattern)
        return component_workload(path.name, data, entry, args, expected, provenance=f"file {path.name}")
    if data[4:8] != CORE_VERSION:
        raise ConfigError(f"workload file {str(path)!r} is WebAssembly of an unknown version; allowed: a core module or a component")
    try:
        module = introspect.core_module(data)
    except wasmtime.WasmtimeError as exc:
        raise ConfigError(f"workload file {str(path)!r} is not a valid module: {str(exc).splitlines()[0]}") from None
    functions = introspect.function_exports(module)
    name = entry or ("run" if "run" in functions else "_start" if "_start" in functions else None)
    if name is None and library:
        wasi = any(m == "wasi_snapshot_preview1" for m, _ in introspect.core_imports(module))
        return Workload(name=path.name, wasm=data, entry="", params=(), results=(), args=(), expected=None, kind="library",
                        provenance=f"file {path.name}", wasi=wasi, expected_outcome="none", check="none")
    if name is None or name not in functions:
        raise allowed(entry or "run or _start", f"export of {path.name}", sorted(functions) or ["(no function exports)"])
    params = tuple(str(t) for t in functions[name].params)
    results = tuple(str(t) for t in functions[name].results)
    for t in params + results:
        if t not in VALUE_TYPES:
            raise allowed(t, f"type of export {name!r} of {path.name}", VALUE_TYPES)
    call_args = tuple(args) if args is not None else (0,) * len(params)
    if len(call_args) != len(params):
        raise ConfigError(f"export {name!r} of {path.name} takes {len(params)} argument(s), got {len(call_args)}: {list(call_args)}")
    imports = introspect.core_imports(module)
    wasi = any(m == "wasi_snapshot_preview1" for m, _ in imports)
    installed = host_function_sets()
    host_sets = sorted({m for m, _ in imports if m in installed})
    unknown = [(m, n) for m, n in imports if m != "wasi_snapshot_preview1" and m not in installed]
    if unknown:
        raise core_import(path.name, *unknown[0])
    if (argv or stdin is not None or preopens or stdout_pattern) and not wasi:
        raise ConfigError(f"{path.name} does not import WASI, so argv, stdin and preopened directories do not apply")
    check_preopens(preopens)
    return Workload(
        name=path.name, wasm=data, entry=name, params=params, results=results, args=call_args, expected=expected,
        kind="wasi-command" if wasi else "core", provenance=f"file {path.name}", wasi=wasi, host_imports=",".join(host_sets),
        argv=tuple(argv), stdin=stdin, preopens=tuple(preopens), stdout_pattern=stdout_pattern,
        # Without an expectation, the first request's result (or output) is one: a result that changes between
        # requests is a request that did not do the same work.
        check="expected" if expected is not None or stdout_pattern else "first-result" if results or wasi else "none",
    )
