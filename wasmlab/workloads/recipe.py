"""Request recipes: what one request does on a fresh instance, said in YAML instead of Python.

A recipe names a module (a path relative to the recipe, or a catalog name), its WASI context (argv, stdin,
environment, read-only and fresh writable directories), the steps of a request and what the request must
end with.  Four request shapes need nothing else:

* a **command** (``_start``), checked by its exit code, its output and the files it writes;
* a **reactor** (``_initialize``, then calls that build guest state, e.g. argv in guest memory);
* a **library** (write input into a buffer the guest hands out, call, read the output back and check it);
* a plain **export** called with integer arguments, checked by its result.

Steps, in order (the small vocabulary, with names for integer results)::

    - call: NAME                 # an export; args are integers, names, NAME+N / NAME-N, {ptr_array: [...]}, {call: ...}
      args: [3, buf, buf+4, {ptr_array: [buf, buf+4]}]
      as: NAME                   # names its integer result for later steps
    - write: {at: EXPR, text: "..." | hex: "..." | file: PATH | repeat: {byte: 97, count: 16384}}
    - read: {at: EXPR, length: EXPR, as: NAME}   # bytes for ``expect.bytes``

``{ptr_array: [e1, e2, ...]}`` writes the i32 values into guest memory (at ``at:``, else in memory from the
recipe's ``allocator`` export, default ``malloc``) and passes its address.  Everything is checked before a
request is measured: keys (one line naming the key and what is allowed), exports and their arity, names
used before they are set; a dry request then catches writes past the memory's end
(:mod:`wasmlab.host.recipes`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
import yaml

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import introspect
from wasmlab.workloads.model import Workload

RECIPE_KEYS = ("module", "name", "wasi", "imports", "steps", "invoke", "expect", "allocator", "memory", "driver", "input")
WASI_KEYS = ("argv", "stdin", "env", "dirs")
DIR_KEYS = ("host", "guest", "writable", "resource")
EXPECT_KEYS = ("exit", "stdout_match", "stderr_match", "result", "bytes", "files")
WRITE_SOURCES = ("text", "hex", "file", "repeat")
DIGESTS = ("sha256", "hex", "text", "regex")
FILE_CHECKS = ("sha256", "regex")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_EXPR = re.compile(rf"\s*(?:(?P<name>{_NAME})\s*(?:(?P<sign>[+-])\s*(?P<offset>0x[0-9a-fA-F]+|\d+))?|(?P<int>-?(?:0x[0-9a-fA-F]+|\d+)))\s*")


@dataclass(frozen=True)
class Expr:
    """An integer: a literal, a name set by an earlier step plus an offset, a nested call's result, or the
    little-endian u32 in guest memory at another expression (``{load: EXPR}``, e.g. a length the guest wrote)."""

    name: str | None = None
    offset: int = 0
    call: Call | None = None
    load: Expr | None = None


@dataclass(frozen=True)
class PtrArray:
    """i32 values written into guest memory as an array; the argument is the array's address."""

    items: tuple[Expr, ...]
    at: Expr | None = None


Arg = Expr | PtrArray


@dataclass(frozen=True)
class Call:
    export: str
    args: tuple[Arg, ...] = ()
    name: str | None = None  # ``as``
    where: str = ""  # the recipe key, for messages

    @property
    def label(self) -> str:
        """How ``--phases`` names the step."""
        return f"call {self.export}"


@dataclass(frozen=True)
class Write:
    at: Expr
    data: bytes
    where: str = ""

    @property
    def label(self) -> str:
        return f"write {len(self.data)} B"


@dataclass(frozen=True)
class Read:
    at: Expr
    length: Expr
    name: str
    where: str = ""

    @property
    def label(self) -> str:
        return f"read {self.name}"


@dataclass(frozen=True)
class Invoke:
    """One call in WAVE (``name(args)``), as ``wasmtime run --invoke`` writes it: a component export with typed
    arguments, or a core export with integers; ``expect`` (WAVE) what this call must return."""

    text: str
    expect: str | None = None
    where: str = ""

    @property
    def export(self) -> str:
        return self.text.split("(", 1)[0].strip()

    @property
    def label(self) -> str:
        return f"invoke {self.export}"


Step = Call | Write | Read | Invoke


@dataclass(frozen=True)
class Dir:
    guest: str
    host: str | None = None  # None: a fresh empty directory (or, with ``resource``, resolved from the package)
    writable: bool = False
    resource: str | None = None  # a folder of the catalog module's package (extracted once when it is fetched)


