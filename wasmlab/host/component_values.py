"""The lean component path's C values: argument trees built once per request, and a result slot read per call.

Ownership, as the C API defines it (``wasmtime/component/val.h``): arguments are borrowed by the
call, so one prebuilt tree serves every call and every store and is freed once; a result belongs to
the caller, its slot must start zeroed (garbage there crashes the process), and it is deleted after
reading and zeroed again.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from wasmlab import capi
from wasmlab.workloads.signature import Shape, Signature

_Val = capi.component_val_t
_VAL_SIZE = ctypes.sizeof(_Val)


class PreparedArgs:
    """One request's argument values as C trees, built once and borrowed by every call."""

    def __init__(self, signature: Signature, args: Sequence[Any]) -> None:
        self.count = len(args)
        self.array = (_Val * max(self.count, 1))()
        self.size = ctypes.c_size_t(self.count)
        for (_, shape), value, slot in zip(signature.params, args, self.array):
            shape.lower(value, slot)

    def close(self) -> None:
        for i in range(self.count):
            capi.component_val_delete(ctypes.byref(self.array[i]))
        self.count = 0

    def __del__(self) -> None:
        self.close()


class ResultSlot:
    """A zeroed result value for the C call; ``take`` reads it, frees what it owns and zeroes it again."""

    def __init__(self, shape: Shape | None) -> None:
        self.shape = shape
        self.value = _Val()
        self.count = ctypes.c_size_t(1 if shape is not None else 0)
        self.ref = ctypes.byref(self.value) if shape is not None else None
        self._delete = capi.component_val_delete

    def take(self) -> Any:
        if self.shape is None:
            return None
        try:
            return self.shape.lift(self.value)
        finally:
            self._delete(self.ref)
            ctypes.memset(ctypes.addressof(self.value), 0, _VAL_SIZE)
