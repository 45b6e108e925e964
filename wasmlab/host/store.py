"""How a request's store is set up: per-store limits (store limiter, fuel, epoch deadline) and its WASI context.

A :class:`StoreSetup` is built once per runtime from its :class:`~wasmlab.config.Limits`; it gives each
call path what it needs in the form that path uses: a raw per-store function for the lean paths (or
``None`` when there is nothing to set, so the common request makes no extra call) and a configured
``wasmtime.Store`` for the api paths.  A wall-time deadline is an epoch deadline, ticked by one
:class:`EpochTicker` thread per engine.  :class:`WasiIO` is a WASI command's per-request context.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import wasmtime

from wasmlab import capi
from wasmlab.config import Limits
from wasmlab.errors import ResultMismatch
from wasmlab.host.output_check import OutputCheck
from wasmlab.workloads.model import Workload

RawSetup = Callable[[capi.Ptr, capi.Ptr], None]


class EpochTicker:
    """One background thread per engine that advances its epoch every ``tick_ms``, so a store's
    epoch deadline is a wall-time budget.  Shared by the runtimes of an engine, reference-counted."""

    _running: dict[int, EpochTicker] = {}
    _lock = threading.Lock()

    def __init__(self, engine: wasmtime.Engine, tick_ms: float) -> None:
        self.engine = engine
        self.tick_s = tick_ms / 1000
        self.users = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasmlab-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        increment = self.engine.increment_epoch
        while not self._stop.wait(self.tick_s):
            increment()

    @classmethod
    def start_for(cls, engine: wasmtime.Engine, tick_ms: float) -> EpochTicker:
        with cls._lock:
            ticker = cls._running.get(id(engine))
            if ticker is None:
                ticker = cls._running[id(engine)] = cls(engine, tick_ms)
            ticker.users += 1
            return ticker

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users == 0:
                self._stop.set()
                self._running.pop(id(self.engine), None)


def tree_difference(tree: dict[str, str], first: dict[str, str]) -> str:
    """Where the files a request wrote (guest path -> what is there) first differ from the first request's, in words."""
    for path in sorted(tree.keys() | first.keys()):
        if path not in first:
            return f"the request wrote {path}, which the first request did not"
        if path not in tree:
            return f"the request did not write {path}, which the first request did"
        if tree[path] != first[path]:
            return f"the written {path} differs from the first request's ({tree[path][:12]} vs {first[path][:12]})"
    return "the written files differ from the first request's"


