"""The component value model: a component function's typed shapes, and how each writes and reads its C value.

A :class:`Shape` is read once from wasmtime-py's type objects and knows its C representation
(``lower`` into a ``wasmtime_component_val_t``, ``lift`` out of one), as wasmtime-py's own
component types do; :class:`Signature` is a function's parameter and result shapes.  Workloads
describe component requests with them; the lean component path builds its argument trees with
them once (:mod:`wasmlab.host.component_values`).

Values on wasmlab's side are plain Python: record -> ``dict`` (declared field order),
tuple -> ``tuple``, ``list<u8>`` -> ``bytes``, other lists -> ``list``, string -> ``str``,
option -> ``None`` or the value, variant and result -> :class:`Case`, enum -> ``str``.

Ownership, as the C API defines it (``wasmtime/component/val.h``): arguments are borrowed by
the call, so one prebuilt tree serves every call and every store and is freed once; a result
belongs to the caller, its slot must start zeroed, and it is deleted after reading.  Strings
are encoded here from ``str``, so invalid UTF-8 (which aborts the process inside wasmtime)
cannot reach the C side.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import wasmtime.component as wc

from wasmlab import capi
from wasmlab.errors import ConfigError

_Val = capi.component_val_t
_VAL_SIZE = ctypes.sizeof(_Val)


BOOL, S8, U8, S16, U16, S32, U32, S64, U64, F32, F64, CHAR, STRING, LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT = (
    capi.component_kind(n) for n in
    ("BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR", "STRING", "LIST", "RECORD",
     "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT"))


@dataclass(frozen=True)
class Case:
    """A variant (or result) value: the case's name and its payload, if the case has one."""

    tag: str
    value: Any = None

    def __repr__(self) -> str:
        return f"{self.tag}({self.value!r})" if self.value is not None else self.tag


def _set_bytes(vec: capi.byte_vec_t, data: bytes) -> None:
    capi.byte_vec_new(ctypes.byref(vec), len(data), ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(capi.byte_t)))


def _get_bytes(vec: capi.byte_vec_t) -> bytes:
    return ctypes.string_at(ctypes.cast(vec.data, ctypes.c_void_p), vec.size) if vec.size else b""


class Shape:
    """A component value type, read once from wasmtime-py's type objects."""

    wit: str = "?"

    def lower(self, value: Any, dst: _Val) -> None:
        """Write ``value`` into the zeroed C value ``dst`` (allocating with the C API's allocators)."""
        raise NotImplementedError

    def lift(self, src: _Val) -> Any:
        """Read the C value ``src`` (without freeing it)."""
        raise NotImplementedError

    def to_api(self, value: Any) -> Any:
        """The same value as wasmtime-py's component API takes it."""
        return value

    def from_api(self, value: Any) -> Any:
        """wasmtime-py's representation of a result, as a plain value."""
        return value

    def check(self, value: Any, where: str) -> None:
        """Refuse a value this type cannot hold, naming where it is and what is allowed."""


