"""WAVE, the WebAssembly Value Encoding (what ``wasmtime run --invoke`` takes), parsed with lark and typed by a
component function's shapes.

``parse_call("handle({method: \\"GET\\", headers: [(\\"x-role\\", \\"user\\")]})")`` gives the function's name and
its argument trees; :func:`typed` turns a tree into the lab's plain value for a :class:`~wasmlab.workloads.signature.Shape`
(record -> dict, tuple -> tuple, ``list<u8>`` -> bytes, option -> None or the value, variant/result -> ``Case``,
enum -> str), so both component call paths take it as they take any argument.  A value that does not parse,
or does not fit its type, is one line naming the column: ``WAVE value at column 18: "GET" is not a u32``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from wasmlab.errors import ConfigError
from wasmlab.workloads.signature import Case as Case
from wasmlab.workloads.signature import (
    EnumShape,
    ListShape,
    OptionShape,
    RecordShape,
    Shape,
    StringShape,
    TupleShape,
    VariantShape,
    _Scalar,
)

GRAMMAR = r"""
call: CALLEE "(" [value ("," value)* ","?] ")"
?value: record | tuple | list | cased | label | string | char | number
record: "{" [field ("," field)* ","?] "}"
field: LABEL ":" value
tuple: "(" value ("," value)* ","? ")"
list: "[" [value ("," value)* ","?] "]"
cased: LABEL "(" value ")"
label: LABEL
string: STRING
char: CHAR
number: NUMBER
LABEL: /%?[a-z][a-z0-9]*(-[a-z0-9]+)*/
CALLEE: /([^\s()#]*(#%?[a-z][a-z0-9]*(-[a-z0-9]+)*)+|%?[a-z][a-z0-9]*(-[a-z0-9]+)*)/
STRING: /"(\\.|[^"\\])*"/
CHAR: /'(\\.|[^'\\])+'/
NUMBER: /-?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][+-]?\d+)?)/ | "nan" | "inf" | "-inf"
%import common.WS
%ignore WS
"""


@functools.cache
def _parser(start: str) -> Lark:
    """The LALR parser for one start symbol, built on first use: building both costs ~0.3 s, which every process
    importing the host (each CLI call, each notebook kernel) paid whether it read WAVE or not."""
    return Lark(GRAMMAR, start=start, parser="lalr", propagate_positions=True)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _column(node: Any) -> int:
    if isinstance(node, Token):
        return node.column or 0
    return getattr(node.meta, "column", 0) if hasattr(node, "meta") and not node.meta.empty else 0


def _fail(where: str, node: Any, message: str) -> ConfigError:
    return ConfigError(f"{where} at column {_column(node)}: {message}")


def _parse(parser: Lark, text: str, where: str) -> Any:
    try:
        return parser.parse(text)
    except UnexpectedInput as exc:
        found = text[exc.pos_in_stream:exc.pos_in_stream + 12] if exc.pos_in_stream is not None else ""
        raise ConfigError(f"{where} at column {exc.column}: cannot read {found!r} (WAVE: records {{a: 1}}, tuples (1, 2), "
                          f"lists [1], strings \"s\", chars 'c', cases name or name(value), some(v), none, ok(v), err(v))") from None


def parse_value(text: str, where: str = "WAVE value") -> Any:
    """The syntax tree of one WAVE value (typed later by :func:`typed`)."""
    return _parse(_parser("value"), text, where)


def parse_call(text: str, where: str = "WAVE call") -> tuple[str, list[Any]]:
    """``name(arg, ...)`` as the function's name and its argument trees; the name may be a function's inside an
    exported interface, ``pkg:ns/iface@1.0.0#name`` (or ``#name``, the top-level one: see ``ComponentTypes.resolve``)."""
    tree = _parse(_parser("call"), text, where)
    name, *args = tree.children
    return "#".join(part.lstrip("%") for part in str(name).split("#")), [a for a in args if a is not None]


_UNICODE = re.compile(r"u\{([0-9a-fA-F]{1,6})\}")