class WasiIO:
    """A WASI command's context for each request: its argv, stdin from a file written once, and
    stdout/stderr captured to files that are checked after the store is dropped."""

    def __init__(self, workload: Workload) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wasmlab-wasi-"))
        self.argv = list(workload.argv) or [workload.name]
        self.stdin: str | None = None
        if workload.stdin is not None:
            self.stdin = str(self.folder / "stdin")
            Path(self.stdin).write_bytes(workload.stdin)
        self.stdout, self.stderr = str(self.folder / "stdout"), str(self.folder / "stderr")
        expectation = workload.expectation
        self.outputs = OutputCheck(workload.name, expectation)
        self.name = workload.name
        self.preopens = workload.preopens
        recipe = workload.recipe
        self.env = [list(pair) for pair in recipe.env] if recipe is not None else []
        # Writable directories, fresh for every request: (guest path, host folder to copy or None, this request's folder).
        self.writable = [(d.guest, d.host, self.folder / f"rw{i}") for i, d in enumerate(recipe.dirs if recipe is not None else ())
                         if d.writable]
        # A command checked against its first request: the digest of that request's stdout, once known.
        self.first_result = expectation.same_as_first
        self.stdout_digest: str | None = None
        self.first_tree: dict[str, str] | None = None

    def config(self) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = self.argv
        if self.stdin is not None:
            wasi.stdin_file = self.stdin
        wasi.stdout_file = self.stdout
        wasi.stderr_file = self.stderr
        for host, guest in self.preopens:
            wasi.preopen_dir(host, guest, fs_mutable=False)
        if self.env:
            wasi.env = self.env
        for guest, source, folder in self.writable:
            # What the previous request wrote is gone before this one starts: a fresh (copied) directory each time.
            shutil.rmtree(folder, ignore_errors=True)
            if source is None:
                folder.mkdir()
            else:
                shutil.copytree(source, folder, symlinks=True)  # links stay links, as the C loop copies them
            wasi.preopen_dir(str(folder), guest, fs_mutable=True)
        return wasi

    def written(self, guest_path: str) -> Path | None:
        """Where a guest path inside a writable directory is on the host, for this request."""
        for guest, _, folder in self.writable:
            if guest_path.startswith(guest + "/"):
                return folder / guest_path[len(guest) + 1:]
        return None

    def check(self) -> None:
        """Raise :class:`ResultMismatch` unless the captured output and written files pass the workload's checks
        (:class:`~wasmlab.host.output_check.OutputCheck`), and, checked against the first request, equal its."""
        self.outputs.streams(lambda stream: Path(self.stdout if stream == "stdout" else self.stderr).read_bytes())
        self.outputs.files(self.read_written)
        if self.first_result:
            digest = hashlib.sha256(Path(self.stdout).read_bytes()).hexdigest()
            if self.stdout_digest is None:
                self.stdout_digest = digest
            elif digest != self.stdout_digest:
                raise ResultMismatch(f"workload {self.name!r}: stdout (sha256 {digest[:12]}) differs from the first request's "
                                     f"(sha256 {self.stdout_digest[:12]}): the output changed between requests")
            if self.writable:  # what it wrote is part of its outcome too
                tree = self.written_tree()
                if self.first_tree is None:
                    self.first_tree = tree
                elif tree != self.first_tree:
                    raise ResultMismatch(f"workload {self.name!r}: {tree_difference(tree, self.first_tree)}")

    def read_written(self, guest_path: str) -> bytes | None:
        """The contents of a file this request wrote, or ``None`` when it wrote none there."""
        host = self.written(guest_path)
        return host.read_bytes() if host is not None and host.is_file() else None

    def written_tree(self) -> dict[str, str]:
        """Every entry this request left in its writable directories: guest path -> the file's sha256, a directory's
        ``dir`` or a link's ``link:TARGET``."""
        tree = {}
        for guest, _, folder in self.writable:
            for path in sorted(folder.rglob("*")):
                inside = f"{guest.rstrip('/')}/{path.relative_to(folder).as_posix()}"
                tree[inside] = (f"link:{path.readlink()}" if path.is_symlink() else "dir" if path.is_dir()
                                else hashlib.sha256(path.read_bytes()).hexdigest())
        return tree

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class StoreSetup:
    """The per-store settings of one runtime (see the module docstring)."""

    def __init__(self, engine: wasmtime.Engine, limits: Limits) -> None:
        self.limits = limits
        self.deadline_ticks = math.ceil(limits.deadline_ms / limits.epoch_tick_ms) + 1 if limits.deadline_ms else 0
        self._ticker = EpochTicker.start_for(engine, limits.epoch_tick_ms) if limits.deadline_ms is not None else None

    def raw(self) -> RawSetup | None:
        """A function that applies every per-store limit to a raw store, or ``None`` when there are none."""
        limits = self.limits
        steps: list[RawSetup] = []
        if limits.store_limited:
            values = [ctypes.c_int64(-1 if v is None else v) for v in
                      (limits.memory_bytes, limits.table_elements, limits.instances, limits.tables, limits.memories)]
            steps.append(lambda store, context: capi.store_limiter(store, *values))
        if limits.fuel is not None:
            fuel = ctypes.c_uint64(limits.fuel)

            def set_fuel(store: capi.Ptr, context: capi.Ptr) -> None:
                err = capi.context_set_fuel(context, fuel)
                if err:
                    raise capi.error_from(err)
            steps.append(set_fuel)
        if self.deadline_ticks:
            ticks = ctypes.c_uint64(self.deadline_ticks)
            steps.append(lambda store, context: capi.context_set_epoch_deadline(context, ticks))
        if not steps:
            return None

        def setup(store: capi.Ptr, context: capi.Ptr) -> None:
            for step in steps:
                step(store, context)
        return setup

    def api_store(self, engine: wasmtime.Engine, workload: Workload, io: WasiIO | None) -> wasmtime.Store:
        """A new ``wasmtime.Store`` with every per-store limit and, for a WASI guest, its WASI context."""
        store = wasmtime.Store(engine)
        limits = self.limits
        if limits.store_limited:
            store.set_limits(*(-1 if v is None else v for v in
                               (limits.memory_bytes, limits.table_elements, limits.instances, limits.tables, limits.memories)))
        if limits.fuel is not None:
            store.set_fuel(limits.fuel)
        if self.deadline_ticks:
            store.set_epoch_deadline(self.deadline_ticks)
        if workload.wasi:
            store.set_wasi(io.config() if io is not None else wasmtime.WasiConfig())
        return store

    def close(self) -> None:
        """Stop the epoch ticker this setup started, if any."""
        if self._ticker is not None:
            self._ticker.release()
            self._ticker = None
