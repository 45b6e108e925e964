"""The lean call path for components: ``wasmtime_component_func_call`` with argument trees built once.

Each distinct request's ``wasmtime_component_val_t`` trees are built once
(:class:`~wasmlab.host.component_values.PreparedArgs`) and borrowed by every call; only the result
is read back per call, after the store is dropped (it is the caller's copy).  A request: get the
compiled component, new store (with a WASI context for guests importing WASI preview 2: without
one wasmtime aborts the process at the first WASI call), instantiate through the component
linker, look the function up by its export index (looked up once per component; a function inside an exported
interface, ``INTERFACE#FUNCTION``, through the interface's index as its parent: ``Compiled.export_index``), call, drop, check.
A request of several calls (a recipe's ``invoke`` steps) makes its earlier calls in the same instance, in order,
before the entry's, each with its own prebuilt arguments and result slot, each result checked.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from wasmlab import capi
from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import Handlers, RequestParts, checked_block, checking, judge_command, learned_or_mismatch
from wasmlab.host.component_values import PreparedArgs, ResultSlot
from wasmlab.host.modules import Compiled
from wasmlab.host.store import WasiIO
from wasmlab.workloads.expectation import CallExpectation
from wasmlab.workloads.model import ComponentCall, Workload


class ComponentSlots:
    """Per-workload values for the lean component path: the request's argument trees, built
    once and borrowed by every call, and a zeroed slot for the result."""

    def __init__(self, workload: Workload) -> None:
        if workload.signature is None:
            raise ConfigError(f"workload {workload.name!r} is a component without a signature")
        self.key = workload.sha256
        self.entry = workload.entry
        self.wasi = workload.wasi
        self.args = PreparedArgs(workload.signature, workload.args)
        self.result = ResultSlot(workload.signature.result)
        expectation = workload.expectation
        self.expected = expectation.compared_with()
        self.checked = self.expected is not None
        self.first_result = expectation.same_as_first
        self.workload_name = workload.name
        self.before = [EarlierCall(call, expected) for call, expected in zip(workload.before, expectation.before, strict=True)]
        # A component command: its WASI context (argv, environment, stdio files, directories) per store, its outputs
        # and exit status checked after each request; the exit trap of its last request, if it exited.
        self.expectation = expectation
        self.io = WasiIO(workload) if workload.command else None
        self.exited: wasmtime.ExitTrap | None = None
        # Filled by phased requests only: a stamp before the first call and after each (bound by ``bind``).
        self.step_stamps: list[int] | None = None


class EarlierCall:
    """A call a request makes before its entry's, with its arguments built once and its own result slot."""

    def __init__(self, call: ComponentCall, expectation: CallExpectation) -> None:
        self.entry = call.entry
        self.args = PreparedArgs(call.signature, call.args)
        self.result = ResultSlot(call.signature.result)
        self.returns = expectation.returns
        self.first_result = expectation.same_as_first
        self.expected: object = expectation.target()
        self.name = expectation.name

    def check(self) -> None:
        """The call's result (the caller's copy, read after the store is gone) against what it must return."""
        result = self.result.take()
        if self.returns and result != self.expected:
            self.expected = learned_or_mismatch(self.name, result, self.expected, self.first_result)


def call(func_ref: Any, context: Any, c: ComponentSlots | EarlierCall, trap: Any) -> None:
    """One ``wasmtime_component_func_call`` with ``c``'s prebuilt arguments into its result slot."""
    args, result = c.args, c.result
    err = capi.component_func_call(func_ref, context, args.array, args.size, result.ref, result.count)
    if err:
        try:
            capi.raise_failure(err, trap)
        except wasmtime.ExitTrap as exc:
            if not isinstance(c, ComponentSlots) or c.io is None:
                raise
            c.exited = exc  # a command's wasi:cli/exit: judged once the store is gone


class Reused:
    """The C values every request of one runtime reuses: the instance, the entry's function, an earlier call's
    function (so that the entry's stays looked up) and the trap slot."""

    def __init__(self) -> None:
        self.instance = capi.component_instance_t()
        self.instance_ref = ctypes.byref(self.instance)
        self.func = capi.component_func_t()
        self.func_ref = ctypes.byref(self.func)
        self.earlier = capi.component_func_t()
        self.earlier_ref = ctypes.byref(self.earlier)
        self.trap = capi.trap_slot()


def refuse(parts: RequestParts) -> None:
    """One line when the runtime cannot serve components on this path."""
    if parts.pre:
        raise ConfigError(f"variant {parts.label!r} pre-instantiates, but wasmtime-py 50 has no InstancePre for components; "
                          f"allowed: a variant without 'pre'")
    if parts.linkers.component is None:
        raise ConfigError("components need a component linker")


