"""Instance reuse (a variant's ``+reuseN``) on the lean and api paths, for core modules.

An instance, with its store, serves N requests of its workload in a row; the N-th request drops it in its own time
(as a fresh-instance request drops its store), and the next request makes a fresh one.  A request that fails drops
its instance too (a trap can leave it half-updated).  No instance outlives a block: a block server drops what is
left when it starts and when it ends, outside every request's time, so each block's first request of a workload is
a fresh instance and no pool slot is held while other variants run.  ``handle`` (warm-up, one-off requests) serves
one request and drops its instance, as the native path's one-request blocks do.

The isolation price is measured, not refused: a request on a fresh instance is checked as the lab checks every
request, and its result becomes the workload's *fresh reference*; a reused request's result is compared with it, and
a difference (or a failure where the fresh instance succeeded) is counted as carried over.  The
:class:`ReuseLedger` holds, per timed request, whether it ran on a fresh instance and whether it carried state over.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import Handlers, RequestParts, learned_or_mismatch
from wasmlab.host.outcomes import REQUEST_FAILURES
from wasmlab.workloads.model import Workload


@dataclass
class ReuseLedger:
    """Per request a reuse server served since the last :meth:`take`: on a fresh instance, and carrying state over."""

    reuse: int
    fresh: list[bool] = field(default_factory=list)
    carried: list[bool] = field(default_factory=list)

    def extend(self, fresh: Any, carried: Any) -> None:
        """A block's flags as the native path's records hold them (integer columns)."""
        self.fresh.extend(bool(v) for v in fresh)
        self.carried.extend(bool(v) for v in carried)

    def take(self) -> tuple[list[bool], list[bool]]:
        """What was recorded since the last call, then forgotten."""
        fresh, carried = self.fresh, self.carried
        self.fresh, self.carried = [], []
        return fresh, carried


def refusal(workload: Workload) -> str | None:
    """Why instance reuse is not served for ``workload`` here (one line), or ``None``."""
    kind = ("a component" if workload.component else "a WASI command" if workload.wasi else
            "library-style (driven through wasmtime-py's objects)" if workload.driver else
            "a recipe (its steps read memory the check does not compare yet)" if workload.steps else
            "a module importing host functions" if workload.linked else None)
    if kind is None:
        return None
    return (f"workload {workload.name!r} is {kind}; instance reuse (+reuseN) is served for core modules calling one "
            f"export without imports (allowed: +reuse1 for it, or such a module)")


def check_reusable(label: str, workloads: Sequence[Workload]) -> None:
    """Every workload is one reuse serves, or a one-line ConfigError naming the variant."""
    for w in workloads:
        reason = refusal(w)
        if reason:
            raise ConfigError(f"variant {label!r}: {reason}")


class Kept:
    """A live instance: the path's own handles (``store``, ``instance``) and how many requests it served."""

    __slots__ = ("instance", "served", "store")

    def __init__(self, store: Any, instance: Any) -> None:
        self.store, self.instance, self.served = store, instance, 0


class ReuseServer:
    """Serves requests on kept instances through a path's three pieces: ``open(index)`` -> a new :class:`Kept` (store and
    instance), ``call(kept, index)`` -> the result, ``close(kept)`` drops its store."""

    def __init__(self, parts: RequestParts, workloads: Sequence[Workload], open_: Callable[[int], Kept],
                 call: Callable[[Kept, int], object], close: Callable[[Kept], None]) -> None:
        self.reuse = parts.reuse
        self.ledger: ReuseLedger = parts.ledger
        self.workloads = list(workloads)
        self.open, self.call, self.close = open_, call, close
        self.live: dict[int, Kept] = {}
        self.expected = {i: w.expectation.compared_with() for i, w in enumerate(workloads)}
        self.reference: dict[int, object] = {}
        # The last request's: on a fresh instance, carried state over (read by the block server after its time).
        self.fresh = self.carried = False

    def drop(self, index: int) -> None:
        kept = self.live.pop(index, None)
        if kept is not None:
            self.close(kept)

    def drop_all(self) -> None:
        for index in list(self.live):
            self.drop(index)

    def serve(self, index: int) -> object:
        """One request on ``index``'s kept instance (a fresh one first when there is none), judged (see the module)."""
        kept = self.live.get(index)
        self.fresh = kept is None
        self.carried = False
        if kept is None:
            kept = self.live[index] = self.open(index)
        ended = False
        try:
            result = self.call(kept, index)
            ended = True
        finally:
            kept.served += 1
            if not ended or kept.served >= self.reuse:
                del self.live[index]
                self.close(kept)
            if not ended and not self.fresh:
                self.carried = index in self.reference
        return self.judge(index, result)

    def judge(self, index: int, result: object) -> object:
        if not self.fresh:
            self.carried = index in self.reference and result != self.reference[index]
            return result
        expected = self.expected[index]
        if expected is not None and result != expected:
            self.expected[index] = learned_or_mismatch(self.workloads[index].name, result, expected,
                                                       self.workloads[index].expectation.same_as_first)
        self.reference.setdefault(index, result)
        return result

    def handle(self, index: int) -> object:
        """One request on its own, its instance dropped after it (warm-up, one-off requests)."""
        try:
            return self.serve(index)
        finally:
            self.drop(index)

    def block(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None = None) -> int:
        """Serve and time ``indices`` as the harness's timed loop does, recording each request's instance in the ledger;
        what is kept is dropped before and after, outside the requests' time and the block's wall time."""
        clock, serve, ledger = time.perf_counter_ns, self.serve, self.ledger
        self.drop_all()
        start = clock()
        for i, index in enumerate(indices):
            t0 = clock()
            try:
                serve(index)
            except REQUEST_FAILURES as exc:
                out[i] = clock() - t0
                ledger.fresh.append(self.fresh)
                ledger.carried.append(self.carried)
                if failures is None:
                    self.drop_all()
                    raise
                failures.append((i, exc))
                continue
            out[i] = clock() - t0
            ledger.fresh.append(self.fresh)
            ledger.carried.append(self.carried)
        wall = clock() - start
        self.drop_all()
        return wall

    def handlers(self) -> Handlers:
        def phased(index: int, stamps: list[int]) -> object:
            raise ConfigError("instance reuse (+reuseN) is not timed phase by phase; allowed: --phases without +reuseN")
        return Handlers(self.handle, phased, self.block, None)