@dataclass(frozen=True)
class Expect:
    exit: int | None = None
    stdout_match: str | None = None
    stderr_match: str | None = None
    result: int | str | None = None  # an integer, or for a component's export a value in WAVE
    bytes: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (sha256|hex|text, value)
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # guest path -> (sha256|regex, value)

    @property
    def anything(self) -> bool:
        return any(v is not None for v in (self.exit, self.stdout_match, self.stderr_match, self.result)) or bool(self.bytes or self.files)


@dataclass(frozen=True)
class Recipe:
    """A parsed, statically checked recipe (see the module docstring)."""

    source: str  # the recipe file (or "--flags")
    module: str  # as written
    module_path: Path | None  # resolved, when a path
    name: str
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[Dir, ...] = ()
    steps: tuple[Step, ...] = ()
    expect: Expect = field(default_factory=Expect)
    allocator: str = "malloc"
    memory: str = "memory"
    wasi: bool = False
    # What a recipe cannot say: a plugin request driver (wasmlab.drivers entry points) and the input it is given.
    driver: str = ""
    input: str = ""
    # One call in WAVE (``name(args)``): a component's export with typed arguments, or a core export with integers.
    invoke: str | None = None
    # Host functions the guest imports that the recipe stubs: "module.name" -> the constant each returns.
    imports: Mapping[str, int] = field(default_factory=dict)
    # The types of the exports the steps call, (params, results) by name: read once from the module when the recipe
    # is checked against it (to_workload), so the call paths need not compile the module again to learn them.
    signatures: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    @property
    def step_labels(self) -> tuple[str, ...]:
        """Each step's name in ``--phases``, numbered from 1 so that two calls of one export stay apart."""
        return tuple(f"{k}. {step.label}" for k, step in enumerate(self.steps, 1))

    @property
    def calls(self) -> list[Call]:
        """Every call the steps make, nested ones included, in order."""
        found: list[Call] = []

        def visit(value: Any) -> None:
            if isinstance(value, Call):
                found.append(value)
                for arg in value.args:
                    visit(arg)
            elif isinstance(value, Expr) and value.call is not None:
                visit(value.call)
            elif isinstance(value, Expr) and value.load is not None:
                visit(value.load)
            elif isinstance(value, PtrArray):
                for item in value.items:
                    visit(item)
                if value.at is not None:
                    visit(value.at)
            elif isinstance(value, (Write, Read)):
                visit(value.at)
                if isinstance(value, Read):
                    visit(value.length)
        for step in self.steps:
            visit(step)
        return found

    @property
    def needs_allocator(self) -> bool:
        """Whether a pointer array without ``at:`` has the ``allocator`` export place it."""
        return any(isinstance(a, PtrArray) and a.at is None for c in self.calls for a in c.args)

    @property
    def uses_memory(self) -> bool:
        def loads(value: Any) -> bool:
            if isinstance(value, Expr):
                return value.load is not None or (value.call is not None and any(loads(a) for a in value.call.args))
            if isinstance(value, PtrArray):
                return True
            return False
        return (any(isinstance(s, (Write, Read)) for s in self.steps)
                or any(loads(a) for c in self.calls for a in c.args))


