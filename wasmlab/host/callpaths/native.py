"""The native call path for core modules: the whole request loop in C (``wasmlab/native/``), GIL released.

The same libwasmtime that wasmtime-py loaded (resolved by ``dlsym`` on its handle), the same engine (a pooling one for
pooled variants), and per request the same steps as the lean path: get the compiled module (compiled per request, or a
hit in the C driver's LRU keyed by the module's SHA-256), a new store with the per-store limits, instantiate (from an
``InstancePre`` for ``pre``), look the export up, call, check the result, delete the store. A block of requests is one
call into C, which times each request with ``CLOCK_MONOTONIC`` (no Python in the figure: lean minus native is the
binding's share).

Served: core modules whose export takes and returns i32/i64, recipes, and WASI guests: the C loop builds each request's
WASI context (argv, environment, stdin from a file, stdout and stderr to files, read-only preopened directories,
writable ones made fresh for every request: empty, or a copy of a host directory) and instantiates through the lab's
core linker, which also holds a recipe's host-function stubs. A WASI request's exit status must be the expected one, and
its stdout, stderr and written files equal the first request's byte for byte (compared in C after the request's recorded
time, the check's own ns counted apart; the first request's are checked against the expectations here, once per run,
uncounted). Stricter than the lean path: a guest whose output varies (a timestamp) passes there and fails here, naming
what differed. With ``+reuseN`` the kept instance serves N requests (``serve_reused`` in ``reuse_loop.c``). Refused,
each with one line: library-style modules, disk artifacts, and cache policies other than ``lru``.
"""

from __future__ import annotations

import functools
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wasmlab import _native, capi
from wasmlab.errors import CompileError, ConfigError, NativeFailure, ResultMismatch
from wasmlab.host import native_boundary as boundary
from wasmlab.host.callpaths.base import FirstResult, Handlers, RequestParts, mismatch
from wasmlab.host.outcomes import failure_kind
from wasmlab.host.output_check import OutputCheck
from wasmlab.host.recipes import Outcome, checker
from wasmlab.workloads.model import Workload
from wasmlab.workloads.recipe import Call, Expr, PtrArray, Read, Recipe, Write

NAME = "native"
_KINDS = {"i32": "i", "i64": "I"}
# Outcomes after which a variant cannot go on (the Python paths raise the lab's own error for them).
_STOPS = (_native.OUT_MISMATCH, _native.OUT_NO_EXPORT, _native.OUT_COMPILE_ERROR)
_LIBRARY: _native.Library | None = None
# Workloads whose export was checked against its declared signature (once per process: it does not depend on the engine).
_CHECKED: set[str] = set()


def library() -> _native.Library:
    """wasmtime-py's libwasmtime with the driver's functions resolved (once); a missing one is one line."""
    global _LIBRARY
    if _LIBRARY is None:
        boundary.check_version(_native)  # a stale build of the extension is one line, not a crash on a structure it cannot read
        try:
            _LIBRARY = _native.Library(handle=capi.library_handle())
        except LookupError as exc:
            raise ConfigError(f"call path 'native': {exc}") from None
    return _LIBRARY


def refusal(workload: Workload, linked: bool = True) -> str | None:
    """Why the native path cannot serve ``workload`` (one line), or ``None``.  ``linked`` False: a driver without the
    lab's linker (another release's library, whose WASI functions have other prototypes) serves no WASI or imports."""
    if workload.driver:
        return f"workload {workload.name!r} is library-style (driven through wasmtime-py's objects); allowed call path: api"
    if workload.wasi and not linked:
        return f"workload {workload.name!r} is a WASI guest; another release's library is driven without WASI; allowed: wasmtime-py's own"
    if workload.linked and not linked:
        return f"workload {workload.name!r} imports host functions; another release's library is driven without a linker"
    kinds = [*workload.params, *workload.results]
    if any(k not in _KINDS for k in kinds) or len(workload.results) > 1 or len(workload.params) >= 16:
        return (f"workload {workload.name!r}: export {workload.entry!r} takes {list(workload.params)} and returns {list(workload.results)}; "
                f"the native path passes up to 15 i32/i64 arguments and one i32/i64 result")
    return None


