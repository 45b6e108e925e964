"""The modules requests run: synthetic generators from WAT, each with its provenance.

A workload is named by a spec string ``NAME`` or ``NAME:key=value,key=value``
(e.g. ``dirty-memory:kib=256``).  Every workload knows the value its entry point
must return, so a runtime that skipped work is caught.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import wasmtime
import wasmtime.component

from wasmlab.errors import ConfigError, allowed

WASM_PAGE = 65536
VALUE_TYPES = ("i32", "i64")
# Component parameters that get a default argument (zero) when none is given.
COMPONENT_INT_TYPES = ("u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64")
COMPONENT_VERSION = b"\x0d\x00\x01\x00"


@dataclass(frozen=True)
class Workload:
    """A module and how to call it: ``entry(*args)`` must return ``expected``."""

    name: str
    wasm: bytes
    entry: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    args: tuple[Any, ...]
    expected: Any
    kind: str = "core"
    provenance: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    wasi: bool = False
    # What a request is expected to end with: "ok", or the typed outcome a hostile guest provokes.
    expected_outcome: str = "ok"
    # WASI commands: their argv and stdin, what their output must match, the exit code that means success.
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None
    stdout_pattern: str | None = None
    stderr_pattern: str | None = None
    expected_exit: int = 0
    license: str = ""
    # A host-function set the lab links (wasmlab.hostfuncs), and for library-style modules the
    # driver that runs a request (allocate, pass ``driver_input``, call, read the output back).
    host_imports: str = ""
    driver: str = ""
    driver_input: str = ""
    # Host directories a WASI command sees, as (host path, guest path) pairs, read-only.
    preopens: tuple[tuple[str, str], ...] = ()
    # Components: the entry's parameter and result shapes (wasmlab.component_values.Signature);
    # params/results then hold their WIT text and args/expected are plain values.
    signature: Any = field(default=None, compare=False, repr=False)

    @property
    def captures_output(self) -> bool:
        return not self.driver and bool(self.argv or self.stdin is not None or self.stdout_pattern or self.stderr_pattern
                                        or self.preopens)

    @property
    def component(self) -> bool:
        return self.kind == "component"

    @property
    def linked(self) -> bool:
        """A core module instantiated through a core linker: it imports WASI or host functions."""
        return not self.component and (self.wasi or bool(self.host_imports))

    def __post_init__(self) -> None:
        for t in () if self.component else self.params + self.results:
            if t not in VALUE_TYPES:
                raise allowed(t, f"workload {self.name!r} value type", VALUE_TYPES)
        if len(self.args) != len(self.params):
            raise ConfigError(
                f"workload {self.name!r} has {len(self.args)} argument(s) for {len(self.params)} parameter(s)"
            )
        if len(self.results) > 1:
            raise ConfigError(f"workload {self.name!r} returns {len(self.results)} values; allowed: at most 1")
        if not self.results and self.expected is not None:
            raise ConfigError(f"workload {self.name!r} returns nothing, so it cannot expect {self.expected!r}")
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.wasm).hexdigest())

    @property
    def size_bytes(self) -> int:
        return len(self.wasm)

    def describe(self) -> dict[str, Any]:
        """A flat record for tables and result metadata."""
        return {
            "workload": self.name,
            "workload_kind": self.kind,
            "workload_bytes": self.size_bytes,
            "workload_sha256": self.sha256,
            "workload_entry": self.entry,
            "workload_provenance": self.provenance,
            "workload_expected_outcome": self.expected_outcome,
            "workload_argv": " ".join(self.argv),
        }


def _build(name: str, wat: str, expected: int, provenance: str, parameters: dict[str, Any], arg: int = 41) -> Workload:
    return Workload(
        name=name,
        wasm=bytes(wasmtime.wat2wasm(wat)),
        entry="run",
        params=("i32",),
        results=("i32",),
        args=(arg,),
        expected=expected,
        provenance=provenance,
        parameters=parameters,
    )


def _tag_global(tag: int) -> str:
    # An unused global changes the bytes (and so the content hash) without changing behaviour,
    # which is how one generator yields K distinct modules for cache experiments.
    return f"(global i32 (i32.const {tag}))" if tag else ""


def seed_module(tag: int = 0) -> Workload:
    """The seed benchmark's module: one 64 KiB memory page, ``run(x) = x + 1``."""
    wat = f"""(module
  (memory 1)
  {_tag_global(tag)}
  (func (export "run") (param i32) (result i32)
    local.get 0
    i32.const 1
    i32.add))"""
    return _build(
        "seed" + (f":tag={tag}" if tag else ""),
        wat,
        42,
        "generated by wasmlab from WAT: the seed PR's 'simple WASM module requiring 1 memory page'",
        {"tag": tag},
    )


