"""A component that answers with its argument, for fuzzing the C driver's component values: each export of
:data:`tests.fuzz.guests.EXPORTS` takes a value (spilled to guest memory beside the 16-u32 pad) and returns that same
value, read back from the memory its lowering wrote; so an expectation tree equal to the argument passes, and one
changed anywhere fails.  And the places of a value tree (:class:`~wasmlab.host.native_boundary.ComponentValue`) one
change can reach: every item of a short list, the first, a middle and the last of a long one, every record field, a
string's first and last character, a list shortened or lengthened, a case, an option or a result turned over."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import wasmtime
import wasmtime.component as wc

from tests.fuzz.guests import EXPORTS, HEAP, PAD, component_head
from wasmlab.host.native_boundary import ComponentValue
from wasmlab.workloads.signature import Signature

# The spilled arguments start with the value, laid out as the result is: the core function returns their address (the
# result's), or for a one-byte enum (a result of one flat value) the byte itself.
_CORE = f"""(core module $m
{HEAP}
    (func (export "echo") (param $args i32) (result i32) (local.get $args))
    (func (export "echo-byte") (param $args i32) (result i32) (i32.load8_u (local.get $args))))"""
ONE_BYTE = {"take-level"}


def echo_wat() -> str:
    """The component's text: every type of :data:`~tests.fuzz.guests.TYPES`, every export of ``EXPORTS`` returning its argument."""
    lines = component_head(_CORE)
    for name, param in EXPORTS.items():
        core = "echo-byte" if name in ONE_BYTE else "echo"
        lines.append(f'  (func (export "{name}") (param "a" {param}) (param "pad" {PAD}) (result {param}) '
                     f'(canon lift (core func $i "{core}") (memory $mem) (realloc $realloc) string-encoding=utf8))')
    return "\n".join(lines) + ")"


def echo_signatures(wasm: bytes) -> dict[str, Signature]:
    """Each export's signature, read from the compiled component as the lab reads any component's."""
    engine = wasmtime.Engine()
    component = wc.Component(engine, wasm)
    return {name: Signature.of(export.ty) for name, export in component.type.exports(engine).items() if name in EXPORTS}


SCALAR_KINDS = range(0, 12)  # bool, the integers, the floats, char: compared by their bits
# The highest bit C keeps of each scalar kind's number (s8/u8, s16/u16, s32/u32/f32/char; the rest 63).
HIGHEST_BIT = {1: 7, 2: 7, 3: 15, 4: 15, 5: 31, 6: 31, 9: 31, 11: 31}
LIST, TUPLE, RECORD, VARIANT, ENUM, OPTION, RESULT, STRING = 13, 15, 14, 16, 17, 18, 19, 12


def _with_item(tree: ComponentValue, i: int, item: ComponentValue) -> ComponentValue:
    return dataclasses.replace(tree, items=tree.items[:i] + (item,) + tree.items[i + 1:])


def _changed_text(tree: ComponentValue) -> Iterator[tuple[str, ComponentValue]]:
    text = tree.text
    if not text:
        yield "an empty string given a character", dataclasses.replace(tree, text=b"x")
        return
    yield "the first byte", dataclasses.replace(tree, text=bytes([text[0] ^ 1]) + text[1:])
    yield "the last byte", dataclasses.replace(tree, text=text[:-1] + bytes([text[-1] ^ 1]))
    yield "the last byte dropped", dataclasses.replace(tree, text=text[:-1])


def _scalar_changes(tree: ComponentValue, where: str) -> Iterator[tuple[str, ComponentValue]]:
    if tree.kind == 0:
        yield f"{where} turned over", dataclasses.replace(tree, number=tree.number ^ 1)
        return
    top = HIGHEST_BIT.get(tree.kind, 63)
    yield f"{where}'s lowest bit", dataclasses.replace(tree, number=tree.number ^ 1)
    yield f"{where}'s highest bit", dataclasses.replace(tree, number=tree.number ^ (1 << top))


def _item_changes(tree: ComponentValue, where: str) -> Iterator[tuple[str, ComponentValue]]:
    """A list's, tuple's or record's: each item changed (the first, a middle and the last of a long list), and for a
    list one item fewer or more, for a record its last field renamed."""
    n, kind = len(tree.items), tree.kind
    for i in range(n) if n <= 6 else sorted({0, n // 2, n - 1}):
        label = f"{where}.{tree.names[i].decode()}" if kind == RECORD else f"{where}[{i}{' (last)' if i == n - 1 else ''}]"
        for name, item in changes(tree.items[i], label):
            yield name, _with_item(tree, i, item)
    if kind == LIST and n:
        yield f"{where} without its last item", dataclasses.replace(tree, items=tree.items[:-1])
        yield f"{where} with its last item twice", dataclasses.replace(tree, items=tree.items + tree.items[-1:])
    elif kind == LIST:
        yield f"{where} given an item", dataclasses.replace(tree, items=(ComponentValue(6, 0),))
    if kind == RECORD and n:
        yield f"{where}'s last field renamed", dataclasses.replace(tree, names=tree.names[:-1] + (tree.names[-1] + b"x",))


def _payload_changes(tree: ComponentValue, where: str) -> Iterator[tuple[str, ComponentValue]]:
    """A variant's, option's or result's: its case or ok-ness turned, its payload changed, dropped or given."""
    if tree.kind == VARIANT:
        yield f"{where}'s case renamed", dataclasses.replace(tree, text=tree.text + b"x")
    if tree.kind == RESULT:
        yield f"{where} ok turned err", dataclasses.replace(tree, number=tree.number ^ 1)
    if tree.items:
        if tree.kind != VARIANT:
            yield f"{where}'s payload dropped", dataclasses.replace(tree, items=())
        for name, item in changes(tree.items[0], f"{where}'s payload"):
            yield name, _with_item(tree, 0, item)
    elif tree.kind != VARIANT:
        yield f"{where} given a payload", dataclasses.replace(tree, items=(ComponentValue(6, 0),))


def changes(tree: ComponentValue, where: str = "value") -> Iterator[tuple[str, ComponentValue]]:
    """Every one-place change of ``tree`` this fuzzing tries, each named by where it is: the changed tree differs from
    ``tree`` in exactly that place (so a comparison that looks at every place must tell them apart)."""
    if tree.kind in SCALAR_KINDS:
        yield from _scalar_changes(tree, where)
    elif tree.kind in (STRING, ENUM):
        for name, changed in _changed_text(tree):
            yield f"{where}: {name}", changed
    elif tree.kind in (LIST, TUPLE, RECORD):
        yield from _item_changes(tree, where)
    else:
        yield from _payload_changes(tree, where)