def lean_pieces(parts: RequestParts, workloads: Sequence[Workload]) -> tuple[Callable[[int], Kept], Callable[[Kept, int], object],
                                                                             Callable[[Kept], None]]:
    """The lean path's open, call and close: the C calls through ``capi``'s function objects, as lean_core makes them."""
    from wasmlab.host.callpaths.lean_core import LeanSlots

    engine_ptr = parts.engine.ptr()
    cache_get, compile_ = parts.modules.cache.get, parts.modules.compile
    slots = {i: LeanSlots(w) for i, w in enumerate(workloads)}
    setup, retry, pre = parts.store.raw(), parts.waiting.retry, parts.pre
    extern = capi.extern_t()
    extern_ref, func_ref = ctypes.byref(extern), ctypes.byref(extern, capi.EXTERN_OF_OFFSET)
    trap = capi.trap_slot()
    trap_ref = ctypes.byref(trap)
    no_imports = ctypes.c_size_t(0)

    def open_(index: int) -> Kept:
        s = slots[index]
        compiled = cache_get(s.key, compile_, workloads[index])
        store = capi.store_new(engine_ptr, None, None)
        context = capi.store_context(store)
        instance = capi.instance_t()
        instance_ref = ctypes.byref(instance)

        def attempt() -> None:
            err = (capi.instance_pre_instantiate(compiled.pre_ptr, context, instance_ref, trap_ref) if pre else
                   capi.instance_new(context, compiled.module_ptr, None, no_imports, instance_ref, trap_ref))
            if err or trap:
                capi.raise_failure(err, trap)
        try:
            if setup is not None:
                setup(store, context)
            try:
                attempt()
            except wasmtime.WasmtimeError as exc:
                retry(attempt, exc)
        except BaseException:
            capi.store_delete(store)
            raise
        return Kept((store, context), instance)

    def call(kept: Kept, index: int) -> object:
        s = slots[index]
        context = kept.store[1]
        if not capi.instance_export_get(context, ctypes.byref(kept.instance), s.name, s.name_len, extern_ref):
            raise ConfigError(f"workload {s.workload_name!r}: export {s.name.decode()!r} not found")
        words = s.words64
        for i, value in s.arg_words:
            words[i] = value
        err = capi.func_call_unchecked(context, func_ref, s.raw, s.nraw, trap_ref)
        if err or trap:
            capi.raise_failure(err, trap)
        return s.result_words[0] if s.has_result else None

    def close(kept: Kept) -> None:
        capi.store_delete(kept.store[0])
    return open_, call, close


def api_pieces(parts: RequestParts, workloads: Sequence[Workload]) -> tuple[Callable[[int], Kept], Callable[[Kept, int], object],
                                                                            Callable[[Kept], None]]:
    """The api path's open, call and close: ``wasmtime.Store``, ``Instance`` (or ``InstancePre.instantiate``) and
    ``Func.__call__``, as api_core makes them."""
    get, engine, retry, pre = parts.modules.get, parts.engine, parts.waiting.retry, parts.pre
    new_store = parts.store.api_store

    def open_(index: int) -> Kept:
        w = workloads[index]
        compiled = get(w)
        store = new_store(engine, w, None)

        def attempt() -> wasmtime.Instance:
            if pre and compiled.pre is not None:
                return compiled.pre.instantiate(store)
            return wasmtime.Instance(store, compiled.core, ())
        try:
            try:
                instance = attempt()
            except wasmtime.WasmtimeError as exc:
                box: list[wasmtime.Instance] = []
                retry(lambda: box.append(attempt()), exc)
                instance = box[0]
        except BaseException:
            store.close()
            raise
        return Kept(store, instance)

    def call(kept: Kept, index: int) -> object:
        w = workloads[index]
        func = kept.instance.exports(kept.store)[w.entry]
        if not isinstance(func, wasmtime.Func):
            raise ConfigError(f"workload {w.name!r}: export {w.entry!r} is not a function")
        return func(kept.store, *w.args)

    def close(kept: Kept) -> None:
        kept.store.close()
    return open_, call, close


PIECES = {"lean": lean_pieces, "api": api_pieces}


def bind(path: str, parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for ``workloads`` reusing instances as ``parts.reuse`` says, on Python path ``path`` (lean or api); the
    workloads checked by :func:`check_reusable` and ``parts.ledger`` made by the caller."""
    if path not in PIECES:
        raise ConfigError(f"call path {path!r} does not serve instance reuse (+reuseN); allowed: lean, api, native")
    return ReuseServer(parts, workloads, *PIECES[path](parts, workloads)).handlers()
