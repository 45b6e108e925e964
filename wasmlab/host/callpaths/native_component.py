"""The native call path for components (issue 25): the whole component request in C (``wasmlab/native/component_loop.c``).

Per request, as the lean component path does it: the compiled component (compiled per request, or from the C driver's
cache keyed by SHA-256, its export index looked up once), a new store with the per-store limits, a new instance through
the driver's component linker, the export called with argument trees built once, the result compared in C on every
request with the expectation tree (the workload's expected value, lowered once through its signature, or the first
request's result), post_return, the result freed, the store deleted.  The engine (and its pools) is the variant's, as
on the lean path.  The same C driver and block loop as core modules serve it (:class:`~wasmlab.host.callpaths.native.
NativeServer`), so its records and timings are the same words.

An entry named ``INTERFACE#FUNCTION`` (the full name ``ComponentTypes.resolve`` gives, ``OUTER#INNER#FUNCTION`` for an
interface inside one) is found inside the exported interface, each interface's export index the next name's parent.
A component importing ``wasi:*`` gets WASI p2 on the linker and a default WASI context on each store; a component
command (:mod:`wasmlab.workloads.component_command`) gets a core command's context (argv, environment, stdio files,
directories) and is judged as one, in C: its exit status, and its outputs against the first request's (verified here).
A recipe's stubs of component imports are host functions on the driver's linker (``wasmlab/native/component_stubs.c``),
each returning its constant, lowered here once.
A request of several calls (a recipe's ``invoke`` steps, ``Workload.before``) makes them in order in the
same instance, each with its own prebuilt arguments and its result compared in C; a mismatch names the call and the
request, and ``--phases`` stamps each call as a step.  Refused in one line: ``pre`` (the component C API has no
InstancePre).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence

import numpy as np

from wasmlab import _native, capi
from wasmlab.errors import ConfigError, NativeFailure, ResultMismatch
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.base import FirstResult, Handlers, RequestParts, mismatch
from wasmlab.host.callpaths.native import NativeServer, WasiFiles, check_variant, library, make_driver
from wasmlab.host.component_stubs import merged
from wasmlab.workloads.model import ComponentStub, Workload
from wasmlab.workloads.recipe.component_imports import unsatisfied_import
from wasmlab.workloads.signature import Signature


def lowered(shape: object, value: object) -> boundary.ComponentValue:
    """``value`` lowered through the workload's ``shape`` (as the lean path lowers it) and read as a boundary tree."""
    slot = capi.component_val_t()
    shape.lower(value, slot)  # type: ignore[attr-defined]
    try:
        return boundary.value_tree(slot)
    finally:
        capi.component_val_delete(ctypes.byref(slot))


def refusal(workload: Workload) -> str | None:
    """Why this slice of the native path cannot serve component ``workload`` (one line), or ``None``."""
    if workload.signature is None:
        return f"workload {workload.name!r} is a component without a signature"
    return None


def call_plan(entry: str, signature: Signature, args: Sequence[object], target: object) -> boundary.ComponentCallPlan:
    """One call as C makes it: its arguments lowered through ``signature``, its result checked against ``target`` (what
    the lean path compares it with: a value, a :class:`FirstResult`, or ``None`` for no check)."""
    lowered_args = tuple(lowered(shape, value) for (_, shape), value in zip(signature.params, args, strict=True))
    returns = signature.result is not None
    if target is None or not returns:
        check, expected = _native.CHECK_NONE, None
    elif isinstance(target, FirstResult):
        check, expected = _native.CHECK_FIRST, None
    else:
        check, expected = _native.CHECK_EXPECTED, lowered(signature.result, target)
    return boundary.ComponentCallPlan(entry.encode(), lowered_args, returns, check, expected)


def stub_plans(stubs: Sequence[ComponentStub]) -> tuple[boundary.ComponentStubPlan, ...]:
    """The stubs of component imports (merged, in order: :func:`wasmlab.host.component_stubs.merged`) as C defines them,
    each constant lowered through its import's result shape."""
    return tuple(boundary.ComponentStubPlan(tuple(n.encode() for n in s.instance), s.function.encode(),
                                            lowered(s.signature.result, s.value) if s.signature.result is not None else None)
                 for s in stubs)


def plan(workload: Workload, files: WasiFiles | None = None,
         stubs: tuple[boundary.ComponentStubPlan, ...] = ()) -> boundary.ComponentPlan:
    """``workload`` as C serves it: its earlier calls (``Workload.before``) then its entry's, each checked as the lean
    path checks it (``Workload.expectation``: ``before`` per earlier call, ``compared_with()`` for the entry's); ``stubs``
    the runtime's stubs of component imports (:func:`stub_plans`)."""
    expectation = workload.expectation
    calls = [call_plan(c.entry, c.signature, c.args, e.target()) for c, e in zip(workload.before, expectation.before, strict=True)]
    calls.append(call_plan(workload.entry, workload.signature, workload.args, expectation.compared_with()))
    return boundary.ComponentPlan(workload.wasm, bytes.fromhex(workload.sha256), tuple(calls), wasi=bool(workload.wasi),
                                  command=files.spec(workload) if files is not None else None,
                                  exit_status=workload.expectation.exit or 0, stubs=stubs)