def compile_heavy(functions: int = 200, tag: int = 0) -> Workload:
    """``functions`` exported functions of a dozen instructions each: compile cost grows with code size."""
    if functions < 1:
        raise ConfigError(f"compile-heavy functions = {functions} is out of range; allowed: an integer >= 1")
    bodies = []
    for i in range(functions):
        bodies.append(
            f"""  (func (export "f{i}") (param i32) (result i32) (local i32)
    local.get 0 i32.const {i * 2654435761 % 2**31} i32.xor local.set 1
    (block (loop
      local.get 1 i32.const {i + 3} i32.mul i32.const 7 i32.rotl local.set 1
      local.get 0 i32.const 1 i32.sub local.tee 0
      br_if 0))
    local.get 1)"""
        )
    wat = f"""(module
  (memory 1)
  {_tag_global(tag)}
{chr(10).join(bodies)}
  (func (export "run") (param i32) (result i32) local.get 0 i32.const 1 i32.add))"""
    return _build(
        f"compile-heavy:functions={functions}" + (f",tag={tag}" if tag else ""),
        wat,
        42,
        f"generated by wasmlab from WAT: {functions} small looping functions",
        {"functions": functions, "tag": tag},
    )


def _pattern(n: int) -> bytes:
    return bytes((i * 7 + 13) & 0xFF for i in range(n))


def data_heavy(kib: int = 64, tag: int = 0) -> Workload:
    """Initial memory with a ``kib`` KiB data segment: instantiation copies it, unless copy-on-write init maps it."""
    if kib < 1:
        raise ConfigError(f"data-heavy kib = {kib} is out of range; allowed: an integer >= 1")
    size = kib * 1024
    data = _pattern(size)
    pages = math.ceil(size / WASM_PAGE) + 1
    escaped = "".join(f"\\{b:02x}" for b in data)
    wat = f"""(module
  (memory {pages})
  {_tag_global(tag)}
  (data (i32.const 0) "{escaped}")
  (func (export "run") (param i32) (result i32)
    local.get 0
    i32.const {size - 1}
    i32.load8_u
    i32.add))"""
    return _build(
        f"data-heavy:kib={kib}" + (f",tag={tag}" if tag else ""),
        wat,
        41 + data[-1],
        f"generated by wasmlab from WAT: {pages} pages of memory, a {kib} KiB data segment",
        {"kib": kib, "tag": tag},
    )


def dirty_memory(kib: int = 64, stride: int = 4096, tag: int = 0) -> Workload:
    """Each call writes one word every ``stride`` bytes over ``kib`` KiB: dirty pages a pool slot must reset."""
    if kib < 1:
        raise ConfigError(f"dirty-memory kib = {kib} is out of range; allowed: an integer >= 1")
    if stride < 4 or stride % 4:
        raise ConfigError(f"dirty-memory stride = {stride} is out of range; allowed: a multiple of 4, >= 4")
    size = kib * 1024
    pages = math.ceil(size / WASM_PAGE) + 1
    writes = math.ceil(size / stride)
    wat = f"""(module
  (memory {pages})
  {_tag_global(tag)}
  (func (export "run") (param i32) (result i32) (local i32 i32)
    (block (loop
      local.get 1 i32.const {size} i32.ge_u br_if 1
      local.get 1 local.get 0 i32.store
      local.get 1 i32.const {stride} i32.add local.set 1
      local.get 2 i32.const 1 i32.add local.set 2
      br 0))
    local.get 0 local.get 2 i32.add))"""
    return _build(
        f"dirty-memory:kib={kib}" + (f",stride={stride}" if stride != 4096 else "") + (f",tag={tag}" if tag else ""),
        wat,
        41 + writes,
        f"generated by wasmlab from WAT: writes {writes} words, one per {stride} bytes, over {kib} KiB",
        {"kib": kib, "stride": stride, "tag": tag},
    )


