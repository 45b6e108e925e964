"""The component C API the driver declares in ``wasmlab/native/component_api.h`` matches wasmtime-py's own declarations
(``wasmtime._bindings``, generated from wasmtime's headers): every function's argument count, pointer-ness and return
kind, and the value structs' sizes, so that a wasmtime upgrade that changes them fails here and not in a segfault."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from wasmtime import _bindings as ffi

from tests.native.test_header import mismatches, table

HEADER = Path(__file__).resolve().parents[2] / "wasmlab" / "native" / "component_api.h"
# The required functions, those a recipe's stubs of component imports need and wasi:http's for a proxy (each set
# resolved apart: see the header).
ROWS = (table(HEADER.read_text(), "WASMLAB_COMPONENT_FUNCTIONS") + table(HEADER.read_text(), "WASMLAB_COMPONENT_STUB_FUNCTIONS")
        + table(HEADER.read_text(), "WASMLAB_COMPONENT_HTTP_FUNCTIONS"))


def test_the_table_lists_every_component_function_the_driver_resolves():
    from wasmlab import _native

    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)) >= 12
    assert set(_native.Library.component_functions()) == set(names)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_each_declared_component_function_matches_wasmtime_pys_binding(row):
    assert mismatches(row) == []


def test_the_value_structs_have_wasmtime_pys_layout():
    from wasmlab import _native

    ours = _native.component_layout()
    theirs = {name: ctypes.sizeof(getattr(ffi, name)) for name in ours if "." not in name}
    theirs["wasmtime_component_val_t.of"] = ffi.wasmtime_component_val_t.of.offset
    assert ours == theirs


def test_wasmtime_pys_library_serves_components():
    from wasmlab import _native, capi

    assert _native.Library(handle=capi.library_handle()).component_refusal() is None


def test_a_dropped_argument_is_caught():
    text = HEADER.read_text().replace("(const wasmtime_component_func_t *, wasmtime_context_t *))",
                                      "(const wasmtime_component_func_t *))")
    row = next(r for r in table(text, "WASMLAB_COMPONENT_FUNCTIONS") if r.name == "wasmtime_component_func_post_return")
    assert any("1 parameters declared" in m for m in mismatches(row))
