"""A child process that cannot outlive the block that started it, even when an interrupt lands while it starts.

``subprocess.Popen`` returns the process only once the child runs; a Ctrl-C (or the CLI's SIGTERM, raised as
``KeyboardInterrupt``) landing between the fork and that return leaves a child nobody holds, which goes on loading a
server after the lab has exited (tests/e2e/test_serve.py caught exactly that).  So SIGINT and SIGTERM are blocked while
the child starts; the child unblocks them for itself before it runs, and the parent unblocks them inside the block
whose ``finally`` stops the child, where a pending interrupt is raised.

A lab killed outright (SIGKILL, an abort) runs no ``finally``: a child started from the main thread gets SIGKILL when
the lab dies (``prctl(PR_SET_PDEATHSIG)``, as :mod:`wasmlab.measure.child`'s children do), so no server outlives it.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


# prctl(2)'s option: a signal to the child when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def _in_child(tie: bool) -> Callable[[], None]:
    def apply() -> None:
        # In the child, before exec: a blocked mask would be inherited, and the server would ignore the lab's SIGTERM.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)
        if tie:  # only from the main thread, which lives as long as the lab: another thread's end would kill the child
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return apply


@contextmanager
def spawned(command: list[str], stop: Callable[[subprocess.Popen[Any]], None], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """``Popen(command, **popen)``, given to the block and then ``stop``-ped, however the block is left."""
    tie = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        process = subprocess.Popen(command, preexec_fn=_in_child(tie), **popen)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # an interrupt that came while it started is raised here
        yield process
    finally:
        stop(process)


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()


def terminate(process: subprocess.Popen[Any], grace_s: float = 5.0) -> None:
    """SIGTERM, SIGKILL after ``grace_s`` (or when a second interrupt cuts the wait short), and reap it."""
    try:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    finally:
        kill(process)
