"""A ``wasi:http`` proxy's instantiate-only request served by the native C loop (issue 28): the same request as
:mod:`wasmlab.host.proxy_instances` makes from Python, with the whole request in C (``wasmlab/native/component_loop.c``).

Per request, in C: a new store with a WASI context then a wasi-http context (``wasmtime_context_set_wasi_http``, after
the WASI one), the proxy instantiated through the driver's component linker holding wasmtime's WASI preview 2 and
wasi:http imports (``wasmtime_component_linker_add_wasip2`` then ``..._add_wasi_http``), the handler's function looked
up in the new instance (its export index found once per compiled component), no call, the store deleted (its instance
back to the pool).  The component is compiled once (the driver's cache of one).  Each request is timed in C with
``CLOCK_MONOTONIC`` by the block loop that times every native request, so no Python is in the figure; the driver counts
the instances wasmtime made (``take_stats``' ``component_instances``), which :attr:`NativeProxyInstances.made` adds up.
"""

from __future__ import annotations

import hashlib

import numpy as np

from wasmlab import _native, capi
from wasmlab.config import EngineConfig
from wasmlab.errors import ConfigError
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.native import library
from wasmlab.host.engine import build_engine
from wasmlab.host.proxy_instances import HANDLER


def proxy_plan(wasm: bytes) -> boundary.ComponentPlan:
    """The proxy's request as C serves it: its handler looked up in each fresh instance, never called."""
    handler = boundary.ComponentCallPlan(HANDLER.encode(), (), returns=False, check=_native.CHECK_NONE)
    return boundary.ComponentPlan(wasm, hashlib.sha256(wasm).digest(), (handler,), wasi=True, wasi_http=True,
                                  instantiate_only=True)


class NativeProxyInstances:
    """One engine (``engine``'s settings) and a C driver on it serving the proxy ``wasm``'s instantiate-only request;
    :meth:`block` serves ``n`` of them in one C call.  :meth:`close` frees the driver before the engine goes."""

    def __init__(self, engine: EngineConfig, wasm: bytes) -> None:
        native = library()
        reason = native.component_refusal()
        if reason:
            raise ConfigError(f"--beside-lab: {reason}")
        try:
            native.enable_wasi()
        except LookupError as exc:
            raise ConfigError(f"--beside-lab: {exc}") from None
        self.engine = build_engine(engine)
        self.driver = _native.Driver(native, capi.address(self.engine.ptr()), cache_capacity=1)
        try:
            self.index = self.driver.add_component(proxy_plan(wasm))
        except (LookupError, RuntimeError) as exc:  # a library without wasi:http, or a linker wasmtime refused
            self.driver.close()
            raise ConfigError(f"--beside-lab: {exc}") from None
        self.made = 0  # instances wasmtime made for the requests so far (counted by the driver)

    def block(self, n: int) -> np.ndarray:
        """``n`` requests in one C call: each one's ns (int64).  A request that failed raises, naming why: a component
        without the handler (ConfigError), or wasmtime's error (a pool with no free slot) as a RuntimeError."""
        records = np.zeros((n, _native.RECORD_WORDS), dtype=np.int64)
        _, message = self.driver.run(np.full(n, self.index, dtype=np.int32), records)
        self.made += int(self.driver.take_stats()["component_instances"])
        failed = np.flatnonzero(records[:, 1] != _native.OUT_OK)
        if failed.size:
            if records[failed[0], 1] == _native.OUT_NO_EXPORT:
                raise ConfigError(f"the proxy component has no function export {HANDLER!r} ({message}); allowed: a wasi:http proxy")
            raise RuntimeError(f"{failed.size} of {n} requests failed, the first with: {message}")
        return records[:, 0].copy()

    def close(self) -> None:
        self.driver.close()