def _keys(data: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    label = f"recipe {where}" if where else "recipe"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: {data!r} is not a mapping; allowed: keys {', '.join(keys)}")
    for key in data:
        if key not in keys:
            raise allowed(key, f"{label} key", keys)
    return data


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer")
    return value


def _expr(value: Any, where: str, names: set[str]) -> Expr:
    if isinstance(value, bool):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer, a name or NAME+N")
    if isinstance(value, int):
        return Expr(offset=value)
    if isinstance(value, Mapping) and "call" in value:
        return Expr(call=_call(value, where, names, nested=True))
    if isinstance(value, Mapping) and "load" in value:
        _keys(value, where, ("load",))
        return Expr(load=_expr(value["load"], f"{where}.load", names))
    if not isinstance(value, str) or not (match := _EXPR.fullmatch(value)):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer, a name, NAME+N, NAME-N, {{call: EXPORT}} or {{load: EXPR}}")
    if match["int"] is not None:
        return Expr(offset=int(match["int"], 0))
    name = match["name"]
    if name not in names:
        raise ConfigError(f"recipe {where}: name {name!r} is never set before this step; allowed: "
                          + (", ".join(sorted(names)) if names else "a name set by an earlier step's `as`"))
    offset = int(match["offset"], 0) if match["offset"] else 0
    return Expr(name=name, offset=-offset if match["sign"] == "-" else offset)


def _arg(value: Any, where: str, names: set[str]) -> Arg:
    if isinstance(value, Mapping) and "ptr_array" in value:
        data = _keys(value, where, ("ptr_array", "at"))
        items = data["ptr_array"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"recipe {where}.ptr_array: {items!r} is not a non-empty list of integers or names")
        return PtrArray(tuple(_expr(v, f"{where}.ptr_array[{i}]", names) for i, v in enumerate(items)),
                        _expr(data["at"], f"{where}.at", names) if "at" in data else None)
    return _expr(value, where, names)


def _call(data: Mapping[str, Any], where: str, names: set[str], nested: bool = False) -> Call:
    data = _keys(data, where, ("call", "args") if nested else ("call", "args", "as"))
    export = data["call"]
    if not isinstance(export, str) or not export:
        raise ConfigError(f"recipe {where}.call: {export!r} is not an export name")
    args = data.get("args", [])
    if not isinstance(args, list):
        raise ConfigError(f"recipe {where}.args: {args!r} is not a list")
    parsed = tuple(_arg(a, f"{where}.args[{i}]", names) for i, a in enumerate(args))
    name = data.get("as")
    if name is not None and (not isinstance(name, str) or not re.fullmatch(_NAME, name)):
        raise ConfigError(f"recipe {where}.as: {name!r} is not a name; allowed: letters, digits and _, not starting with a digit")
    return Call(export, parsed, name, where)


def _invoke(data: Mapping[str, Any], where: str) -> Invoke:
    """An ``invoke:`` step: its WAVE call parsed now (its syntax; its types once the module's are known)."""
    from wasmlab.workloads.wave import parse_call

    data = _keys(data, where, ("invoke", "expect"))
    text, expect = data["invoke"], data.get("expect")
    if not isinstance(text, str):
        raise ConfigError(f"recipe {where}.invoke: {text!r} is not a call in WAVE such as 'handle({{method: \"GET\"}})'")
    parse_call(text, f"recipe {where}.invoke")
    if expect is not None and not isinstance(expect, (str, int)) or isinstance(expect, bool):
        raise ConfigError(f"recipe {where}.expect: {expect!r} is not a value in WAVE such as 'reject(403)' or 42")
    return Invoke(text, None if expect is None else str(expect), where)


def _write_data(data: Mapping[str, Any], where: str, base: Path) -> bytes:
    sources = [k for k in WRITE_SOURCES if k in data]
    if len(sources) != 1:
        raise ConfigError(f"recipe {where}: give exactly one of {', '.join(WRITE_SOURCES)}; found {sources or 'none'}")
    kind, value = sources[0], data[sources[0]]
    if kind == "text":
        if not isinstance(value, str):
            raise ConfigError(f"recipe {where}.text: {value!r} is not a string")
        return value.encode()
    if kind == "hex":
        try:
            return bytes.fromhex(str(value))
        except ValueError:
            raise ConfigError(f"recipe {where}.hex: {value!r} is not hexadecimal bytes") from None
    if kind == "file":
        path = base / str(value)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"recipe {where}.file: {str(path)!r} cannot be read ({exc.strerror})") from None
    spec = _keys(value, f"{where}.repeat", ("byte", "count"))
    byte, count = _int(spec.get("byte"), f"{where}.repeat.byte"), _int(spec.get("count"), f"{where}.repeat.count")
    if not 0 <= byte <= 255 or count < 0:
        raise ConfigError(f"recipe {where}.repeat: byte {byte}, count {count}; allowed: a byte 0..255 and a count >= 0")
    return bytes([byte]) * count