GENERATORS: dict[str, Callable[..., Workload]] = {
    "seed": seed_module,
    "compile-heavy": compile_heavy,
    "data-heavy": data_heavy,
    "dirty-memory": dirty_memory,
}


def _parse_value(name: str, key: str, text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def parse_spec(spec: str) -> tuple[str, dict[str, int | str]]:
    """Split ``NAME:key=value,...`` into the generator name and its keyword arguments (integers where they parse)."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, int | str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"workload spec {spec!r}: {item!r} is not key=value")
        kwargs[key.strip()] = _parse_value(name, key.strip(), value.strip())
    return name, kwargs


def wasi_command(name: str, wasm: bytes, argv: tuple[str, ...], stdout: str | None = None, stderr: str | None = None,
                 expected_exit: int = 0, stdin: bytes | None = None, provenance: str = "", license: str = "") -> Workload:
    """A WASI preview1 command: each request runs ``_start`` with ``argv`` in a fresh WASI context and
    checks the exit code and that stdout/stderr match the given regular expressions."""
    return Workload(
        name=name, wasm=wasm, entry="_start", params=(), results=(), args=(), expected=None, kind="wasi-command",
        provenance=provenance, wasi=True, argv=tuple(argv), stdin=stdin, stdout_pattern=stdout, stderr_pattern=stderr,
        expected_exit=expected_exit, license=license,
    )


def load_workload(spec: str, **overrides: int) -> Workload:
    """The workload named by ``spec`` (see the module docstring), a real module of the catalog
    (``data/workloads/manifest.yaml``), or the module at a path ending in .wasm or .wat."""
    if spec.endswith((".wasm", ".wat")) or "/" in spec:
        return from_path(spec)
    from wasmlab import catalog

    if spec in catalog.load_manifest():
        return catalog.workload(spec)  # type: ignore[no-any-return]
    name, kwargs = parse_spec(spec)
    kwargs.update(overrides)
    try:
        generator = GENERATORS[name]
    except KeyError:
        from wasmlab.catalog import load_manifest

        raise ConfigError(f"workload {name!r} is not allowed; allowed: {', '.join(sorted(GENERATORS))}, "
                          f"{', '.join(sorted(load_manifest()))} (fetched from PyPI), or a path to a .wasm or .wat file") from None
    parameters = inspect.signature(generator).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ConfigError(f"workload {name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(parameters)}")
    for key, value in kwargs.items():
        if isinstance(parameters[key].default, int) and not isinstance(value, int):
            raise ConfigError(f"workload {name!r} parameter {key}={value!r} is not an integer")
    return generator(**kwargs)


def distinct_copies(spec: str, count: int) -> list[Workload]:
    """``count`` modules that behave like ``spec`` but have distinct bytes (for cache experiments)."""
    if count < 1:
        raise ConfigError(f"number of distinct modules = {count} is out of range; allowed: an integer >= 1")
    return [load_workload(spec, tag=i + 1) for i in range(count)]


# -- hostile guests -------------------------------------------------------------------------------
# Each provokes one typed outcome; the lab must count it and carry on, never crash.


def _hostile(name: str, wat: str, outcome: str, provenance: str, params: tuple[str, ...] = ("i32",),
             results: tuple[str, ...] = ("i32",), entry: str = "run", wasi: bool = False) -> Workload:
    return Workload(
        name=name, wasm=bytes(wasmtime.wat2wasm(wat)), entry=entry, params=params, results=results,
        args=(41,) * len(params), expected=None, kind="wasi-command" if wasi else "core",
        provenance="generated by wasmlab from WAT: " + provenance, wasi=wasi, expected_outcome=outcome,
    )


def trap() -> Workload:
    """Traps at once (``unreachable``)."""
    return _hostile("trap", '(module (memory 1) (func (export "run") (param i32) (result i32) unreachable))', "trap",
                    "a guest that executes unreachable")


def infinite_loop() -> Workload:
    """Never returns: only fuel or an epoch deadline stops it."""
    return _hostile("infinite-loop", '(module (memory 1) (func (export "run") (param i32) (result i32) (loop br 0) i32.const 0))',
                    "timeout", "an empty infinite loop")


def memory_bomb() -> Workload:
    """Grows its memory a page at a time until growth fails, then traps."""
    wat = '''(module (memory (export "memory") 1)
  (func (export "run") (param i32) (result i32)
    (block (loop
      (br_if 1 (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      br 0))
    unreachable))'''
    return _hostile("memory-bomb", wat, "oom", "memory.grow in a loop, unreachable once growth fails")


def deep_recursion() -> Workload:
    """Recurses without end: the wasm stack overflows."""
    wat = '''(module (memory 1)
  (func $f (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1))))
  (func (export "run") (param i32) (result i32) (call $f (local.get 0))))'''
    return _hostile("deep-recursion", wat, "stack", "unbounded recursion")


def start_trap() -> Workload:
    """Its start function traps, so instantiation itself fails."""
    wat = '''(module (memory 1)
  (func $start unreachable)
  (start $start)
  (func (export "run") (param i32) (result i32) local.get 0))'''
    return _hostile("start-trap", wat, "trap", "a start function that executes unreachable")


def wasi_exit(code: int = 3) -> Workload:
    """A WASI preview1 command whose ``_start`` exits with ``code``."""
    wat = f'''(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $proc_exit (i32.const {code}))))'''
    return _hostile(f"wasi-exit:code={code}" if code != 3 else "wasi-exit", wat, f"exit({code})",
                    f"a WASI command that calls proc_exit({code})", params=(), results=(), entry="_start", wasi=True)


HOSTILE = {
    "trap": trap,
    "infinite-loop": infinite_loop,
    "memory-bomb": memory_bomb,
    "deep-recursion": deep_recursion,
    "start-trap": start_trap,
    "wasi-exit": wasi_exit,
}
GENERATORS.update(HOSTILE)


# -- any module on disk ---------------------------------------------------------------------------

WASM_MAGIC = b"\0asm"


def from_path(path: str | Path, entry: str | None = None, args: tuple[int, ...] | None = None,
              expected: int | None = None, argv: tuple[str, ...] = (), stdin: bytes | None = None,
              preopens: tuple[tuple[str, str], ...] = (), stdout_pattern: str | None = None) -> Workload:
    """A workload from a ``.wasm`` (or ``.wat``) file: the export ``entry`` (default ``run``, else
    ``_start``) called with ``args`` (default zeros); its result is checked only if ``expected`` is given.
    A WASI command gets ``argv``, ``stdin`` and read-only ``preopens`` (host path, guest path), and its
    stdout must match ``stdout_pattern`` (a regular expression) when one is given."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"workload file {str(path)!r} cannot be read ({exc.strerror})") from None
    if path.suffix == ".wat":
        try:
            data = bytes(wasmtime.wat2wasm(data.decode()))
        except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"workload file {str(path)!r} is not valid WAT: {str(exc).splitlines()[0]}") from None
    if data[:4] != WASM_MAGIC:
        raise ConfigError(f"workload file {str(path)!r} is not WebAssembly (it does not start with \\0asm); allowed: a .wasm or .wat file")
    if data[4:8] == COMPONENT_VERSION:
        return component_workload(path.name, data, entry or "run", args, expected, provenance=f"file {path.name}")
    if data[4:8] != b"\x01\x00\x00\x00":
        raise ConfigError(f"workload file {str(path)!r} is WebAssembly of an unknown version; allowed: a core module or a component")
    engine = wasmtime.Engine()
    try:
        module = wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as exc:
        raise ConfigError(f"workload file {str(path)!r} is not a valid module: {str(exc).splitlines()[0]}") from None
    functions = {e.name: e.type for e in module.exports if isinstance(e.type, wasmtime.FuncType)}
    name = entry or ("run" if "run" in functions else "_start" if "_start" in functions else None)
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
    from wasmlab.hostfuncs import HOST_FUNCTION_SETS

    imports = [(i.module, i.name) for i in module.imports]
    wasi = any(m == "wasi_snapshot_preview1" for m, _ in imports)
    host_sets = sorted({m for m, _ in imports if m in HOST_FUNCTION_SETS})
    unknown = [(m, n) for m, n in imports if m != "wasi_snapshot_preview1" and m not in HOST_FUNCTION_SETS]
    if unknown:
        m, n = unknown[0]
        raise ConfigError(f"{path.name} imports {m}::{n}, which the lab cannot satisfy; allowed: wasi_snapshot_preview1 imports"
                          f" and the host-function sets {', '.join(sorted(HOST_FUNCTION_SETS))}")
    if (argv or stdin is not None or preopens or stdout_pattern) and not wasi:
        raise ConfigError(f"{path.name} does not import WASI, so argv, stdin and preopened directories do not apply")
    for host, _ in preopens:
        if not Path(host).is_dir():
            raise ConfigError(f"preopened directory {host!r} is not a directory; allowed: an existing host directory")
    return Workload(
        name=path.name, wasm=data, entry=name, params=params, results=results, args=call_args, expected=expected,
        kind="wasi-command" if wasi else "core", provenance=f"file {path.name}", wasi=wasi, host_imports=",".join(host_sets),
        argv=tuple(argv), stdin=stdin, preopens=tuple(preopens), stdout_pattern=stdout_pattern,
    )


