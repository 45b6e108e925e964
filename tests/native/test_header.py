"""Every function the C driver declares in ``wasmlab/native/wasmtime_api.h`` (each X(name, ret, (args)) row of the core
and WASI tables) takes as many arguments as wasmtime-py's own declaration (``wasmtime._bindings``, generated from
wasmtime's headers), each a pointer where theirs is one, and returns the same kind (nothing, bool, pointer or integer):
a wasmtime upgrade that changes a prototype fails here, not in a segfault.  tests/test_capi.py does the same for
``wasmlab/capi.py``."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from wasmtime import _bindings as ffi

HEADER = Path(__file__).resolve().parents[2] / "wasmlab" / "native" / "wasmtime_api.h"


class Row(NamedTuple):
    name: str
    returns: str
    params: list[str]
    declared_count: int | None  # the WASI table's last column


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses, each part stripped."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()] if current.strip() else parts


def table(text: str, macro: str) -> list[Row]:
    """The rows of the X-macro table ``macro`` in header ``text``."""
    body = re.search(rf"#define {macro}\(X\)((?:.*\\\n)*.*\n)", text)
    assert body is not None, macro
    rows = []
    for line in body.group(1).replace("\\\n", "\n").splitlines():
        line = line.strip()
        if not line.startswith("X("):
            continue
        fields = split_top_level(line[2:-1])
        params = split_top_level(fields[2][1:-1])
        rows.append(Row(fields[0], fields[1], [] if params == ["void"] else params,
                        int(fields[3]) if len(fields) > 3 else None))
    return rows


def rows(text: str) -> list[Row]:
    return table(text, "WASMLAB_FUNCTIONS") + table(text, "WASMLAB_WASI_FUNCTIONS")


def is_pointer(ctype: object) -> bool:
    return ctype in (ctypes.c_void_p, ctypes.c_char_p) or (
        isinstance(ctype, type) and (issubclass(ctype, ctypes._Pointer) or issubclass(ctype, ctypes._CFuncPtr)))


def kind(c_type: str) -> str:
    """What a C type is, as far as a ctypes declaration can tell: void, bool, pointer or integer."""
    c_type = c_type.replace("const ", "").strip()
    if "*" in c_type:
        return "pointer"
    return c_type if c_type in ("void", "bool") else "integer"


def ctypes_kind(ctype: object) -> str:
    if ctype is None:
        return "void"
    if ctype is ctypes.c_bool:
        return "bool"
    return "pointer" if is_pointer(ctype) else "integer"


def mismatches(row: Row) -> list[str]:
    """How ``row`` differs from ``_bindings``' declaration of the same function (empty: it matches)."""
    bound = getattr(ffi, f"_{row.name}", None)
    if bound is None:
        return [f"{row.name}: not in wasmtime._bindings"]
    found = []
    theirs = list(bound.argtypes)
    if len(theirs) != len(row.params):
        found.append(f"{row.name}: {len(row.params)} parameters declared, wasmtime-py's binding has {len(theirs)}")
    if row.declared_count is not None and row.declared_count != len(row.params):
        found.append(f"{row.name}: the table says {row.declared_count} parameters but lists {len(row.params)}")
    for i, (mine, bound_type) in enumerate(zip(row.params, theirs)):
        if (kind(mine) == "pointer") != is_pointer(bound_type):
            found.append(f"{row.name}: parameter {i} is {mine!r}, wasmtime-py's binding has {bound_type.__name__}")
    if kind(row.returns) != ctypes_kind(bound.restype):
        found.append(f"{row.name}: returns {row.returns!r}, wasmtime-py's binding returns {bound.restype}")
    return found


ROWS = rows(HEADER.read_text())


def test_the_tables_list_every_function_the_driver_resolves():
    from wasmlab import _native

    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)) and len(ROWS) >= 30
    assert set(_native.Library.functions()) | set(_native.Library.wasi_functions()) == set(names)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_each_declared_function_matches_wasmtime_pys_binding(row):
    assert mismatches(row) == []


def test_the_check_catches_a_changed_argument_count_a_pointer_made_an_integer_and_a_wrong_return():
    text = HEADER.read_text()
    dropped = text.replace("X(wasmtime_func_call_unchecked, wasmtime_error_t *, (wasmtime_context_t *, const wasmtime_func_t *, "
                           "wasmtime_val_raw_t *, size_t, wasm_trap_t **))",
                           "X(wasmtime_func_call_unchecked, wasmtime_error_t *, (wasmtime_context_t *, const wasmtime_func_t *, "
                           "wasmtime_val_raw_t *, size_t))")
    unpointed = text.replace("X(wasmtime_store_delete, void, (wasmtime_store_t *))", "X(wasmtime_store_delete, void, (uint64_t))")
    bool_returned = text.replace("X(wasi_config_delete, void, (wasi_config_t *), 1)", "X(wasi_config_delete, bool, (wasi_config_t *), 1)")
    for changed, name, words in ((dropped, "wasmtime_func_call_unchecked", "4 parameters declared"),
                                 (unpointed, "wasmtime_store_delete", "parameter 0"),
                                 (bool_returned, "wasi_config_delete", "returns 'bool'")):
        assert changed != text, name
        row = next(r for r in rows(changed) if r.name == name)
        assert any(words in m for m in mismatches(row)), mismatches(row)