class _Scalar(Shape):
    def __init__(self, wit: str, kind: int, field: str, python: type | tuple[type, ...], bounds: tuple[int, int] | None = None):
        self.wit, self.kind, self.field, self.python, self.bounds = wit, kind, field, python, bounds

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, self.python) or (self.python is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: {value!r} is not a {self.wit}")
        if self.bounds and isinstance(value, int) and not self.bounds[0] <= value <= self.bounds[1]:
            raise ConfigError(f"{where}: {value!r} is out of range for {self.wit}; allowed: {self.bounds[0]}..{self.bounds[1]}")

    def lower(self, value: Any, dst: _Val) -> None:
        dst.kind = self.kind
        setattr(dst.of, self.field, ord(value) if self.field == "character" else value)

    def lift(self, src: _Val) -> Any:
        value = getattr(src.of, self.field)
        return chr(value) if self.field == "character" else value


def _int(wit: str, kind: int, bits: int, signed: bool) -> _Scalar:
    bounds = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return _Scalar(wit, kind, f"{'s' if signed else 'u'}{bits}", int, bounds)


_SCALARS: dict[type, Callable[[], Shape]] = {
    wc.Bool: lambda: _Scalar("bool", BOOL, "boolean", bool),
    wc.S8: lambda: _int("s8", S8, 8, True), wc.U8: lambda: _int("u8", U8, 8, False),
    wc.S16: lambda: _int("s16", S16, 16, True), wc.U16: lambda: _int("u16", U16, 16, False),
    wc.S32: lambda: _int("s32", S32, 32, True), wc.U32: lambda: _int("u32", U32, 32, False),
    wc.S64: lambda: _int("s64", S64, 64, True), wc.U64: lambda: _int("u64", U64, 64, False),
    wc.F32: lambda: _Scalar("f32", F32, "f32", (int, float)), wc.F64: lambda: _Scalar("f64", F64, "f64", (int, float)),
    wc.Char: lambda: _Scalar("char", CHAR, "character", str),
}


class StringShape(Shape):
    wit = "string"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {value!r} is not a string")
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ConfigError(f"{where}: {value!r} cannot be encoded as UTF-8 ({exc.reason})") from None

    def lower(self, value: Any, dst: _Val) -> None:
        dst.kind = STRING
        _set_bytes(dst.of.string, value.encode())

    def lift(self, src: _Val) -> Any:
        return _get_bytes(src.of.string).decode()


class ListShape(Shape):
    def __init__(self, element: Shape):
        self.element = element
        self.is_bytes = isinstance(element, _Scalar) and element.kind == U8
        self.wit = f"list<{element.wit}>"

    def check(self, value: Any, where: str) -> None:
        if self.is_bytes:
            if not isinstance(value, (bytes, bytearray)):
                raise ConfigError(f"{where}: {type(value).__name__} is not a {self.wit}; allowed: bytes")
            return
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {type(value).__name__} is not a {self.wit}; allowed: a list")
        for i, item in enumerate(value):
            self.element.check(item, f"{where}[{i}]")

    def lower(self, value: Any, dst: _Val) -> None:
        raw = capi.component_vallist_t()
        capi.component_vallist_new_uninit(ctypes.byref(raw), len(value))
        if value:
            ctypes.memset(ctypes.cast(raw.data, ctypes.c_void_p), 0, _VAL_SIZE * len(value))
        if self.is_bytes and value:
            # A list<u8> is one 32-byte value per byte: write kinds and bytes into the array in bulk.
            view = (ctypes.c_uint8 * (_VAL_SIZE * len(value))).from_address(ctypes.cast(raw.data, ctypes.c_void_p).value)  # type: ignore[arg-type]
            offset = capi.component_val_t.of.offset
            view[0::_VAL_SIZE] = bytes([U8]) * len(value)  # type: ignore[call-overload]  # ctypes takes any buffer
            view[offset::_VAL_SIZE] = bytes(value)  # type: ignore[call-overload]
        else:
            for i, item in enumerate(value):
                self.element.lower(item, raw.data[i])
        dst.kind = LIST
        dst.of.list = raw

    def lift(self, src: _Val) -> Any:
        items = src.of.list
        if self.is_bytes:
            if not items.size:
                return b""
            view = (ctypes.c_uint8 * (_VAL_SIZE * items.size)).from_address(ctypes.cast(items.data, ctypes.c_void_p).value)
            return bytes(view[capi.component_val_t.of.offset::_VAL_SIZE])
        lift = self.element.lift
        data = items.data
        return [lift(data[i]) for i in range(items.size)]

    def to_api(self, value: Any) -> Any:
        return bytes(value) if self.is_bytes else [self.element.to_api(v) for v in value]

    def from_api(self, value: Any) -> Any:
        return bytes(value) if self.is_bytes else [self.element.from_api(v) for v in value]


class TupleShape(Shape):
    def __init__(self, elements: Sequence[Shape]):
        self.elements = tuple(elements)
        self.wit = f"tuple<{', '.join(e.wit for e in self.elements)}>"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != len(self.elements):
            raise ConfigError(f"{where}: {value!r} is not a {self.wit}; allowed: a tuple of {len(self.elements)}")
        for i, (shape, item) in enumerate(zip(self.elements, value)):
            shape.check(item, f"{where}[{i}]")

    def lower(self, value: Any, dst: _Val) -> None:
        raw = capi.component_valtuple_t()
        capi.component_valtuple_new_uninit(ctypes.byref(raw), len(self.elements))
        ctypes.memset(ctypes.cast(raw.data, ctypes.c_void_p), 0, _VAL_SIZE * len(self.elements))
        for i, (shape, item) in enumerate(zip(self.elements, value)):
            shape.lower(item, raw.data[i])
        dst.kind = TUPLE
        dst.of.tuple = raw

    def lift(self, src: _Val) -> Any:
        data = src.of.tuple.data
        return tuple(shape.lift(data[i]) for i, shape in enumerate(self.elements))

    def to_api(self, value: Any) -> Any:
        return tuple(s.to_api(v) for s, v in zip(self.elements, value))

    def from_api(self, value: Any) -> Any:
        return tuple(s.from_api(v) for s, v in zip(self.elements, value))


class RecordShape(Shape):
    def __init__(self, fields: Sequence[tuple[str, Shape]]):
        self.fields = tuple(fields)
        self.names = [name.encode() for name, _ in self.fields]
        self.wit = "record {" + ", ".join(f"{n}: {s.wit}" for n, s in self.fields) + "}"

    def check(self, value: Any, where: str) -> None:
        names = [n for n, _ in self.fields]
        if not isinstance(value, dict) or set(value) != set(names):
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ConfigError(f"{where}: {got} are not the fields of the record; allowed: a dict with fields {names}")
        for name, shape in self.fields:
            shape.check(value[name], f"{where}.{name}")

    def lower(self, value: Any, dst: _Val) -> None:
        raw = capi.component_valrecord_t()
        capi.component_valrecord_new_uninit(ctypes.byref(raw), len(self.fields))
        ctypes.memset(ctypes.cast(raw.data, ctypes.c_void_p), 0,
                      ctypes.sizeof(capi.component_valrecord_entry_t) * len(self.fields))
        for i, ((name, shape), encoded) in enumerate(zip(self.fields, self.names)):
            entry = raw.data[i]
            _set_bytes(entry.name, encoded)
            shape.lower(value[name], entry.val)
        dst.kind = RECORD
        dst.of.record = raw

    def lift(self, src: _Val) -> Any:
        data = src.of.record.data
        return {name: shape.lift(data[i].val) for i, (name, shape) in enumerate(self.fields)}

    def to_api(self, value: Any) -> Any:
        record = wc.Record()
        for name, shape in self.fields:
            setattr(record, name, shape.to_api(value[name]))
        return record

    def from_api(self, value: Any) -> Any:
        return {name: shape.from_api(getattr(value, name)) for name, shape in self.fields}


class VariantShape(Shape):
    """variant, and result (cases ``ok`` / ``err``), as :class:`Case` values."""

    def __init__(self, cases: Sequence[tuple[str, Shape | None]], api_type: Any, result: bool = False):
        self.cases = dict(cases)
        self.api_type = api_type
        self.result = result
        self.wit = ("result<" + ", ".join(s.wit if s else "_" for s in self.cases.values()) + ">" if result else
                    "variant {" + ", ".join(f"{n}({s.wit})" if s else n for n, s in self.cases.items()) + "}")
        self._tags = {name: name.encode() for name in self.cases}

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, Case) or value.tag not in self.cases:
            raise ConfigError(f"{where}: {value!r} is not a case of {self.wit}; allowed: Case(tag) with tag in {list(self.cases)}")
        shape = self.cases[value.tag]
        if shape is None and value.value is not None:
            raise ConfigError(f"{where}: case {value.tag!r} has no payload, got {value.value!r}")
        if shape is not None:
            shape.check(value.value, f"{where}.{value.tag}")

    def _payload(self, shape: Shape | None, value: Any) -> Any:
        if shape is None:
            return None
        payload = _Val()
        shape.lower(value, payload)
        return capi.component_val_new(ctypes.byref(payload))  # moves the payload to the heap

    def lower(self, value: Any, dst: _Val) -> None:
        shape = self.cases[value.tag]
        if self.result:
            dst.kind = RESULT
            dst.of.result.is_ok = value.tag == "ok"
            dst.of.result.val = self._payload(shape, value.value)
        else:
            dst.kind = VARIANT
            _set_bytes(dst.of.variant.discriminant, self._tags[value.tag])
            dst.of.variant.val = self._payload(shape, value.value)

    def lift(self, src: _Val) -> Any:
        if self.result:
            tag, payload = ("ok" if src.of.result.is_ok else "err"), src.of.result.val
        else:
            tag, payload = _get_bytes(src.of.variant.discriminant).decode(), src.of.variant.val
        shape = self.cases[tag]
        return Case(tag, shape.lift(payload.contents) if shape is not None and payload else None)

    def to_api(self, value: Any) -> Any:
        shape = self.cases[value.tag]
        payload = shape.to_api(value.value) if shape is not None else None
        if self.api_type._tagged():
            return wc.Variant(value.tag, payload)
        return payload

    def from_api(self, value: Any) -> Any:
        if isinstance(value, wc.Variant):
            shape = self.cases[value.tag]
            return Case(value.tag, shape.from_api(value.payload) if shape is not None else None)
        # wasmtime-py returns an untagged variant's payload alone; the case is the one whose
        # payload type holds it, as wasmtime-py itself decides when lowering.
        for tag, shape in self.cases.items():
            classes: set[type] = set()
            if shape is None:
                if value is None:
                    return Case(tag)
                continue
            shape_api = dict(self.api_type._cases())[tag]
            shape_api.add_classes(classes)
            if isinstance(value, tuple(classes)):
                return Case(tag, shape.from_api(value))
        raise ValueError(f"{value!r} is no case of {self.wit}")