def _checks(data: Any, where: str, kinds: Sequence[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for key, spec in _keys(data, where, list(data) if isinstance(data, Mapping) else []).items():
        spec = _keys(spec, f"{where}.{key}", kinds)
        if len(spec) != 1:
            raise ConfigError(f"recipe {where}.{key}: give exactly one of {', '.join(kinds)}")
        (kind, value), = spec.items()
        if not isinstance(value, str):
            raise ConfigError(f"recipe {where}.{key}.{kind}: {value!r} is not a string")
        if kind == "sha256" and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ConfigError(f"recipe {where}.{key}.sha256: {value!r} is not 64 hexadecimal digits")
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"recipe {where}.{key}.regex: {value!r} is not a regular expression ({exc})") from None
        out[str(key)] = (kind, value.lower() if kind == "sha256" else value)
    return out


def parse(data: Any, source: str = "recipe", base: Path | None = None) -> Recipe:
    """A :class:`Recipe` from its YAML data, every key checked (one line naming the key when one is wrong)."""
    base = base or Path.cwd()
    data = _keys(data, "", RECIPE_KEYS)
    module = data.get("module")
    if not isinstance(module, str) or not module:
        raise ConfigError("recipe module: missing; allowed: a path relative to the recipe (.wasm, .wat) or a catalog name")
    path = (base / module) if module.endswith((".wasm", ".wat")) or "/" in module else None
    wasi = _keys(data.get("wasi") or {}, "wasi", WASI_KEYS)
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
    env = _keys(wasi.get("env") or {}, "wasi.env", list(wasi.get("env") or {}))
    dirs = []
    for i, entry in enumerate(wasi.get("dirs") or []):
        where = f"wasi.dirs[{i}]"
        entry = _keys(entry, where, DIR_KEYS)
        guest, host, writable, resource = entry.get("guest"), entry.get("host"), entry.get("writable", False), entry.get("resource")
        if resource is not None and (host is not None or writable or not isinstance(resource, str)):
            raise ConfigError(f"recipe {where}.resource: {resource!r}; allowed: a folder of the module's package, read-only, "
                              f"without host:")
        if not isinstance(guest, str) or not guest.startswith("/"):
            raise ConfigError(f"recipe {where}.guest: {guest!r} is not an absolute guest path such as /out")
        if not isinstance(writable, bool):
            raise ConfigError(f"recipe {where}.writable: {writable!r} is not true or false")
        if host is None and not writable and resource is None:
            raise ConfigError(f"recipe {where}: a read-only directory needs host:; allowed: host: DIR, or writable: true for a fresh one")
        resolved = None
        if host is not None:
            resolved = base / str(host)
            if not resolved.is_dir():
                raise ConfigError(f"recipe {where}.host: {str(resolved)!r} is not a directory")
        dirs.append(Dir(guest.rstrip("/") or "/", str(resolved) if resolved else None, writable, resource))
    names: set[str] = set()
    steps: list[Step] = []
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise ConfigError(f"recipe steps: {raw_steps!r} is not a list")
    for i, raw in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(raw, Mapping) or len({"call", "write", "read", "invoke"} & set(raw)) != 1:
            raise ConfigError(f"recipe {where}: {raw!r} is not a step; allowed: a mapping with one of call, write, read, invoke")
        if "invoke" in raw:
            steps.append(_invoke(raw, where))
        elif "call" in raw:
            call = _call(raw, where, names)
            steps.append(call)
            if call.name:
                names.add(call.name)
        elif "write" in raw:
            _keys(raw, where, ("write",))
            spec = _keys(raw["write"], f"{where}.write", ("at", *WRITE_SOURCES))
            if "at" not in spec:
                raise ConfigError(f"recipe {where}.write.at: missing; allowed: an integer, a name or NAME+N")
            steps.append(Write(_expr(spec["at"], f"{where}.write.at", names), _write_data(spec, f"{where}.write", base), where))
        else:
            _keys(raw, where, ("read",))
            spec = _keys(raw["read"], f"{where}.read", ("at", "length", "as"))
            for key in ("at", "length", "as"):
                if key not in spec:
                    raise ConfigError(f"recipe {where}.read.{key}: missing")
            name = spec["as"]
            if not isinstance(name, str) or not re.fullmatch(_NAME, name):
                raise ConfigError(f"recipe {where}.read.as: {name!r} is not a name")
            steps.append(Read(_expr(spec["at"], f"{where}.read.at", names), _expr(spec["length"], f"{where}.read.length", names),
                              name, where))
            names.add(name)
    expect_data = _keys(data.get("expect") or {}, "expect", EXPECT_KEYS)
    read_names = {s.name for s in steps if isinstance(s, Read)}
    byte_checks = _checks(expect_data.get("bytes") or {}, "expect.bytes", DIGESTS)
    for name in byte_checks:
        if name not in read_names:
            raise ConfigError(f"recipe expect.bytes.{name}: no step reads {name!r}; allowed: "
                              + (", ".join(sorted(read_names)) if read_names else "names of read steps"))
    file_checks = _checks(expect_data.get("files") or {}, "expect.files", FILE_CHECKS)
    for guest_path in file_checks:
        if not any(guest_path.startswith(d.guest + "/") and d.writable for d in dirs):
            raise ConfigError(f"recipe expect.files.{guest_path}: not inside a writable directory; allowed: paths under "
                              + (", ".join(d.guest for d in dirs if d.writable) or "a wasi.dirs entry with writable: true"))
    for key in ("stdout_match", "stderr_match"):
        if key in expect_data:
            try:
                re.compile(str(expect_data[key]))
            except re.error as exc:
                raise ConfigError(f"recipe expect.{key}: {expect_data[key]!r} is not a regular expression ({exc})") from None
    expect = Expect(
        exit=_int(expect_data["exit"], "expect.exit") if "exit" in expect_data else None,
        stdout_match=str(expect_data["stdout_match"]) if "stdout_match" in expect_data else None,
        stderr_match=str(expect_data["stderr_match"]) if "stderr_match" in expect_data else None,
        result=(expect_data["result"] if isinstance(expect_data.get("result"), str)
                else _int(expect_data["result"], "expect.result") if "result" in expect_data else None),
        bytes=byte_checks, files=file_checks)
    stubs = _keys(data.get("imports") or {}, "imports", list(data.get("imports") or {}))
    for key, value in stubs.items():
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"recipe imports: {key!r} is not MODULE.NAME (e.g. env.host_interrupt)")
        _int(value, f"imports.{key}")
    invoke = data.get("invoke")
    if invoke is not None:
        if not isinstance(invoke, str):
            raise ConfigError(f"recipe invoke: {invoke!r} is not a call in WAVE such as 'handle({{method: \"GET\"}})'")
        if steps:
            raise ConfigError("recipe invoke: a single call in WAVE; allowed: invoke or steps, not both")
        from wasmlab.workloads.wave import parse_call

        parse_call(invoke, "recipe invoke")  # its syntax now; its types once the module's are known
    if expect.result is not None and not any(isinstance(s, (Call, Invoke)) for s in steps) and invoke is None:
        raise ConfigError("recipe expect.result: no call step; allowed: expect.exit or stdout_match for a plain command")
    for key in ("allocator", "memory", "driver", "input"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"recipe {key}: {data[key]!r} is not a string")
    if data.get("driver") and steps:
        raise ConfigError("recipe driver: a driver runs the whole request; allowed: driver or steps, not both")
    if data.get("driver"):
        from wasmlab.workloads.hostfuncs import driver

        driver(str(data["driver"]))  # an unknown driver is one line now, not at the first request
    return Recipe(source=source, module=module, module_path=path, name=str(data.get("name") or Path(module).stem),
                  argv=tuple(argv), stdin=stdin, env=tuple((str(k), str(v)) for k, v in env.items()), dirs=tuple(dirs),
                  steps=tuple(steps), expect=expect, allocator=str(data.get("allocator", "malloc")),
                  memory=str(data.get("memory", "memory")), wasi=bool(data.get("wasi")), driver=str(data.get("driver", "")),
                  input=str(data.get("input", "")), invoke=invoke, imports=dict(stubs))


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


