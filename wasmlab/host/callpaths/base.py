"""What every call-path strategy shares: the phases a phased request stamps, the handler types, the
parts a strategy binds (:class:`RequestParts`) and the result-mismatch error.  What a request is checked against is
the workload's :class:`~wasmlab.workloads.expectation.Expectation`; learning the first request's result is here."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import wasmtime

from wasmlab.errors import CommandExit, ResultMismatch
from wasmlab.host.linking import Linkers
from wasmlab.host.modules import ModuleSource
from wasmlab.host.outcomes import REQUEST_FAILURES
from wasmlab.host.store import StoreSetup
from wasmlab.host.waiting import SlotWait
from wasmlab.workloads.component_command import exit_status
from wasmlab.workloads.expectation import Expectation
from wasmlab.workloads.expectation import FirstResult as FirstResult  # re-exported: the paths learn into it here
from wasmlab.workloads.model import Workload

# Timestamps a phased request records: start, then the end of each phase.
PHASES = ("get_module", "new_store", "instantiate", "export_lookup", "call", "drop_store", "read_output")

Handler = Callable[[int], object]
# A workload's output check: raises ResultMismatch unless the request that just ended left what it must (WasiIO.check).
OutputCheck = Callable[[], None]
PhasedHandler = Callable[[int, list[int]], object]
# Serves a whole block and times each request itself: (indices, ns out, failures out) -> the block's wall ns.
BlockServer = Callable[..., int]
# Serves a whole block in phased mode: (indices, stamps out, len(PHASES) + 1 per request) -> (which requests succeeded,
# each request's recipe step stamps: start, then after each step; empty without steps).
PhasedBlockServer = Callable[[Sequence[int], Any], tuple[Any, list[list[int]]]]


class Handlers(NamedTuple):
    """What a strategy binds: the request handler, its phased twin, and, for a path that times its own
    requests (native: the loop is in C), a block server; ``None`` means the harness's timed loop around ``handle``."""

    handle: Handler
    handle_phased: PhasedHandler
    block: BlockServer | None = None
    block_phased: PhasedBlockServer | None = None
    # A Python path's request without its output check, and the output checks by workload index (``checked_block``):
    # what a runtime serving core and component workloads together builds its block server from.
    serve: Handler | None = None
    checks: Mapping[int, OutputCheck] | None = None


@dataclass
class RequestParts:
    """The named pieces a strategy binds its handlers to, shared by every call path of one runtime."""

    engine: wasmtime.Engine
    modules: ModuleSource
    store: StoreSetup
    waiting: SlotWait
    linkers: Linkers
    pre: bool = False
    label: str = ""  # the variant's name, for messages
    # What a strategy allocated per workload (WASI output folders) and must release when the runtime closes.
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    # Per workload index with recipe steps: the stamps of the last phased request's steps (start, then after each
    # step that ran), filled by the phased handlers only; read by the harness after each phased request.
    step_stamps: dict[int, list[int]] = field(default_factory=dict)
    # The lab's checks of WASI requests' outputs made by the block servers, outside each request's recorded time: how many,
    # and their ns in all (read by the harness around each timed block, so the check's cost is a figure of its own).
    output_checks: int = 0
    output_check_ns: int = 0
    # Instance reuse (a variant's +reuseN): how many requests in a row one instance serves, and, when above 1, the
    # ledger the strategy records each timed request's instance in (a reuse.ReuseLedger: fresh, carried over).
    reuse: int = 1
    ledger: Any = None


class Binder(Protocol):
    """Binds ``workloads`` once and returns the request handler and its phased twin for the indices of
    ``workloads`` whose kind the strategy serves."""

    def __call__(self, parts: RequestParts, workloads: Sequence[Workload]) -> Handlers: ...


def mismatch(name: str, got: object, expected: object) -> ResultMismatch:
    return ResultMismatch(f"workload {name!r} returned {got!r}, expected {expected!r}: the request did not do its work")


def learned_or_mismatch(name: str, result: object, expected: object, first_result: bool) -> object:
    """A result that differs from ``expected``: the new expectation when it was a :class:`FirstResult`, else the
    request's failure (named as a change between requests when the expectation is the first request's result)."""
    if isinstance(expected, FirstResult):
        return result
    if first_result:
        raise ResultMismatch(f"workload {name!r} returned {result!r}, but its first request returned {expected!r}: the result "
                             f"changed between requests (give --expect to check a value, or --no-check to measure unchecked)")
    raise mismatch(name, result, expected)


