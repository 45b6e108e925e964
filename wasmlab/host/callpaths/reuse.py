"""Instance reuse (a variant's ``+reuseN``) on the lean and api paths, for core modules, recipes, WASI commands and
components (a component's pieces: :mod:`.reuse_component_pieces`).

An instance, with its store, serves N requests of its workload in a row; the N-th request drops it in its own time
(as a fresh-instance request drops its store), and the next request makes a fresh one.  A request that fails drops
its instance too (a trap can leave it half-updated).  No instance outlives a block: a block server drops what is
left when it starts and when it ends, outside every request's time, so each block's first request of a workload is
a fresh instance and no pool slot is held while other variants run.  ``handle`` (warm-up, one-off requests) serves
one request and drops its instance, as the native path's one-request blocks do.

The isolation price is measured, not refused: a request on a fresh instance is checked as the lab checks every
request, and its result (a recipe's :class:`~wasmlab.host.recipes.Outcome`: its exit, last result and every read of
memory; a component's result, compared as the plain value its WAVE text encodes) becomes the workload's *fresh
reference*; a reused request's result is compared with it, and a difference (or a failure where the fresh instance
succeeded) is counted as carried over; a WASI command's (core or component) output and written files are compared the
same way, after the request's time (:mod:`.reuse_outputs`).  The
:class:`ReuseLedger` holds, per timed request, whether it ran on a fresh instance and whether it carried state over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.host.callpaths.base import Handlers, RequestParts, learned_or_mismatch
from wasmlab.host.callpaths.reuse_component_pieces import KeptComponent, api_component_pieces, lean_component_pieces
from wasmlab.host.callpaths.reuse_outputs import ReusedOutputs
from wasmlab.host.callpaths.reuse_pieces import Kept, Pieces, api_pieces, lean_pieces
from wasmlab.host.outcomes import REQUEST_FAILURES
from wasmlab.host.recipes import Outcome, checker
from wasmlab.host.store import WasiIO
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


def refusal(workload: Workload, native: bool = False) -> str | None:
    """Why instance reuse is not served for ``workload`` here (one line), or ``None``.  Every kind reuse serves (core
    modules, recipes, WASI commands, modules importing host functions; components calling one export, component commands
    among them) is served on every path, the native one (``native``) included, so the answer no longer depends on it."""
    if workload.component and workload.before:
        return (f"workload {workload.name!r} is a component making several calls per request (a recipe's invoke steps: only "
                f"the entry's result would be compared); instance reuse (+reuseN) serves components calling one export "
                f"(allowed: +reuse1 for it)")
    if workload.component:
        return None
    if workload.driver:
        return (f"workload {workload.name!r} is library-style (driven through wasmtime-py's objects); instance reuse "
                f"(+reuseN) is served for core modules, recipes, WASI commands and components calling one export "
                f"(allowed: +reuse1 for it, or such a module)")
    return None


def check_reusable(label: str, workloads: Sequence[Workload], native: bool = False) -> None:
    """Every workload is one reuse serves (on the native path when ``native``), or a one-line ConfigError naming the variant."""
    for w in workloads:
        reason = refusal(w, native)
        if reason:
            raise ConfigError(f"variant {label!r}: {reason}")


class ReuseServer:
    """Serves requests on kept instances through a path's three pieces: ``open(index)`` -> a new :class:`Kept` (store and
    instance), ``call(kept, index)`` -> the result, ``close(kept)`` drops its store."""

    def __init__(self, parts: RequestParts, workloads: Sequence[Workload], pieces: Pieces, outputs: Mapping[int, ReusedOutputs]) -> None:
        self.parts, self.outputs = parts, outputs
        self.reuse = parts.reuse
        self.ledger: ReuseLedger = parts.ledger
        self.workloads = list(workloads)
        self.open, self.call, self.close = pieces
        self.live: dict[int, Kept] = {}
        self.last: Kept | None = None  # the instance of the last request (its output is checked after it)
        self.expected = {i: w.expectation.compared_with() for i, w in enumerate(workloads)}
        # A recipe's fresh request is checked as every recipe request is (its exit, result and reads); its Outcome, reads
        # and all, is the reference a reused request's is compared with.
        self.recipe_checks = {i: checker(w) for i, w in enumerate(workloads) if w.steps}
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
        self.last = kept
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
        recipe_check = self.recipe_checks.get(index)
        if recipe_check is not None:
            assert isinstance(result, Outcome)
            recipe_check(result)
            self.reference.setdefault(index, result)
            return result
        expected = self.expected[index]
        if expected is not None and result != expected:
            self.expected[index] = learned_or_mismatch(self.workloads[index].name, result, expected,
                                                       self.workloads[index].expectation.same_as_first)
        self.reference.setdefault(index, result)
        return result

    def check_output(self, index: int) -> None:
        """A WASI command's output, after its request's time: checked or compared (see :mod:`.reuse_outputs`)."""
        output = self.outputs.get(index)
        if output is not None and self.last is not None and output.check(self.last.offsets, self.fresh):
            self.carried = True

    def handle(self, index: int) -> object:
        """One request on its own, its output checked, its instance dropped after it (warm-up, one-off requests)."""
        try:
            result = self.serve(index)
            self.check_output(index)
            return result
        finally:
            self.drop(index)

    def block(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None = None) -> int:
        """Serve and time ``indices`` as the harness's timed loop does, recording each request's instance in the ledger;
        what is kept is dropped before and after, outside the requests' time and the block's wall time, and so are WASI
        outputs' checks (counted in ``parts.output_checks``, as :func:`~.base.checked_block` counts them)."""
        clock, serve, ledger, outputs = time.perf_counter_ns, self.serve, self.ledger, self.outputs
        self.drop_all()
        checking = 0
        start = clock()
        try:
            for i, index in enumerate(indices):
                t0 = clock()
                try:
                    serve(index)
                except REQUEST_FAILURES as exc:
                    out[i] = clock() - t0
                    ledger.fresh.append(self.fresh)
                    ledger.carried.append(self.carried)
                    if failures is None:
                        raise
                    failures.append((i, exc))
                    continue
                t1 = clock()
                out[i] = t1 - t0
                if index in outputs:
                    try:
                        self.check_output(index)
                    finally:
                        checking += clock() - t1
                        self.parts.output_checks += 1
                ledger.fresh.append(self.fresh)
                ledger.carried.append(self.carried)
            return clock() - start - checking
        finally:
            self.parts.output_check_ns += checking
            self.drop_all()

    def handlers(self) -> Handlers:
        def phased(index: int, stamps: list[int]) -> object:
            raise ConfigError("instance reuse (+reuseN) is not timed phase by phase; allowed: --phases without +reuseN")
        return Handlers(self.handle, phased, self.block, None)