def component_recipe_workload(recipe: Recipe, wasm: bytes) -> Workload:
    """A component driven by ``invoke`` or by ``invoke:`` steps (WAVE): the calls of one request, in order, in one
    instance, their arguments and expected results typed by each export's own types.  The last call is the
    workload's entry; the calls before it are its ``before`` calls."""
    import wasmtime.component

    from wasmlab.workloads.components import component_workload
    from wasmlab.workloads.model import ComponentCall
    from wasmlab.workloads.signature import Signature
    from wasmlab.workloads.wave import parse_call, parse_value, typed, typed_args

    others = [s for s in recipe.steps if not isinstance(s, Invoke)]
    if others:
        raise ConfigError(f"recipe {others[0].where}: {recipe.module} is a component, whose steps are calls in WAVE; "
                          f"allowed: invoke: 'export(args)' steps")
    if recipe.invoke is not None:
        steps = [Invoke(recipe.invoke, None, "invoke")]
    elif recipe.steps:
        steps = [s for s in recipe.steps if isinstance(s, Invoke)]
    else:
        raise ConfigError(f"recipe invoke: missing; {recipe.module} is a component: allowed: invoke: 'export(args in WAVE)' "
                          f"or invoke: steps")
    types = introspect.component_types(wasm)
    exports = types.exports
    functions = sorted(types.functions)
    calls = []
    for k, step in enumerate(steps):
        where = f"recipe {step.where}"
        name, trees = parse_call(step.text, f"{where}.invoke" if step.where != "invoke" else where)
        if name not in functions:
            raise allowed(name, f"{where}: function export of {recipe.module}", functions or ["(no function exports)"])
        func_type = exports[name].ty
        assert isinstance(func_type, wasmtime.component.FuncType)  # the names above are the function exports
        signature = Signature.of(func_type)
        args = typed_args(trees, signature.params, name, where)
        wave, key = (recipe.expect.result, "expect.result") if k == len(steps) - 1 and step.expect is None else (step.expect, f"{step.where}.expect")
        expected = None
        if wave is not None:
            if signature.result is None:
                raise ConfigError(f"recipe {key}: {name} returns nothing")
            expected = typed(parse_value(str(wave), f"recipe {key}"), signature.result, f"recipe {key}")
        calls.append(ComponentCall(name, signature, tuple(args), expected))
    last = calls[-1]
    workload = component_workload(recipe.name, wasm, last.entry, last.args, last.expected, provenance=f"recipe {recipe.source}: {recipe.module}")
    workload = dataclasses.replace(workload, before=tuple(calls[:-1]))
    if last.expected is None and last.signature.result is not None:
        return dataclasses.replace(workload, check="first-result")
    return workload


