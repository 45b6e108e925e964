"""The lab's one child-process protocol: a fresh Python process serving requests to a named function.

wasmtime's C API aborts the whole process in some situations (a Rust panic: a pool that cannot reserve its
address space, a component's WASI call in a store without a WASI context), so whatever may meet one runs in a
child: ``--isolate`` (one child per variant), ``wasmlab releases run`` (one per release and repetition, each
loading its own library) and the advisor's trials (one child serving candidate after candidate).

:class:`Child` starts ``python -m wasmlab.measure.child MODULE:FUNCTION`` (a new interpreter: no state of the
parent's wasmtime), sends each request over a pipe of its own (pickled, length-prefixed; the child's stdout
and stderr stay free for whatever the runtime prints) and reads back a :class:`Reply`: ``ok`` with the
function's result, ``error`` with the Python error on one line, or ``crash`` with the signal or exit status and
the last lines the child printed on stderr.  After a crash (or a timeout) the next request starts a new child.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import wasmlab
from wasmlab.errors import WasmlabError

_LENGTH = struct.Struct("<Q")
# Lines of the child's stderr kept with a crash.
CRASH_LINES = 20


@dataclass(frozen=True)
class Reply:
    """How one request to a child ended: ``ok`` (``result``), ``error`` or ``crash`` (``message``, one line)."""

    status: str
    result: Any = None
    message: str = ""
    error_type: str = ""  # the Python error's class name (``error``), or the signal's name (``crash`` by a signal)
    lab_error: bool = False  # the error is one of the lab's own (a WasmlabError): the user's input, not a bug
    stderr: str = ""  # the child's last lines on stderr (``crash``)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def crash_line(stderr: str) -> str:
    """The informative lines of a dying child's stderr: Rust's panic message and its last cause."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip() and not line.strip().startswith("note:")]
    if not lines:
        return "(nothing on stderr)"
    panic = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if "panicked at" in line), None)
    last = lines[-1]
    return f"{panic} ... {last}" if panic and panic != last else last