def read_names(recipe: Recipe) -> list[str]:
    """Each read step's name, in the order the driver numbers its reads: a name read twice is two reads (the later kept)."""
    return [s.name for s in recipe.steps if isinstance(s, Read)]


class _Flattener:
    """A recipe's steps flattened into the C driver's ops (see :func:`recipe_ops`)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.ops: list[boundary.Op] = []
        self.slots: dict[str, int] = {}
        self.temporaries = 0

    def temp(self) -> int:
        self.temporaries += 1
        return 255 - self.temporaries  # temporaries from the top, names from the bottom

    def call(self, export: str, args: list[boundary.Operand], dst: int, top: bool = False) -> str:
        params, results = self.recipe.signatures[export]
        result = _KINDS[results[0]] if results else ""
        self.ops.append(boundary.CallOp(export.encode(), tuple(args), "".join(_KINDS[p] for p in params), result, dst, top))
        return result

    def operand(self, expr: Expr) -> boundary.Operand:
        if expr.call is not None:
            slot = self.temp()
            self.call(expr.call.export, [self.argument(a) for a in expr.call.args], slot)
            return slot, expr.offset
        if expr.load is not None:
            slot = self.temp()
            self.ops.append(boundary.LoadOp(self.operand(expr.load), slot))
            return slot, expr.offset
        if expr.name is not None:
            return self.slots[expr.name], expr.offset
        return -1, expr.offset

    def argument(self, arg: Expr | PtrArray) -> boundary.Operand:
        if isinstance(arg, Expr):
            return self.operand(arg)
        if arg.at is not None:
            at = self.operand(arg.at)
        else:
            slot = self.temp()
            self.call(self.recipe.allocator, [(-1, 4 * len(arg.items))], slot)
            at = (slot, 0)
        if at[1] + 4 * len(arg.items) >= 1 << 63:
            raise ConfigError(f"recipe {self.recipe.source}: a ptr_array at offset {at[1]} runs past 64 bits")
        for i, item in enumerate(arg.items):
            self.ops.append(boundary.StoreOp((at[0], at[1] + 4 * i), self.operand(item)))
        return at


def recipe_ops(recipe: Recipe) -> tuple[list[boundary.Op], int, str]:
    """A recipe's steps flattened into the C driver's ops: nested calls, ``{load: ...}`` and pointer arrays become ops of
    their own writing temporary value slots; every operand is (slot, offset), slot -1 a literal; reads are numbered
    as :func:`read_names` orders them.  Returns the ops, the number of reads and the kind of the last call step's result
    ('' when it returns nothing: expect.result is compared with that call's result, as on the Python paths)."""
    flat = _Flattener(recipe)
    reads = 0
    last = ""
    for step in recipe.steps:
        if flat.ops:
            flat.ops.append(boundary.StepEnd())  # the previous step ended: a phased request stamps here (its steps' times)
        if isinstance(step, Call):
            args = [flat.argument(a) for a in step.args]
            dst = -1
            if step.name is not None:
                dst = flat.slots.setdefault(step.name, len(flat.slots))
            last = flat.call(step.export, args, dst, top=True)
        elif isinstance(step, Write):
            flat.ops.append(boundary.WriteOp(flat.operand(step.at), step.data))
        elif isinstance(step, Read):
            flat.ops.append(boundary.ReadOp(flat.operand(step.at), flat.operand(step.length), reads))
            reads += 1
        else:  # to_workload turns a core module's invoke steps into calls before anything runs
            raise ConfigError(f"recipe {step.where}: an invoke step left unconverted")
    if flat.ops:
        flat.ops.append(boundary.StepEnd())
    if len(flat.slots) + flat.temporaries > 255:
        raise ConfigError(f"recipe {recipe.source}: {len(flat.slots) + flat.temporaries} values; the native path holds 255")
    return flat.ops, reads, last


def parse_files(listing: bytes) -> dict[str, bytes]:
    """The files in the C driver's listing of a request's writable directories (``snapshot_dir`` in ``native/directories.c``:
    records of a type byte, the guest path ending in NUL, a native uint64 length and the contents): guest path ->
    contents, files only."""
    files, at = {}, 0
    while at < len(listing):
        kind = listing[at:at + 1]
        end = listing.index(b"\0", at + 1)
        (size,) = struct.unpack_from("=Q", listing, end + 1)
        start = end + 1 + struct.calcsize("=Q")
        if kind == b"f":
            files[listing[at + 1:end].decode(errors="surrogateescape")] = listing[start:start + size]
        at = start + size
    return files


class WasiFiles:
    """A WASI guest's files for one driver (stdin written once; stdout and stderr rewritten by every request; a folder
    per writable directory, made anew by every request in C), and the check of the first request's output against the
    workload's expectations (later ones must equal it, in C)."""

    def __init__(self, workload: Workload) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wasmlab-native-wasi-"))
        self.stdin = None
        if workload.stdin is not None:
            self.stdin = self.folder / "stdin"
            self.stdin.write_bytes(workload.stdin)
        self.stdout, self.stderr = self.folder / "stdout", self.folder / "stderr"
        self.name = workload.name
        self.check = OutputCheck(workload.name, workload.expectation)
        recipe = workload.recipe
        # (this driver's folder for it, the host directory it copies or "" for an empty one, its guest path)
        self.writable = [(self.folder / f"rw{i}", d.host or "", d.guest) for i, d in enumerate(recipe.dirs if recipe is not None else ())
                         if d.writable]
        self.verified = not self.check.anything

    def spec(self, workload: Workload) -> boundary.WasiSpec:
        """The C driver's WASI context for ``workload`` on this driver's files."""
        recipe = workload.recipe
        env = tuple(recipe.env) if recipe is not None else ()
        preopens = list(workload.preopens)
        if recipe is not None:
            preopens += [(d.host, d.guest) for d in recipe.dirs if d.host and not d.writable and (d.host, d.guest) not in preopens]
        return boundary.WasiSpec(argv=tuple(a.encode() for a in (workload.argv or (workload.name,))),
                        env=tuple((k.encode(), v.encode()) for k, v in env),
                        stdin=None if self.stdin is None else str(self.stdin).encode(), stdout=str(self.stdout).encode(),
                        stderr=str(self.stderr).encode(), preopens=tuple((h.encode(), g.encode()) for h, g in preopens),
                        writable=tuple((str(f).encode(), s.encode(), g.encode()) for f, s, g in self.writable))

    def verify(self, stdout: bytes, stderr: bytes, listing: bytes) -> None:
        """The first request's output and written files against the workload's expectations (each later request's
        equal them, compared in C)."""
        self.check.streams(lambda stream: stdout if stream == "stdout" else stderr)
        self.check.files(parse_files(listing).get)
        self.verified = True

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def add_workload(driver: _native.Driver, workload: Workload, wasi: boundary.WasiSpec | None = None, linked: bool = False) -> int:
    """``workload`` (a core module :func:`refusal` accepts) added to ``driver`` as one RequestPlan, checked as the lean path
    checks it (its Expectation), with its WASI context or through the driver's linker if given: its index in the driver."""
    sha256 = bytes.fromhex(workload.sha256)
    if workload.steps:
        recipe = workload.recipe
        ops, nreads, last = recipe_ops(recipe)
        result = workload.expectation.result.value
        check = (_native.CHECK_EXPECTED if isinstance(result, int) else
                 _native.CHECK_FIRST if workload.expectation.same_as_first and last else _native.CHECK_NONE)
        expected = boundary.ResultCheck(check, result if isinstance(result, int) else 0, workload.expectation.exit or 0)
        program = boundary.RecipeProgram(tuple(ops), recipe.memory.encode(), nreads)
        return driver.add(boundary.RequestPlan(workload.wasm, sha256, expected, result_kind=last, program=program, wasi=wasi,
                                               linked=linked))
    value = workload.expectation.compared_with()
    check = (_native.CHECK_NONE if value is None else _native.CHECK_FIRST if isinstance(value, FirstResult)
             else _native.CHECK_EXPECTED)
    expected = boundary.ResultCheck(check, int(value) if check == _native.CHECK_EXPECTED else 0,  # type: ignore[call-overload]
                                    workload.expectation.exit or 0)
    return driver.add(boundary.RequestPlan(workload.wasm, sha256, expected, entry=workload.entry.encode(),
                                           args=tuple(int(a) for a in workload.args), arg_kinds="".join(_KINDS[k] for k in workload.params),
                                           result_kind="".join(_KINDS[k] for k in workload.results), wasi=wasi, linked=linked))


def check_variant(parts: RequestParts) -> None:
    """The variant's choices that the C driver implements (core modules and components alike), or a one-line ConfigError."""
    modules = parts.modules
    if modules.artifacts is not None:
        raise ConfigError(f"call path 'native': variant {parts.label!r} loads compiled artifacts from disk; the native path "
                          f"compiles in memory (allowed: variants without 'disk')")
    if modules.cache.capacity and modules.cache.config.policy != "lru":
        raise ConfigError(f"call path 'native': cache policy {modules.cache.config.policy!r} is not implemented in C; allowed: lru")


def check_servable(parts: RequestParts, workloads: Sequence[Workload]) -> None:
    """The native path serves these workloads on this variant, or a one-line ConfigError; each export checked against
    its declared signature once per process (a wrong one would make an unchecked call unsafe)."""
    for w in workloads:
        reason = refusal(w) if not w.component else None
        if reason:
            raise ConfigError(f"call path 'native': {reason}")
    check_variant(parts)
    for w in workloads:
        if not w.component and w.sha256 not in _CHECKED:
            parts.modules.compile(w)  # the lab's export check
            _CHECKED.add(w.sha256)


def make_driver(parts: RequestParts, workloads: Sequence[Workload], linked: list[int]) -> _native.Driver:
    """The C driver on ``parts.engine`` with the variant's cache, InstancePre, linker, store limits and slot-wait policy
    (``linked``: the indices of workloads instantiated through the lab's core linker)."""
    # wasmtime_linker_instantiate is among the functions resolved with WASI's: any linked workload needs it, not only a
    # WASI one (a guest importing only host functions called a NULL pointer on the variants without InstancePre).
    if linked:
        try:
            library().enable_wasi()
        except LookupError as exc:
            raise ConfigError(f"call path 'native': {exc}") from None
    if linked and parts.linkers.core is None:
        raise ConfigError(f"call path 'native': workload {workloads[linked[0]].name!r} imports WASI or host functions, but no core linker was built")
    limits = parts.store.limits
    limiter = None
    if limits.store_limited:
        limiter = tuple(-1 if v is None else v for v in
                        (limits.memory_bytes, limits.table_elements, limits.instances, limits.tables, limits.memories))
    return _native.Driver(
        library(), capi.address(parts.engine.ptr()), cache_capacity=parts.modules.cache.capacity, pre=parts.pre,
        linker=capi.address(parts.linkers.core.ptr()) if (parts.pre or linked) and parts.linkers.core is not None else 0,
        fuel=-1 if limits.fuel is None else limits.fuel, epoch_ticks=parts.store.deadline_ticks, limiter=limiter,
        wait_ns=int(parts.waiting.timeout_ms * 1e6) if parts.waiting.policy == "wait" else -1, reuse=parts.reuse,
    )


class NativeServer:
    """One C driver serving the core modules of one runtime (a driver serves one thread): its workloads added, each
    block one C call, the driver's counters moved into the runtime's, and the first request's reads and outputs checked
    against the expectations here (every later request's equal them, compared in C)."""

    def __init__(self, parts: RequestParts, workloads: list[Workload]) -> None:
        self.parts, self.workloads = parts, workloads
        linked = [i for i, w in enumerate(workloads) if not w.component and w.linked]
        self.driver = make_driver(parts, workloads, linked)
        parts.cleanup.append(self.driver.close)
        # WASI guests: one folder of stdio files per driver, removed with the runtime.
        self.outputs: dict[int, WasiFiles] = {}
        for i in linked:
            if workloads[i].wasi:
                self.outputs[i] = WasiFiles(workloads[i])
                parts.cleanup.append(self.outputs[i].close)
        self.served = {i: add_workload(self.driver, w, self.outputs[i].spec(w) if i in self.outputs else None, i in linked)
                       for i, w in enumerate(workloads) if not w.component}
        # A recipe's result is its last call step's: None when that call returns nothing, as on the lean path.
        self.has_result = {i: bool(recipe_ops(w.recipe)[2] if w.steps else w.results) for i, w in enumerate(workloads) if i in self.served}
        # A recipe's reads: the first request's checked against expect here, every later one against them in C.
        self.unverified = {i: w.recipe for i, w in enumerate(workloads) if w.steps and (w.expectation.reads or w.expectation.same_as_first)}
        # How many steps of each recipe the C loop stamps in phased mode (the first STEP_STAMPS - 1).
        self.step_counts = {i: min(len(w.recipe.steps), _native.STEP_STAMPS - 1) for i, w in enumerate(workloads) if w.steps}
        self.to_driver = np.full(len(workloads), -1, dtype=np.int32)
        for i, d in self.served.items():
            self.to_driver[i] = d
        # Per open-loop block, how late the generator started each request (ns): read by the concurrency experiment.
        self.lateness: list[np.ndarray] = []

    def absorb(self) -> None:
        """The driver's counters into the runtime's, where the harness reads them."""
        stats = self.driver.take_stats()
        cache, waiting = self.parts.modules.cache, self.parts.waiting
        cache.stats.hits += stats["hits"]
        cache.stats.misses += stats["misses"]
        cache.stats.evictions += stats["evictions"]
        cache.stats.compile_ns += stats["compile_ns"]
        waiting.waits += stats["waits"]
        waiting.wait_ns += stats["wait_ns"]
        self.parts.output_checks += stats["output_checks"]
        self.parts.output_check_ns += stats["output_check_ns"]

    def failure(self, index: int, outcome: int, detail: int, memory: int, message: str) -> NativeFailure:
        """The lab's own error for an outcome that stops the variant (raised), or the request's failure."""
        w = self.workloads[index]
        if outcome == _native.OUT_MISMATCH:
            if (w.wasi or w.steps) and message:  # output, reads or an exit compared in C: the loop said what differed
                raise ResultMismatch(f"workload {w.name!r}: {message}")
            expected = self.driver.expectation(self.served[index])
            if w.expectation.same_as_first:
                raise ResultMismatch(f"workload {w.name!r} returned {detail!r}, but its first request returned {expected!r}: the "
                                     f"result changed between requests (give --expect to check a value, or --no-check to measure unchecked)")
            raise mismatch(w.name, detail, expected)
        if outcome == _native.OUT_NO_EXPORT:
            raise ConfigError(f"workload {w.name!r}: export {w.entry!r} not found")
        if outcome == _native.OUT_COMPILE_ERROR:
            raise CompileError(f"workload {w.name!r} does not compile for variant {self.parts.label!r}: {message}")
        if outcome == _native.OUT_TRAP:
            return NativeFailure("trap", message, None if detail < 0 else detail, None if memory < 0 else memory)
        if outcome == _native.OUT_EXIT:
            return NativeFailure(f"exit({detail})", message or f"exited with status {detail}")
        return NativeFailure(failure_kind(int(detail)), message)

    def run(self, indices: Sequence[int], stamps: np.ndarray | None = None, due: np.ndarray | None = None,
            steps: np.ndarray | None = None) -> tuple[int, str, np.ndarray]:
        """One C call serving ``indices``: its wall ns, first failure's message and records (counters absorbed, first reads and outputs verified)."""
        records = np.zeros((len(indices), _native.RECORD_WORDS), dtype=np.int64)
        wall, message = self.driver.run(self.to_driver[np.asarray(indices, dtype=np.intp)], records, stamps, due, steps)
        self.absorb()
        for i in [i for i in self.unverified if i in set(indices)]:
            self.verify_reads(i)
        for i in [i for i in self.outputs if not self.outputs[i].verified and i in set(indices)]:
            first = self.driver.first_output(self.served[i])
            if first is not None:
                self.outputs[i].verify(*first)
        return int(wall), message or "", records

    def verify_reads(self, index: int) -> None:
        """The first request's reads of recipe workload ``index`` against its ``expect.bytes`` (once they exist)."""
        recipe = self.unverified[index]
        first = self.driver.first_reads(self.served[index])
        if first is None:
            return
        del self.unverified[index]
        names = read_names(recipe)
        # The result was compared in C (CHECK_EXPECTED); here the bytes are (a name read twice: its later read).
        expected = self.workloads[index].expectation.result.value
        checker(self.workloads[index])(Outcome(reads=dict(zip(names, first, strict=True)), result=expected if isinstance(expected, int) else None))

    def failures_of(self, indices: Sequence[int], records: np.ndarray, message: str, which: np.ndarray) -> list[tuple[int, NativeFailure]]:
        """The failures of the records at positions ``which``; one that stops the variant is raised."""
        found = []
        for k in which.tolist():
            _, outcome, detail, memory = (int(v) for v in records[k, :4])
            found.append((k, self.failure(indices[k], outcome, detail, memory, message)))
        return found

    def block(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]],
              schedule: np.ndarray | None = None) -> int:
        """Serve ``indices`` in one C call; each request's ns into ``out``, its failure into ``failures``; the block's
        wall ns.  With ``schedule`` (int64 ns after the block's start at which each request is due: open-loop load),
        a request's ns count from when it was due, not from when the loop got to it."""
        due = None if schedule is None else np.ascontiguousarray(schedule, dtype=np.int64)
        wall, message, records = self.run(indices, None, due)
        out[:len(indices)] = records[:, 0].tolist()
        if schedule is not None:
            self.lateness.append(records[:, 4].copy())
        if self.parts.ledger is not None:  # instance reuse: each request's instance, fresh or reused, and carried-over state
            self.parts.ledger.extend(records[:, 5], records[:, 6])
        failures.extend(self.failures_of(indices, records, message, np.flatnonzero(records[:, 1] != _native.OUT_OK)))
        return wall

    def handle_phased(self, index: int, stamps: list[int] | None = None) -> object:
        row = np.zeros((1, _native.STAMPS), dtype=np.int64) if stamps is not None else None
        step_row = np.zeros((1, _native.STEP_STAMPS), dtype=np.int64) if stamps is not None and index in self.step_counts else None
        _, message, records = self.run([index], row, None, step_row)
        if records[0, 1] != _native.OUT_OK:
            raise self.failures_of([index], records, message, np.zeros(1, dtype=np.intp))[0][1]
        if stamps is not None and row is not None:
            stamps[:] = row[0].tolist()
        if step_row is not None:
            self.parts.step_stamps[index] = step_row[0, :self.step_counts[index] + 1].tolist()
        return int(records[0, 2]) if self.has_result[index] else None

    def handle(self, index: int) -> object:
        return self.handle_phased(index)

    def block_phased(self, indices: Sequence[int], stamps: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
        """The phased block in one C call, the same loop with a stamp at each phase boundary and, for a recipe, after
        each step: which requests ended ok (a failed request's phases are incomplete) and each request's step stamps
        (empty without steps).  An outcome that stops the variant is raised."""
        stepped = [i in self.step_counts for i in indices]
        steps = np.zeros((len(indices), _native.STEP_STAMPS), dtype=np.int64) if any(stepped) else None
        _, message, records = self.run(indices, stamps, None, steps)
        self.failures_of(indices, records, message, np.flatnonzero(np.isin(records[:, 1], _STOPS)))
        per_request = [steps[k, :self.step_counts[i] + 1].tolist() if steps is not None and stepped[k] else []
                       for k, i in enumerate(indices)]
        return records[:, 1] == _native.OUT_OK, per_request


def bind(parts: RequestParts, workloads: Sequence[Workload]) -> Handlers:
    """Handlers for the core modules among ``workloads``, served by one C driver on ``parts.engine``."""
    workloads = list(workloads)
    check_servable(parts, workloads)
    server = NativeServer(parts, workloads)
    block = functools.partial(server.block)
    # Per open-loop block, how late the generator started each request: read by the concurrency experiment.
    block.lateness = server.lateness  # type: ignore[attr-defined]
    return Handlers(server.handle, server.handle_phased, block, server.block_phased)