class OptionShape(Shape):
    def __init__(self, payload: Shape):
        self.payload = payload
        self.wit = f"option<{payload.wit}>"

    def check(self, value: Any, where: str) -> None:
        if value is not None:
            self.payload.check(value, where)

    def lower(self, value: Any, dst: _Val) -> None:
        dst.kind = OPTION
        if value is None:
            dst.of.option = None
        else:
            payload = _Val()
            self.payload.lower(value, payload)
            dst.of.option = capi.component_val_new(ctypes.byref(payload))

    def lift(self, src: _Val) -> Any:
        return self.payload.lift(src.of.option.contents) if src.of.option else None

    def to_api(self, value: Any) -> Any:
        return None if value is None else self.payload.to_api(value)

    def from_api(self, value: Any) -> Any:
        return None if value is None else self.payload.from_api(value)


class EnumShape(Shape):
    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        self.wit = "enum {" + ", ".join(self.names) + "}"

    def check(self, value: Any, where: str) -> None:
        if value not in self.names:
            raise ConfigError(f"{where}: {value!r} is not a case of {self.wit}; allowed: {list(self.names)}")

    def lower(self, value: Any, dst: _Val) -> None:
        dst.kind = ENUM
        _set_bytes(dst.of.enumeration, value.encode())

    def lift(self, src: _Val) -> Any:
        return _get_bytes(src.of.enumeration).decode()


