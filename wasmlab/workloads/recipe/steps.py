"""A recipe's ``steps:`` parsed: integer expressions, calls (nested ones too), writes, reads and WAVE invocations.

A name is usable only after the step that sets it (``as:``), so every parser takes the names set so far."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.workloads.recipe.fields import int64, integer, mapping
from wasmlab.workloads.recipe.model import WRITE_SOURCES, Arg, Call, Expr, Invoke, PtrArray, Read, Step, Write

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
EXPR = re.compile(rf"\s*(?:(?P<name>{NAME})\s*(?:(?P<sign>[+-])\s*(?P<offset>0x[0-9a-fA-F]+|\d+))?|(?P<int>-?(?:0x[0-9a-fA-F]+|\d+)))\s*")
STEP_KINDS = ("call", "write", "read", "invoke")
# A repeated write is built in host memory before it is written: no more than a 32-bit guest memory (4 GiB) can hold,
# so that a typo of a count is one line instead of a host allocation of terabytes.
MAX_REPEAT = 1 << 32
def expression(value: Any, where: str, names: set[str]) -> Expr:
    if isinstance(value, bool):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer, a name or NAME+N")
    if isinstance(value, int):
        return Expr(offset=int64(value, where))
    if isinstance(value, Mapping) and "call" in value:
        return Expr(call=call(value, where, names, nested=True))
    if isinstance(value, Mapping) and "load" in value:
        mapping(value, where, ("load",))
        return Expr(load=expression(value["load"], f"{where}.load", names))
    if not isinstance(value, str) or not (match := EXPR.fullmatch(value)):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer, a name, NAME+N, NAME-N, {{call: EXPORT}} or {{load: EXPR}}")
    if match["int"] is not None:
        return Expr(offset=int64(int(match["int"], 0), where))
    name = match["name"]
    if name not in names:
        raise ConfigError(f"recipe {where}: name {name!r} is never set before this step; allowed: "
                          + (", ".join(sorted(names)) if names else "a name set by an earlier step's `as`"))
    offset = int(match["offset"], 0) if match["offset"] else 0
    return Expr(name=name, offset=int64(-offset if match["sign"] == "-" else offset, where))


def argument(value: Any, where: str, names: set[str]) -> Arg:
    if isinstance(value, Mapping) and "ptr_array" in value:
        data = mapping(value, where, ("ptr_array", "at"))
        items = data["ptr_array"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"recipe {where}.ptr_array: {items!r} is not a non-empty list of integers or names")
        return PtrArray(tuple(expression(v, f"{where}.ptr_array[{i}]", names) for i, v in enumerate(items)),
                        expression(data["at"], f"{where}.at", names) if "at" in data else None)
    return expression(value, where, names)


def call(data: Mapping[str, Any], where: str, names: set[str], nested: bool = False) -> Call:
    data = mapping(data, where, ("call", "args") if nested else ("call", "args", "as"))
    export = data["call"]
    if not isinstance(export, str) or not export:
        raise ConfigError(f"recipe {where}.call: {export!r} is not an export name")
    args = data.get("args", [])
    if not isinstance(args, list):
        raise ConfigError(f"recipe {where}.args: {args!r} is not a list")
    parsed = tuple(argument(a, f"{where}.args[{i}]", names) for i, a in enumerate(args))
    name = data.get("as")
    if name is not None and (not isinstance(name, str) or not re.fullmatch(NAME, name)):
        raise ConfigError(f"recipe {where}.as: {name!r} is not a name; allowed: letters, digits and _, not starting with a digit")
    return Call(export, parsed, name, where)


def invoke(data: Mapping[str, Any], where: str) -> Invoke:
    """An ``invoke:`` step: its WAVE call parsed now (its syntax; its types once the module's are known)."""
    from wasmlab.workloads.wave import parse_call

    data = mapping(data, where, ("invoke", "expect"))
    text, expect = data["invoke"], data.get("expect")
    if not isinstance(text, str):
        raise ConfigError(f"recipe {where}.invoke: {text!r} is not a call in WAVE such as 'handle({{method: \"GET\"}})'")
    parse_call(text, f"recipe {where}.invoke")
    if expect is not None and not isinstance(expect, (str, int)) or isinstance(expect, bool):
        raise ConfigError(f"recipe {where}.expect: {expect!r} is not a value in WAVE such as 'reject(403)' or 42")
    return Invoke(text, None if expect is None else str(expect), where)


def write_data(data: Mapping[str, Any], where: str, base: Path) -> bytes:
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
    spec = mapping(value, f"{where}.repeat", ("byte", "count"))
    byte, count = integer(spec.get("byte"), f"{where}.repeat.byte"), integer(spec.get("count"), f"{where}.repeat.count")
    if not 0 <= byte <= 255 or not 0 <= count <= MAX_REPEAT:
        raise ConfigError(f"recipe {where}.repeat: byte {byte}, count {count}; allowed: a byte 0..255 and a count 0..{MAX_REPEAT}")
    return bytes([byte]) * count


def write(raw: Mapping[str, Any], where: str, names: set[str], base: Path) -> Write:
    mapping(raw, where, ("write",))
    spec = mapping(raw["write"], f"{where}.write", ("at", *WRITE_SOURCES))
    if "at" not in spec:
        raise ConfigError(f"recipe {where}.write.at: missing; allowed: an integer, a name or NAME+N")
    return Write(expression(spec["at"], f"{where}.write.at", names), write_data(spec, f"{where}.write", base), where)


def read(raw: Mapping[str, Any], where: str, names: set[str]) -> Read:
    mapping(raw, where, ("read",))
    spec = mapping(raw["read"], f"{where}.read", ("at", "length", "as"))
    for key in ("at", "length", "as"):
        if key not in spec:
            raise ConfigError(f"recipe {where}.read.{key}: missing")
    name = spec["as"]
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        raise ConfigError(f"recipe {where}.read.as: {name!r} is not a name")
    return Read(expression(spec["at"], f"{where}.read.at", names), expression(spec["length"], f"{where}.read.length", names),
                name, where)


def steps(raw_steps: Any, base: Path) -> list[Step]:
    """The ``steps:`` list, in order; each step may use the names the steps before it set."""
    if not isinstance(raw_steps, list):
        raise ConfigError(f"recipe steps: {raw_steps!r} is not a list")
    names: set[str] = set()
    parsed: list[Step] = []
    for i, raw in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(raw, Mapping) or len(set(STEP_KINDS) & set(raw)) != 1:
            raise ConfigError(f"recipe {where}: {raw!r} is not a step; allowed: a mapping with one of call, write, read, invoke")
        step: Step
        if "invoke" in raw:
            step = invoke(raw, where)
        elif "call" in raw:
            step = call(raw, where, names)
        elif "write" in raw:
            step = write(raw, where, names, base)
        else:
            step = read(raw, where, names)
        if isinstance(step, (Call, Read)) and step.name:
            names.add(step.name)
        parsed.append(step)
    return parsed
