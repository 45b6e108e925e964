"""A child process that cannot outlive the block that started it, even when an interrupt lands while it starts.

``subprocess.Popen`` returns the process only once the child runs; a Ctrl-C (or the CLI's SIGTERM, raised as
``KeyboardInterrupt``) landing between the fork and that return leaves a child nobody holds, which goes on loading a
server after the lab has exited (tests/e2e/test_serve.py caught exactly that).  So SIGINT and SIGTERM are blocked while
the child starts; the child unblocks them for itself before it runs, and the parent unblocks them inside the block
whose ``finally`` stops the child, where a pending interrupt is raised.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def _unblock() -> None:
    # In the child, before exec: a blocked mask would be inherited, and the server would ignore the lab's SIGTERM.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)


@contextmanager
def spawned(command: list[str], stop: Callable[[subprocess.Popen[Any]], None], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """``Popen(command, **popen)``, given to the block and then ``stop``-ped, however the block is left."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        process = subprocess.Popen(command, preexec_fn=_unblock, **popen)
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