# prctl(2)'s option that sends the child a signal when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def _in_child(limit: int | None) -> Callable[[], None]:
    """What runs in the child before it execs: its address-space limit, and, when started from the main thread (the
    one that lives as long as the process), SIGKILL on the parent's death, so no child outlives a killed parent."""
    tie = threading.current_thread() is threading.main_thread() and sys.platform == "linux"

    def apply() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if tie:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return apply


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM noted, not acted on, inside the block, then sent again to this process.

    With a preexec_fn, Popen runs Python's at-fork handlers (logging's among them), and a KeyboardInterrupt raised in
    one is swallowed ("Exception ignored"): a Ctrl-C landing in the fork was lost and the run went on.  (Blocking the
    signals would not do: another thread, tqdm's monitor say, takes them and the main thread still raises in the handler.)"""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are handled in the main thread: nothing raises in this one
        return
    noted: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(noted):
            os.kill(os.getpid(), signum)


class Child:
    """A child process running ``target`` (``"module:function"``, called with one request, returning a picklable
    result) for request after request; replaced after a crash.  ``address_space`` limits the child's
    (``RLIMIT_AS``), as on a host with strict limits; ``env`` adds to the child's environment."""

    def __init__(self, target: str, timeout_s: float = 3600.0, address_space: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.target, self.timeout_s, self.address_space = target, timeout_s, address_space
        # The child imports the wasmlab this process runs, wherever it was imported from.
        root = str(Path(wasmlab.__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "PYTHONPATH": path, "RUST_BACKTRACE": "0", **(env or {})}
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: IO[bytes] | None = None
        self._replies = -1
        self._stderr: IO[bytes] | None = None
        self.started = 0  # children started, the first one included
        self.crashes = 0

    def _start(self) -> None:
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        # stderr goes to a file, not a pipe: a chatty child cannot block on it, and its last lines outlive it.
        self._stderr = tempfile.TemporaryFile(prefix="wasmlab-child-")
        with _signals_deferred():  # raised once the child is wired, so that killing it lets every descriptor go
            self._process = subprocess.Popen(
                [sys.executable, "-m", "wasmlab.measure.child", self.target, str(child_reads), str(child_writes)],
                pass_fds=(child_reads, child_writes), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                env=self.env, preexec_fn=_in_child(self.address_space))
            os.close(child_reads)
            os.close(child_writes)
            self._requests = os.fdopen(parent_writes, "wb")
            self._replies = parent_reads
            self.started += 1

    def call(self, request: Any) -> Reply:
        """Send ``request`` to the child (started if there is none) and wait for its reply."""
        try:
            if self._process is None:
                self._start()
            assert self._requests is not None
            payload = pickle.dumps(request)
            self._requests.write(_LENGTH.pack(len(payload)) + payload)
            self._requests.flush()
            reply = self._read(time.monotonic() + self.timeout_s)
        except BrokenPipeError:
            reply = None
        except TimeoutError:
            return self._crashed(f"no answer within {self.timeout_s:.0f} s", kill=True)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM in the parent: the child's answer will not be read, so it ends now, not after its request.
            self.kill()
            raise
        if reply is None:
            return self._crashed("")
        status, *rest = pickle.loads(reply)
        if status == "ok":
            return Reply("ok", result=rest[0])
        error_type, lab_error, message = rest
        return Reply("error", message=message, error_type=error_type, lab_error=lab_error)

    def _read(self, deadline: float) -> bytes | None:
        header = self._read_exactly(_LENGTH.size, deadline)
        if header is None:
            return None
        return self._read_exactly(_LENGTH.unpack(header)[0], deadline)

    def _read_exactly(self, count: int, deadline: float) -> bytes | None:
        chunks, left = [], count
        while left:
            if not select.select([self._replies], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise TimeoutError
            chunk = os.read(self._replies, min(left, 1 << 20))
            if not chunk:
                return None  # the child is gone
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _crashed(self, reason: str, kill: bool = False) -> Reply:
        """The reply for a child that died (or was killed after ``reason``), which is then let go."""
        process = self._process
        assert process is not None and self._stderr is not None
        if kill:
            process.kill()
        code = process.wait()
        self._stderr.seek(0)
        stderr = "\n".join(self._stderr.read().decode(errors="replace").splitlines()[-CRASH_LINES:])
        self._discard()
        self.crashes += 1
        if reason:
            return Reply("crash", message=reason, stderr=stderr)
        if code < 0:
            name = signal.Signals(-code).name
            return Reply("crash", message=f"crash ({name}): {crash_line(stderr)}", error_type=name, stderr=stderr)
        return Reply("crash", message=f"exit status {code}: {crash_line(stderr)}", stderr=stderr)

    def _discard(self) -> None:
        if self._requests is not None:
            try:
                self._requests.close()
            except BrokenPipeError:
                pass
        if self._replies >= 0:
            os.close(self._replies)
        if self._stderr is not None:
            self._stderr.close()
        self._process, self._requests, self._replies, self._stderr = None, None, -1, None

    def kill(self) -> None:
        """End the child at once (SIGKILL) and let it go."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._discard()

    def close(self) -> None:
        """End the child: its requests pipe closes, it returns, and is waited for."""
        process = self._process
        if process is None:
            return
        if self._requests is not None:
            try:
                self._requests.close()
            except BrokenPipeError:
                pass
            self._requests = None
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._discard()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call_once(target: str, request: Any, **options: Any) -> Reply:
    """``request`` served by a child of its own, which then ends."""
    with Child(target, **options) as child:
        return child.call(request)


def _serve(target: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    while header := requests.read(_LENGTH.size):
        request = pickle.loads(requests.read(_LENGTH.unpack(header)[0]))
        try:
            payload = pickle.dumps(("ok", function(request)))
        except Exception as exc:  # the function's error (or its result's pickling), sent back as one line
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            payload = pickle.dumps(("error", type(exc).__name__, isinstance(exc, WasmlabError), lines[0] if lines else type(exc).__name__))
        replies.write(_LENGTH.pack(len(payload)) + payload)
        replies.flush()


if __name__ == "__main__":
    # A Ctrl-C at the terminal reaches the whole process group: the parent decides (it keeps what finished and ends
    # this child), so the child does not die half-way with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with os.fdopen(int(sys.argv[2]), "rb") as _requests, os.fdopen(int(sys.argv[3]), "wb") as _replies:
        _serve(sys.argv[1], _requests, _replies)