def invoked_call(text: str) -> Call:
    """``name(1, 2)`` in WAVE, for a core module: one call step with integer arguments."""
    from wasmlab.workloads.wave import parse_call

    name, trees = parse_call(text, "recipe invoke")
    args = []
    for i, tree in enumerate(trees):
        if getattr(tree, "data", None) != "number":
            raise ConfigError(f"recipe invoke argument {i}: a core export takes integers; allowed: e.g. {name}(1, 2)")
        args.append(Expr(offset=int(str(tree.children[0]), 0)))
    return Call(name, tuple(args), None, "invoke")


def check_module(recipe: Recipe, wasm: bytes) -> wasmtime.Module:
    """Every export the steps call exists with the arity they call it with (integers only, at most one result);
    the memory and the allocator they need exist; the module imports nothing but WASI."""
    module = introspect.core_module(wasm)
    functions = introspect.function_exports(module)
    memories = introspect.memory_exports(module)
    exported = sorted(functions) or ["(no function exports)"]
    calls = recipe.calls
    if recipe.needs_allocator:
        calls = [*calls, Call(recipe.allocator, (Expr(offset=0),), None, f"allocator {recipe.allocator!r} (for ptr_array without at)")]
    for call in calls:
        if call.export not in functions:
            raise allowed(call.export, f"recipe {call.where or 'steps'}: export", exported)
        t = functions[call.export]
        params, results = [str(p) for p in t.params], [str(r) for r in t.results]
        if len(params) != len(call.args):
            raise ConfigError(f"recipe {call.where}: export {call.export!r} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), "
                              f"the step gives {len(call.args)}")
        for kind in params + results:
            if kind not in ("i32", "i64"):
                raise ConfigError(f"recipe {call.where}: export {call.export!r} has a {kind} value; allowed: i32 and i64")
        if len(results) > 1:
            raise ConfigError(f"recipe {call.where}: export {call.export!r} returns {len(results)} values; allowed: at most 1")
        if call.name is not None and not results:
            raise ConfigError(f"recipe {call.where}.as: export {call.export!r} returns nothing to name")
    if recipe.uses_memory and recipe.memory not in memories:
        raise allowed(recipe.memory, "recipe memory: exported memory", sorted(memories) or ["(no memory exports)"])
    imports = introspect.core_imports(module)
    unknown = [(m, n) for m, n in imports if m != "wasi_snapshot_preview1" and f"{m}.{n}" not in recipe.imports]
    if unknown:
        m, n = unknown[0]
        raise ConfigError(f"recipe module: {recipe.module} imports {m}.{n}, which nothing defines; allowed: wasi_snapshot_preview1 "
                          f"imports, or a stub under the recipe's imports: (e.g. imports: {{{m}.{n}: 0}})")
    for key in recipe.imports:
        if key not in {f"{m}.{n}" for m, n in imports}:
            raise allowed(key, f"recipe imports: import of {recipe.module}", sorted(f"{m}.{n}" for m, n in imports if m != "wasi_snapshot_preview1")
                          or ["(none but WASI)"])
    if not recipe.steps and not recipe.driver and not ({"_start", "run"} & set(functions)):
        raise ConfigError(f"recipe steps: missing, and {recipe.module} exports neither _start nor run; allowed: steps that "
                          f"call its exports ({', '.join(exported)})")
    return module


