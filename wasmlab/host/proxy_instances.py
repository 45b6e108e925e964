"""A ``wasi:http`` proxy's per-request instance, made the way ``wasmtime serve`` makes one, without the handler's call.

wasmtime's C API links ``wasi:http`` (``wasmtime_component_linker_add_wasi_http``) and gives a store its context
(``wasmtime_context_set_wasi_http``), but it has no way to make the ``incoming-request`` and ``response-outparam``
resources ``wasi:http/incoming-handler#handle`` takes: the lab cannot call the handler.  What it can do per request is
everything around that call: a new store with the WASI and wasi-http contexts serve gives each request, the proxy
instantiated through a component linker holding wasmtime's own WASI preview 2 and wasi:http imports (as serve links
them), the handler looked up, the store dropped (its instance back to the pool).  The component is compiled once.

The lean path's way: each step one C call through :mod:`wasmlab.capi`'s fast functions, bound once (so a count of the
calls made, :func:`wasmlab.capi.counting`, sees every request's instantiation).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import wasmtime
import wasmtime.component

from wasmlab import capi
from wasmlab.config import EngineConfig
from wasmlab.errors import ConfigError
from wasmlab.host.engine import build_engine
from wasmlab.workloads import introspect

HANDLER = "wasi:http/incoming-handler@0.2.0#handle"


class ProxyInstances:
    """One engine (``engine``'s settings), the proxy ``wasm`` compiled once on it, and a linker with wasmtime's WASI
    preview 2 and wasi:http imports; :meth:`bind` gives the request that instantiates it and drops it."""

    def __init__(self, engine: EngineConfig, wasm: bytes) -> None:
        self.engine = build_engine(engine)
        self.component = wasmtime.component.Component(self.engine, wasm)
        index = introspect.export_index(self.component, HANDLER)
        if index is None:
            raise ConfigError(f"the proxy component has no export {HANDLER!r}; allowed: a wasi:http proxy")
        self._index = index  # keeps the pointer below valid
        self.linker = wasmtime.component.Linker(self.engine)
        self.linker.add_wasip2()
        self.linker.add_wasi_http()
        self.made = 0  # instances made (and dropped) by the requests so far

    def bind(self) -> Callable[[], None]:
        """One request: new store, WASI and wasi-http contexts, instantiate, look the handler up, drop the store.
        A failure (a pool with no free slot, a handler that is not a function) raises after the store is dropped."""
        engine_ptr, linker_ptr, component_ptr = self.engine.ptr(), self.linker.ptr(), self.component.ptr()
        index_ptr = self._index.ptr()
        store_new, store_context, store_delete = capi.store_new, capi.store_context, capi.store_delete
        set_wasi, wasi_config_new, set_wasi_http = capi.context_set_wasi, capi.wasi_config_new, capi.context_set_wasi_http
        instantiate, get_func = capi.component_linker_instantiate, capi.component_instance_get_func
        instance, func = capi.component_instance_t(), capi.component_func_t()
        instance_ref, func_ref = ctypes.byref(instance), ctypes.byref(func)

        def request() -> None:
            store = store_new(engine_ptr, None, None)
            try:
                context = store_context(store)
                err = set_wasi(context, wasi_config_new())
                if err:
                    raise capi.error_from(err)
                set_wasi_http(context)  # after the WASI context: the C API panics without one when wasi:http is linked
                err = instantiate(linker_ptr, context, component_ptr, instance_ref)
                if err:
                    raise capi.error_from(err)
                if not get_func(instance_ref, context, index_ptr, func_ref):
                    raise ConfigError(f"the proxy's export {HANDLER!r} is not a function")
                self.made += 1
            finally:
                store_delete(store)

        return request