def store_steps(parts: RequestParts, reused: Reused) -> tuple[Callable[[ComponentSlots], tuple[capi.Ptr, capi.Ptr]],
                                                              Callable[[Compiled, capi.Ptr], None]]:
    """A request's new store (limits, and a WASI context for a guest importing WASI) and its instantiation through the
    component linker (retried under the ``wait`` policy)."""
    assert parts.linkers.component is not None  # refused before
    engine_ptr = parts.engine.ptr()
    retry = parts.waiting.retry
    linker_ptr = parts.linkers.component.ptr()
    setup = parts.store.raw()
    instance_ref, trap = reused.instance_ref, reused.trap

    def try_instantiate(compiled: Compiled, context: capi.Ptr) -> None:
        err = capi.component_linker_instantiate(linker_ptr, context, compiled.module_ptr, instance_ref)
        if err:
            capi.raise_failure(err, trap)

    def instantiate(compiled: Compiled, context: capi.Ptr) -> None:
        try:
            try_instantiate(compiled, context)
        except wasmtime.WasmtimeError as exc:
            retry(lambda: try_instantiate(compiled, context), exc)

    def new_store(c: ComponentSlots) -> tuple[capi.Ptr, capi.Ptr]:
        store = capi.store_new(engine_ptr, None, None)
        context = capi.store_context(store)
        try:
            if setup is not None:
                setup(store, context)
            if c.wasi:
                err = capi.context_set_wasi(context, c.io.config()._consume() if c.io is not None else capi.wasi_config_new())
                if err:
                    capi.raise_failure(err, trap)
        except BaseException:
            capi.store_delete(store)
            raise
        return store, context

    return new_store, instantiate


def get_func(instance_ref: Any, context: capi.Ptr, compiled: Compiled, workload_name: str, entry: str, into: Any) -> None:
    """The instance's export ``entry`` (by its export index) into ``into``, or one line saying it is not a function."""
    if not capi.component_instance_get_func(instance_ref, context, compiled.export_index(entry), into):
        raise ConfigError(f"workload {workload_name!r}: component export {entry!r} is not a function")


def call_steps(reused: Reused) -> tuple[Callable[[Compiled, capi.Ptr, ComponentSlots], None],
                                        Callable[[Compiled, capi.Ptr, ComponentSlots, list[int] | None], None],
                                        Callable[[ComponentSlots], object]]:
    """Looking the entry up by its export index, the calls before the entry's, and the check of the results."""
    clock = time.perf_counter_ns
    instance_ref, func_ref, earlier_ref, trap = reused.instance_ref, reused.func_ref, reused.earlier_ref, reused.trap

    def lookup(compiled: Compiled, context: capi.Ptr, c: ComponentSlots) -> None:
        get_func(instance_ref, context, compiled, c.workload_name, c.entry, func_ref)

    def call_earlier(compiled: Compiled, context: capi.Ptr, c: ComponentSlots, stamps: list[int] | None) -> None:
        """The calls before the entry's, in order, each looked up by its export index (a stamp after each when phased)."""
        for b in c.before:
            get_func(instance_ref, context, compiled, c.workload_name, b.entry, earlier_ref)
            call(earlier_ref, context, b, trap)
            if stamps is not None:
                stamps.append(clock())

    def checked(c: ComponentSlots) -> object:
        # The results are the caller's copies, independent of the store: read after the store is gone.
        for b in c.before:
            b.check()
        result = c.result.take()
        if c.io is not None:  # a command: its exit status (its outputs are checked apart: ``checks`` in ``bind``)
            exited, c.exited = c.exited, None
            judge_command(c.workload_name, c.expectation, result, exited)
        if c.checked and result != c.expected:
            c.expected = learned_or_mismatch(c.workload_name, result, c.expected, c.first_result)
        return result

    return lookup, call_earlier, checked


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for the components among ``workloads``."""
    refuse(parts)
    clock = time.perf_counter_ns
    cache_get, compile_ = parts.modules.cache.get, parts.modules.compile
    workloads = list(workloads)
    slots = {i: ComponentSlots(w) for i, w in enumerate(workloads) if w.component}
    parts.cleanup.extend(c.io.close for c in slots.values() if c.io is not None)
    for i, c in slots.items():
        if c.before:
            c.step_stamps = parts.step_stamps.setdefault(i, [])
    reused = Reused()
    func_ref, trap = reused.func_ref, reused.trap
    new_store, instantiate = store_steps(parts, reused)
    lookup, call_earlier, checked = call_steps(reused)

    def serve(index: int) -> object:
        c = slots[index]
        compiled = cache_get(c.key, compile_, workloads[index])
        store, context = new_store(c)
        try:
            instantiate(compiled, context)
            lookup(compiled, context, c)
            if c.before:
                call_earlier(compiled, context, c, None)
            call(func_ref, context, c, trap)
        finally:
            capi.store_delete(store)
        return checked(c)

    def handle_phased(index: int, stamps: list[int]) -> object:
        c = slots[index]
        stamps[0] = clock()
        compiled = cache_get(c.key, compile_, workloads[index])
        stamps[1] = clock()
        store, context = new_store(c)
        stamps[2] = clock()
        try:
            instantiate(compiled, context)
            stamps[3] = clock()
            lookup(compiled, context, c)
            stamps[4] = clock()
            steps = c.step_stamps
            if steps is not None:  # a request of several calls: each is a step of the call phase
                steps.clear()
                steps.append(clock())
                call_earlier(compiled, context, c, steps)
            call(func_ref, context, c, trap)
            stamps[5] = clock()
            if steps is not None:
                steps.append(stamps[5])
        finally:
            capi.store_delete(store)
        stamps[6] = clock()
        result = checked(c)
        if c.io is not None:
            c.io.check()
        stamps[7] = clock()
        return result

    # A command's outputs: checked after each request, outside its recorded time in the block server.
    checks = {i: c.io.check for i, c in slots.items() if c.io is not None}
    return Handlers(checking(serve, checks), handle_phased, checked_block(serve, checks, parts), None, serve, checks)