PIECES = {"lean": (lean_pieces, lean_component_pieces), "api": (api_pieces, api_component_pieces)}  # a path's open, call
# and close of a kept instance: (core modules, components)


def by_kind(workloads: Sequence[Workload], core: Pieces | None, component: Pieces | None) -> Pieces:
    """One set of pieces for a runtime serving core modules and components together: each request's by its workload's
    kind (a kept component instance closed as one)."""
    if core is None or component is None:
        pieces = core or component
        assert pieces is not None
        return pieces
    is_component = [w.component for w in workloads]

    def open_(index: int) -> Kept:
        return (component if is_component[index] else core)[0](index)

    def call(kept: Kept, index: int) -> object:
        return (component if is_component[index] else core)[1](kept, index)

    def close(kept: Kept) -> None:
        (component if isinstance(kept, KeptComponent) else core)[2](kept)
    return open_, call, close


def bind(path: str, parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for ``workloads`` reusing instances as ``parts.reuse`` says, on Python path ``path`` (lean or api); the
    workloads checked by :func:`check_reusable` and ``parts.ledger`` made by the caller."""
    if path not in PIECES:
        raise ConfigError(f"call path {path!r} does not serve instance reuse (+reuseN); allowed: lean, api, native")
    # Outputs compared: a core guest's that the lab captures, a component's when it is a command (its WASI context's files).
    ios = {i: WasiIO(w) for i, w in enumerate(workloads) if w.captures_output and (w.command or not w.component)}
    parts.cleanup.extend(io.close for io in ios.values())
    outputs = {i: ReusedOutputs(io) for i, io in ios.items()}
    core_pieces, component_pieces = PIECES[path]
    kinds = {w.component for w in workloads}
    pieces = by_kind(workloads, core_pieces(parts, workloads, ios) if False in kinds else None,
                     component_pieces(parts, workloads, ios) if True in kinds else None)
    return ReuseServer(parts, workloads, pieces, outputs).handlers()