def differing_call(workload: Workload, call: int) -> tuple[str, Signature, object]:
    """The name, signature and expected value of call ``call`` (0-based) of a request of ``workload``."""
    if call < len(workload.before):
        earlier = workload.before[call]
        return workload.expectation.before[call].name, earlier.signature, earlier.expected
    return workload.name, workload.signature, workload.expected


class ComponentServer(NativeServer):
    """One C driver serving the components of one runtime: the core server's block loop and records, with component
    plans added instead of request plans."""

    def __init__(self, parts: RequestParts, workloads: list[Workload]) -> None:  # pylint: disable=super-init-not-called
        self.parts, self.workloads = parts, workloads
        self.driver = make_driver(parts, [], [])
        parts.cleanup.append(self.driver.close)
        # Component commands: one folder of stdio files per driver, the first request's outputs verified in Python
        # (NativeServer.run), every later one's compared with them in C.
        self.outputs = {i: WasiFiles(w) for i, w in enumerate(workloads) if w.command}
        parts.cleanup.extend(files.close for files in self.outputs.values())
        # A recipe's stubs of component imports: every workload's merged, defined once on the driver's linker.
        stubs = stub_plans(merged(workloads))
        try:
            self.served = {i: self.driver.add_component(plan(w, self.outputs.get(i), stubs))
                           for i, w in enumerate(workloads) if w.component}
        except RuntimeError as exc:  # the driver's component linker, or a stub on it, refused by wasmtime
            raise ConfigError(f"call path 'native': {exc}") from None
        # The result is checked in C; the handlers return none (lifting it into Python is the cost this path avoids).
        self.has_result = {i: False for i in self.served}
        self.unverified = {}
        # A request of several calls stamps each in phased mode (the first STEP_STAMPS - 1), as a recipe's steps.
        self.step_counts = {i: min(len(w.before) + 1, _native.STEP_STAMPS - 1) for i, w in enumerate(workloads)
                            if w.component and w.before}
        self.to_driver = np.full(len(workloads), -1, dtype=np.int32)
        for i, d in self.served.items():
            self.to_driver[i] = d
        self.lateness = []

    def failure(self, index: int, outcome: int, detail: int, memory: int, message: str) -> NativeFailure:
        w = self.workloads[index]
        if outcome == _native.OUT_MISMATCH:
            differing = self.driver.differing(self.served[index])
            if differing is None:
                raise ResultMismatch(f"workload {w.name!r}: {message}")
            address, call, request = differing
            name, signature, expected = differing_call(w, call)
            if signature.result is None:
                raise ResultMismatch(f"workload {w.name!r}: {message}")
            # Lifted only now, once, to name it: the checks compared trees in C.
            got = signature.result.lift(ctypes.cast(address, ctypes.POINTER(capi.component_val_t)).contents)
            where = f" (request {request}, call {call + 1} of {len(w.before) + 1})" if w.before else ""
            if expected is None or (w.check == "first-result" and call == len(w.before)):
                raise ResultMismatch(f"workload {name!r} returned {got!r}, which differs from its first request's result{where}: "
                                     f"the result changed between requests (give --expect to check a value, or --no-check)")
            raise ResultMismatch(f"{mismatch(name, got, expected)}{where}")
        if outcome == _native.OUT_NO_EXPORT:  # the message names the call (which of several, and its export)
            raise ConfigError(f"workload {w.name!r}: {message}" if w.before else f"workload {w.name!r}: component export {w.entry!r}: {message}")
        return super().failure(index, outcome, detail, memory, message)


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for the components among ``workloads``, served by one C driver on ``parts.engine``."""
    if parts.pre:
        raise ConfigError(f"call path 'native': variant {parts.label!r} pre-instantiates, but the component C API has no "
                          f"InstancePre for components; allowed: a variant without 'pre'")
    reason = library().component_refusal()
    if reason:
        raise ConfigError(f"call path 'native': {reason}")
    workloads = list(workloads)
    if any(w.component and w.wasi for w in workloads):
        try:
            library().enable_wasi()
        except LookupError as exc:
            raise ConfigError(f"call path 'native': {exc}") from None
    for w in workloads:
        reason = refusal(w) if w.component else None
        if reason:
            raise ConfigError(f"call path 'native': {reason}")
        # The lean and api paths find an unsatisfiable import at their first compilation; the C loop would fail each
        # request instead, so it is said here, once, in the same words.
        unsatisfied = unsatisfied_import(w) if w.component else None
        if unsatisfied:
            raise ConfigError(unsatisfied)
    check_variant(parts)
    try:
        server = ComponentServer(parts, workloads)
    except LookupError as exc:  # a library without the functions a recipe's stubs of component imports need
        raise ConfigError(f"call path 'native': {exc}") from None
    block = functools.partial(server.block)
    block.lateness = server.lateness  # type: ignore[attr-defined]
    return Handlers(server.handle, server.handle_phased, block, server.block_phased)