def to_workload(recipe: Recipe, wasm: bytes) -> Workload:
    """The workload that serves ``recipe`` with its module ``wasm`` (checked against the module first; the registry,
    :func:`wasmlab.workloads.recipe_workload`, resolves a catalog name or a path to ``wasm``)."""
    from wasmlab.workloads.model import COMPONENT_VERSION

    if wasm[4:8] == COMPONENT_VERSION:
        return component_recipe_workload(recipe, wasm)
    invoked = [s for s in recipe.steps if isinstance(s, Invoke)]
    if invoked:  # on a core module, an invoke step is a call with integer arguments
        with_expect = [s for s in invoked if s.expect is not None]
        if with_expect:
            raise ConfigError(f"recipe {with_expect[0].where}.expect: a core module's calls are checked through expect.result "
                              f"(the last call's) and expect.bytes; allowed: those")
        recipe = dataclasses.replace(recipe, steps=tuple(dataclasses.replace(invoked_call(s.text), where=s.where) if isinstance(s, Invoke)
                                                         else s for s in recipe.steps))
    if recipe.invoke is not None:
        result = recipe.expect.result
        if isinstance(result, str):
            try:
                result = int(result, 0)
            except ValueError:
                raise ConfigError(f"recipe expect.result: {result!r} is not an integer; a core export returns one") from None
        recipe = dataclasses.replace(recipe, steps=(invoked_call(recipe.invoke),), invoke=None,
                                     expect=dataclasses.replace(recipe.expect, result=result))
    module = check_module(recipe, wasm)
    functions = introspect.function_exports(module)
    called = {c.export for c in recipe.calls} | ({recipe.allocator} if recipe.needs_allocator else set())
    recipe = dataclasses.replace(recipe, signatures={name: (tuple(str(p) for p in functions[name].params),
                                                            tuple(str(r) for r in functions[name].results)) for name in called})
    wasi = recipe.wasi or any(i.module == "wasi_snapshot_preview1" for i in module.imports)
    expect = recipe.expect
    if recipe.driver:
        return Workload(name=recipe.name, wasm=wasm, entry=recipe.driver, params=(), results=(), args=(), expected=None,
                        kind="wasi-library", provenance=f"recipe {recipe.source}: {recipe.module}, driver {recipe.driver}", wasi=wasi,
                        stdout_pattern=expect.stdout_match, driver=recipe.driver, driver_input=recipe.input, recipe=recipe)
    if recipe.steps:
        return Workload(name=recipe.name, wasm=wasm, entry=", ".join(dict.fromkeys(c.export for c in recipe.calls)), params=(),
                        results=(), args=(), expected=None, kind="recipe", provenance=f"recipe {recipe.source}: {recipe.module}",
                        wasi=wasi, argv=recipe.argv, stdin=recipe.stdin, stdout_pattern=expect.stdout_match,
                        stderr_pattern=expect.stderr_match, expected_exit=expect.exit or 0, recipe=recipe,
                        preopens=tuple((d.host, d.guest) for d in recipe.dirs if d.host and not d.writable),
                        check="expected" if expect.anything else "first-result")
    entry = "_start" if "_start" in functions else "run"
    t = functions[entry]
    results = tuple(str(r) for r in t.results)
    return Workload(name=recipe.name, wasm=wasm, entry=entry, params=tuple(str(p) for p in t.params), results=results,
                    args=(0,) * len(t.params), expected=expect.result if results else None,
                    kind="wasi-command" if wasi else "core", provenance=f"recipe {recipe.source}: {recipe.module}", wasi=wasi,
                    argv=recipe.argv, stdin=recipe.stdin, stdout_pattern=expect.stdout_match, stderr_pattern=expect.stderr_match,
                    expected_exit=expect.exit or 0, preopens=tuple((d.host, d.guest) for d in recipe.dirs if d.host and not d.writable),
                    recipe=recipe, check="expected" if expect.anything else "first-result" if results or wasi else "none")