def judge_command(name: str, expectation: Expectation, result: object, exited: wasmtime.ExitTrap | None) -> None:
    """A component command's end on a Python path, judged as a core command's (the C loop's component_command.c does the
    same): ``exited`` (wasi:cli/exit's trap) with an unexpected status raised as it is; else ``run``'s ``result`` read as
    a status (ok 0, err 1): err where another is expected a :class:`~wasmlab.errors.CommandExit`, ok where an exit is
    expected a mismatch."""
    if exited is not None:
        if not expectation.exit_ok(exited.code):
            raise exited
        return
    status = exit_status(result)
    if expectation.exit_ok(status):
        return
    if status == 0:
        raise mismatch(name, "exit 0", f"exit {expectation.exit}")
    raise CommandExit(status, f"workload {name!r}: run returned err (exit status {status}), expected exit {expectation.exit}")


def checking(serve: Handler, checks: Mapping[int, OutputCheck]) -> Handler:
    """``serve`` followed by the workload's output check, for callers that time nothing (warm-up, tests, the explorer);
    ``serve`` itself when no workload's output is checked."""
    if not checks:
        return serve

    def handle(index: int) -> object:
        result = serve(index)
        check = checks.get(index)
        if check is not None:
            check()
        return result
    return handle


def checked_block(serve: Handler, checks: Mapping[int, OutputCheck], parts: RequestParts) -> BlockServer | None:
    """A block server for a Python path whose workloads' outputs the lab checks (WASI stdout, stderr, written files), or
    ``None`` when none is (the harness's timed loop then times ``handle``).  Each request is timed as the harness's timed
    loop times it, but without its output check: reading the captured output back and comparing it with the expectation
    is the lab's work, not the host's (the guest's writes are in its call).  The check runs right after the request's
    time ends, on every request, its ns counted in ``parts`` and left out of the block's wall ns, so throughput
    describes the requests alone."""
    if not checks:
        return None
    clock = time.perf_counter_ns

    def block(indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None = None) -> int:
        i = checked = checking_ns = 0
        start = clock()
        try:
            for index in indices:
                t0 = clock()
                try:
                    serve(index)
                except REQUEST_FAILURES as exc:
                    out[i] = clock() - t0
                    if failures is None:
                        raise
                    failures.append((i, exc))
                    i += 1
                    continue
                t1 = clock()
                out[i] = t1 - t0
                i += 1
                check = checks.get(index)
                if check is not None:
                    try:
                        check()
                    finally:
                        checking_ns += clock() - t1
                        checked += 1
        finally:
            parts.output_checks += checked
            parts.output_check_ns += checking_ns
        return clock() - start - checking_ns
    return block


def api_handlers(workloads: Sequence[Workload], get: Callable[[Workload], Any], new_store: Callable[[int, Workload], Any],
                 instantiate: Callable[[Any, Any, Workload], Any], lookup: Callable[[Any, Any, Workload], Any],
                 call: Callable[..., object], check: Callable[[int, Workload, object], None], parts: RequestParts,
                 checks: Mapping[int, OutputCheck], step_stamps: dict[int, list[int]] | None = None) -> Handlers:
    """The request handlers of a path built on wasmtime-py's objects, from its pieces: a store per request
    (closed whatever happens), instantiate, look the export up, call, check after the store is gone.
    ``checks`` are the workloads' output checks: made after ``handle``'s request, in the phased twin's read_output phase,
    and outside each request's time in the block server (:func:`checked_block`).
    The phased twin runs the same pieces with a stamp after each, and hands ``call`` the step stamps of a
    workload in ``step_stamps`` (a recipe's: ``call(store, instance, target, index, stamps)``)."""
    clock = time.perf_counter_ns
    steps = step_stamps or {}

    def serve(index: int) -> object:
        w = workloads[index]
        compiled = get(w)
        store = new_store(index, w)
        try:
            instance = instantiate(store, compiled, w)
            result = call(store, instance, lookup(store, instance, w), index)
        finally:
            store.close()
        check(index, w, result)
        return result

    def handle_phased(index: int, stamps: list[int]) -> object:
        w = workloads[index]
        stamps[0] = clock()
        compiled = get(w)
        stamps[1] = clock()
        store = new_store(index, w)
        stamps[2] = clock()
        try:
            instance = instantiate(store, compiled, w)
            stamps[3] = clock()
            target = lookup(store, instance, w)
            stamps[4] = clock()
            result = call(store, instance, target, index, steps[index]) if index in steps else call(store, instance, target, index)
            stamps[5] = clock()
        finally:
            store.close()
        stamps[6] = clock()
        check(index, w, result)
        output = checks.get(index)
        if output is not None:
            output()
        stamps[7] = clock()
        return result

    return Handlers(checking(serve, checks), handle_phased, checked_block(serve, checks, parts), None, serve, checks)