def _unquote(token: Token, where: str) -> str:
    body, out, i = str(token)[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                # A Unicode scalar value only: a surrogate (or a code point past U+10FFFF) cannot be encoded as UTF-8.
                code = _UNICODE.match(body, i + 1)
                scalar = int(code[1], 16) if code else -1
                if not (0 <= scalar <= 0x10FFFF and not 0xD800 <= scalar <= 0xDFFF):
                    raise _fail(where, token, f"{body[i:i + 12]!r} is not a WAVE unicode escape; allowed: \\u{{hex}} of a "
                                              f"Unicode scalar value (0..10ffff, not d800..dfff)")
                out.append(chr(scalar))
                i = code.end() if code else i
                continue
            if nxt not in _ESCAPES:
                raise _fail(where, token, f"\\{nxt} is not a WAVE escape; allowed: \\n \\t \\r \\\\ \\\" \\' \\u{{hex}}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _describe(node: Any) -> str:
    if isinstance(node, Tree):
        text = {"record": "a record", "tuple": "a tuple", "list": "a list", "cased": f"the case {node.children[0]}(...)",
                "label": f"the name {node.children[0]}", "string": f"the string {node.children[0]}",
                "char": f"the char {node.children[0]}", "number": f"the number {node.children[0]}"}
        return text.get(node.data, str(node.data))
    return repr(str(node))


def typed(node: Any, shape: Shape, where: str = "WAVE value") -> Any:  # noqa: C901, PLR0911, PLR0912, PLR0915 - a dispatcher with one branch per component value type
    """The plain value of WAVE tree ``node`` for ``shape``; one line with the column when it does not fit."""
    kind = node.data if isinstance(node, Tree) else None
    if isinstance(shape, _Scalar):
        if shape.wit == "bool":
            if kind == "label" and str(node.children[0]) in ("true", "false"):
                return str(node.children[0]) == "true"
        elif shape.wit == "char":
            if kind == "char":
                text = _unquote(node.children[0], where)
                if len(text) == 1:
                    return text
        elif kind == "number":
            text = str(node.children[0])
            if shape.wit in ("f32", "f64"):
                try:
                    return float(text)
                except ValueError:  # 0x10: WAVE writes floats in decimal
                    raise _fail(where, node, f"{text} is not a {shape.wit}; allowed: a decimal number, nan, inf or -inf") from None
            try:
                value = int(text, 0)
            except ValueError:
                raise _fail(where, node, f"{text} is not a {shape.wit}; allowed: an integer") from None
            low, high = shape.bounds or (value, value)
            if not low <= value <= high:
                raise _fail(where, node, f"{value} is out of range for {shape.wit}; allowed: {low}..{high}")
            return value
        raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}")
    if isinstance(shape, StringShape):
        if kind == "string":
            return _unquote(node.children[0], where)
        raise _fail(where, node, f"{_describe(node)} is not a string")
    if isinstance(shape, ListShape):
        if kind != "list":
            raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}")
        items = [typed(child, shape.element, where) for child in node.children if child is not None]
        return bytes(items) if shape.is_bytes else items
    if isinstance(shape, TupleShape):
        children = [c for c in node.children if c is not None] if kind == "tuple" else []
        if kind != "tuple" or len(children) != len(shape.elements):
            raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}")
        return tuple(typed(c, s, where) for c, s in zip(children, shape.elements))
    if isinstance(shape, RecordShape):
        if kind != "record":
            raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}")
        given = {str(f.children[0]).lstrip("%"): f for f in node.children if f is not None}
        fields = dict(shape.fields)
        for name, field in given.items():
            if name not in fields:
                raise _fail(where, field, f"field {name!r} is not in {shape.wit}; allowed: {', '.join(fields)}")
        out = {}
        for name, field_shape in shape.fields:
            if name in given:
                out[name] = typed(given[name].children[1], field_shape, where)
            elif isinstance(field_shape, OptionShape):
                out[name] = None  # WAVE lets an option field be left out
            else:
                raise _fail(where, node, f"field {name!r} of {shape.wit} is missing")
        return out
    if isinstance(shape, OptionShape):
        if kind == "label" and str(node.children[0]) == "none":
            return None
        if kind == "cased" and str(node.children[0]) == "some":
            return typed(node.children[1], shape.payload, where)
        raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}; allowed: none or some(value)")
    if isinstance(shape, VariantShape):
        if kind in ("label", "cased"):
            tag = str(node.children[0]).lstrip("%")
            if tag not in shape.cases:
                raise _fail(where, node, f"case {tag!r} is not in {shape.wit}; allowed: {', '.join(shape.cases)}")
            payload = shape.cases[tag]
            if payload is None and kind == "label":
                return Case(tag)
            if payload is not None and kind == "cased":
                return Case(tag, typed(node.children[1], payload, where))
            raise _fail(where, node, f"case {tag!r} of {shape.wit} " + ("takes a value" if payload is not None else "takes no value"))
        raise _fail(where, node, f"{_describe(node)} is not a {shape.wit}")
    if isinstance(shape, EnumShape):
        if kind == "label" and str(node.children[0]).lstrip("%") in shape.names:
            return str(node.children[0]).lstrip("%")
        raise _fail(where, node, f"{_describe(node)} is not a case of {shape.wit}; allowed: {', '.join(shape.names)}")
    raise _fail(where, node, f"values of {shape.wit} cannot be written in WAVE here")