# -- components -------------------------------------------------------------------------------------


def component_workload(name: str, wasm: bytes, entry: str | None = "run", args: tuple[Any, ...] | None = None,
                       expected: Any = None, provenance: str = "") -> Workload:
    """A component and the export ``entry`` each request calls with ``args`` (plain values, see
    ``wasmlab.component_values``); the result is checked when ``expected`` is given.  A component
    exporting the middleware world gets the middleware's requests; one importing ``wasi:*`` gets
    WASI preview 2 and a context in every store."""
    from wasmlab import middleware
    from wasmlab.component_values import Signature

    engine = wasmtime.Engine()
    try:
        component = wasmtime.component.Component(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise ConfigError(f"component {name} does not compile: {str(exc).splitlines()[0]}") from None
    exports = component.type.exports(engine)
    wasi = any(i.startswith("wasi:") for i in component.type.imports(engine))
    if middleware.is_middleware(exports) and entry in (None, "run") and args is None:
        return middleware.middleware_workload(name, wasm, "auth-ok", 8, 512, provenance, wasi=wasi)
    entry = entry or "run"
    func_type = getattr(exports.get(entry), "ty", None)
    if func_type is None or not isinstance(func_type, wasmtime.component.FuncType):
        names = sorted(n for n, e in exports.items() if isinstance(getattr(e, "ty", None), wasmtime.component.FuncType))
        raise allowed(entry, f"function export of component {name}", names or ["(no function exports)"])
    signature = Signature.of(func_type)
    if args is None:
        if not all(shape.wit in COMPONENT_INT_TYPES for _, shape in signature.params):
            raise ConfigError(f"export {entry!r} of component {name} is {signature.wit}; the lab supplies arguments for integer "
                              f"parameters (--args) and for the middleware world (wasmlab/guests/middleware/wit); allowed: one of those")
        args = (0,) * len(signature.params)
    call_args = tuple(args)
    signature.check_args(call_args, f"export {entry!r} of component {name}")
    if expected is not None and signature.result is not None:
        signature.result.check(expected, f"expected result of {entry!r}")
    return Workload(name=name, wasm=wasm, entry=entry, params=tuple(s.wit for _, s in signature.params),
                    results=(signature.result.wit,) if signature.result is not None else (), args=call_args,
                    expected=expected, kind="component", provenance=provenance, wasi=wasi, signature=signature)


def component_seed() -> Workload:
    """The seed's scenario as a component built from the component text format: a core module with one
    64 KiB memory page, lifted as ``run(x: u32) -> u32 = x + 1``."""
    wat = """(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "add") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
  (core instance $i (instantiate $m))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "add"))))"""
    return component_workload("component-seed", bytes(wasmtime.wat2wasm(wat)), "run", (41,), 42,
                              provenance="generated by wasmlab from the component text format: the seed module, lifted")


GENERATORS["component-seed"] = component_seed


def _middleware(request: str = "auth-ok", headers: int = 8, body: int = 512) -> Workload:
    """The gateway middleware, hand-written in the component text format (~2 KB): auth, request id, 500->503."""
    from wasmlab import middleware

    return middleware.middleware(request, headers, body)  # type: ignore[no-any-return]


def _middleware_py(request: str = "auth-ok", headers: int = 8, body: int = 512) -> Workload:
    """The same middleware in Python, compiled by componentize-py (~18 MB, CPython inside, imports WASI p2)."""
    from wasmlab import middleware

    return middleware.middleware_py(request, headers, body)  # type: ignore[no-any-return]


GENERATORS["middleware"] = _middleware
GENERATORS["middleware-py"] = _middleware_py