def shape_of(ty: Any) -> Shape:  # noqa: PLR0911 - a dispatcher with one branch per component value type
    """The shape of a wasmtime-py component value type; flags, resources, futures and streams are refused."""
    if type(ty) in _SCALARS:
        return _SCALARS[type(ty)]()
    if isinstance(ty, wc.String):
        return StringShape()
    if isinstance(ty, wc.ListType):
        return ListShape(shape_of(ty.element))
    if isinstance(ty, wc.TupleType):
        return TupleShape([shape_of(t) for t in ty.elements])
    if isinstance(ty, wc.RecordType):
        return RecordShape([(name, shape_of(t)) for name, t in ty.fields])
    if isinstance(ty, wc.VariantType):
        return VariantShape([(name, shape_of(t) if t is not None else None) for name, t in ty.cases], ty)
    if isinstance(ty, wc.ResultType):
        return VariantShape([(name, shape_of(t) if t is not None else None) for name, t in ty._cases()], ty, result=True)
    if isinstance(ty, wc.OptionType):
        return OptionShape(shape_of(ty.payload))
    if isinstance(ty, wc.EnumType):
        return EnumShape(ty.names)
    raise ConfigError(f"component value type {type(ty).__name__} is not supported by wasmlab's component paths; "
                      f"allowed: integers, floats, bool, char, string, list, tuple, record, variant, enum, option, result")


@dataclass(frozen=True)
class Signature:
    """A component function's parameter and result shapes."""

    params: tuple[tuple[str, Shape], ...]
    result: Shape | None

    @classmethod
    def of(cls, func_type: wc.FuncType) -> Signature:
        result = func_type.result
        return cls(tuple((name, shape_of(t)) for name, t in func_type.params), shape_of(result) if result is not None else None)

    def check_args(self, args: Sequence[Any], where: str) -> None:
        if len(args) != len(self.params):
            raise ConfigError(f"{where} takes {len(self.params)} argument(s) ({', '.join(n for n, _ in self.params)}), got {len(args)}")
        for (name, shape), value in zip(self.params, args):
            shape.check(value, f"{where} argument {name!r}")

    @property
    def wit(self) -> str:
        params = ", ".join(f"{n}: {s.wit}" for n, s in self.params)
        return f"func({params})" + (f" -> {self.result.wit}" if self.result is not None else "")