def typed_args(trees: Sequence[Any], params: Sequence[tuple[str, Shape]], name: str, where: str = "WAVE call") -> tuple[Any, ...]:
    """A call's argument trees typed by the function's parameters (arity checked)."""
    if len(trees) != len(params):
        raise ConfigError(f"{where}: {name} takes {len(params)} argument(s) ({', '.join(n for n, _ in params) or 'none'}), "
                          f"the call gives {len(trees)}")
    return tuple(typed(tree, shape, f"{where} argument {pname!r}") for tree, (pname, shape) in zip(trees, params))


_QUOTED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _quote(text: str, quote: str) -> str:
    """``text`` as a WAVE string or char literal: the escapes :func:`_unquote` reads, other control characters as \\u{hex}."""
    out = []
    for ch in text:
        if ch in _QUOTED:
            out.append(_QUOTED[ch])
        elif ch == quote:
            out.append("\\" + quote)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _label(name: str) -> str:
    """A field, case or enum name as a WAVE label (``%`` before a name that is also a keyword of WAVE's values)."""
    return f"%{name}" if name in ("true", "false", "none", "some", "ok", "err", "inf", "nan") else name


def format_value(value: Any, shape: Shape) -> str:  # noqa: PLR0911 - a dispatcher with one branch per component value type
    """The lab's plain ``value`` of ``shape`` written in WAVE, so that ``typed(parse_value(text), shape) == value``."""
    if isinstance(shape, _Scalar):
        if shape.wit == "bool":
            return "true" if value else "false"
        if shape.wit == "char":
            return _quote(str(value), "'")
        if shape.wit in ("f32", "f64"):
            number = float(value)
            return "nan" if number != number else "inf" if number == float("inf") else "-inf" if number == float("-inf") else repr(number)
        return str(int(value))
    if isinstance(shape, StringShape):
        return _quote(str(value), '"')
    if isinstance(shape, ListShape):
        return "[" + ", ".join(format_value(item, shape.element) for item in value) + "]"
    if isinstance(shape, TupleShape):
        return "(" + ", ".join(format_value(item, s) for item, s in zip(value, shape.elements)) + ")"
    if isinstance(shape, RecordShape):
        return "{" + ", ".join(f"{_label(name)}: {format_value(value[name], s)}" for name, s in shape.fields) + "}"
    if isinstance(shape, OptionShape):
        return "none" if value is None else f"some({format_value(value, shape.payload)})"
    if isinstance(shape, VariantShape):
        payload = shape.cases[value.tag]
        return _label(value.tag) if payload is None else f"{_label(value.tag)}({format_value(value.value, payload)})"
    if isinstance(shape, EnumShape):
        return _label(str(value))
    raise ConfigError(f"values of {shape.wit} cannot be written in WAVE here")


def format_call(name: str, args: Sequence[Any], params: Sequence[tuple[str, Shape]]) -> str:
    """``name(args)`` in WAVE, as ``wasmtime run --invoke`` and a recipe's ``invoke:`` take it."""
    return f"{name}(" + ", ".join(format_value(value, shape) for value, (_, shape) in zip(args, params)) + ")"
