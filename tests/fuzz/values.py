"""Hypothesis strategies for the lab's plain component values, one per :class:`~wasmlab.workloads.signature.Shape`:
well-typed values of every type the lab writes in WAVE, and their equality with NaN equal to itself."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from wasmlab.workloads.signature import (
    Case,
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

# Any Unicode scalar value: surrogates are not chars, and cannot be encoded as UTF-8.
CHARS = st.characters(exclude_categories=("Cs",))
TEXT = st.text(CHARS, max_size=40)


def values(shape: Shape, size: int = 4) -> st.SearchStrategy[Any]:  # noqa: PLR0911 - one branch per value type
    """Well-typed values of ``shape``; lists hold at most ``size`` items."""
    if isinstance(shape, _Scalar):
        if shape.wit == "bool":
            return st.booleans()
        if shape.wit == "char":
            return CHARS
        if shape.wit in ("f32", "f64"):
            return st.floats(width=32 if shape.wit == "f32" else 64)
        low, high = shape.bounds or (0, 0)
        return st.integers(low, high) | st.sampled_from([low, high])
    if isinstance(shape, StringShape):
        return TEXT | st.text(CHARS, min_size=200, max_size=2000)
    if isinstance(shape, ListShape):
        if shape.is_bytes:
            return st.binary(max_size=64) | st.binary(min_size=1000, max_size=5000)
        return st.lists(values(shape.element, size), max_size=size)
    if isinstance(shape, TupleShape):
        return st.tuples(*(values(s, size) for s in shape.elements))
    if isinstance(shape, RecordShape):
        return st.fixed_dictionaries({name: values(s, size) for name, s in shape.fields})
    if isinstance(shape, OptionShape):
        return st.none() | values(shape.payload, size)
    if isinstance(shape, VariantShape):
        return st.one_of(*(st.just(Case(tag)) if payload is None else values(payload, size).map(lambda v, t=tag: Case(t, v))
                           for tag, payload in shape.cases.items()))
    if isinstance(shape, EnumShape):
        return st.sampled_from(list(shape.names))
    raise AssertionError(f"no strategy for {shape.wit}")


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (at any depth)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Case) and isinstance(b, Case):
        return a.tag == b.tag and same(a.value, b.value)
    return type(a) is type(b) and a == b
