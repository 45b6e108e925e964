"""Every raw C declaration of the lab matches wasmtime-py's own (``wasmtime._bindings``, generated from
wasmtime's headers): a wasmtime upgrade that changes a signature fails here, not in a segfault."""

from __future__ import annotations

import ctypes

import pytest
from wasmtime import _bindings as ffi

from wasmlab import capi


def mismatches(declaration: capi.FastDeclaration) -> list[str]:
    """How ``declaration`` differs from ``_bindings``' declaration of the same function (empty: it matches)."""
    bound = getattr(ffi, f"_{declaration.name}", None)
    if bound is None:
        return [f"{declaration.name}: not in wasmtime._bindings"]
    found = []
    if list(bound.argtypes) != list(declaration.argtypes):
        found.append(f"{declaration.name}: argument types {declaration.argtypes} but the binding has {tuple(bound.argtypes)}")
    theirs = bound.restype
    returns_pointer = isinstance(theirs, type) and issubclass(theirs, ctypes._Pointer)
    if returns_pointer != (declaration.restype is capi.Ptr):
        found.append(f"{declaration.name}: returns {theirs}, declared {declaration.restype} (pointers must come back as capi.Ptr)")
    elif not returns_pointer and theirs is not declaration.restype:
        found.append(f"{declaration.name}: returns {theirs}, declared {declaration.restype}")
    return found


@pytest.mark.parametrize("name", sorted(capi.FAST))
def test_each_fast_declaration_matches_the_bindings(name):
    assert mismatches(capi.FAST[name]) == []


@pytest.mark.parametrize("name", sorted(capi.TYPED))
def test_each_typed_function_exists(name):
    assert callable(getattr(ffi, name))


def test_the_check_catches_a_wrong_arity_a_wrong_type_and_a_truncating_restype():
    real = capi.FAST["wasmtime_func_call_unchecked"]
    short = capi.FastDeclaration(real.name, real.restype, real.argtypes[:-1])
    retyped = capi.FastDeclaration(real.name, real.restype, (ctypes.c_int,) + real.argtypes[1:])
    truncating = capi.FastDeclaration(real.name, ctypes.c_void_p, real.argtypes)
    assert len(mismatches(short)) == 1 and "argument types" in mismatches(short)[0]
    assert len(mismatches(retyped)) == 1
    assert "capi.Ptr" in mismatches(truncating)[0]
    assert mismatches(capi.FastDeclaration("wasmtime_no_such_function", None, ())) == [
        "wasmtime_no_such_function: not in wasmtime._bindings"]


def test_a_fast_function_returns_a_pointer_as_a_ctypes_object():
    import wasmtime

    engine = wasmtime.Engine()
    store = capi.store_new(engine.ptr(), None, None)
    try:
        assert isinstance(store, capi.Ptr) and store.value
        assert isinstance(capi.store_context(store), capi.Ptr)
    finally:
        capi.store_delete(store)
