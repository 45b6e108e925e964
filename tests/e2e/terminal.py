"""A real ``wasmlab`` command with its stderr on a pseudo-terminal, interrupted once its progress bar shows a given
point: the interrupt tests' one way of starting, watching and signalling a command (no blind sleep).

The terminal is what makes the bar draw (tqdm draws nothing at width 0, and the bar says which repetition, child or
trial is under way); stdout is piped, so a test sees the command's table apart from its bar and last line."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WASMLAB = [sys.executable, "-m", "wasmlab.cli"]


def on_a_terminal(arguments: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The command with stdout piped and stderr on a pseudo-terminal 200 columns wide; the process and the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    process = subprocess.Popen([*WASMLAB, *arguments], cwd=cwd, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    return process, master


def read(master: int, until: bytes = b"", timeout: float = 60.0, done: Callable[[bytes], bool] | None = None) -> bytes:
    """What the terminal shows, until ``until`` appears or ``done`` says so (or, with neither, the command closes it)."""
    seen, deadline = b"", time.monotonic() + timeout
    while not ((until and until in seen) or (done and done(seen))) and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the command ended: its side of the terminal is closed
                break
            if not chunk:
                break
            seen += chunk
    return seen


def last_line(shown: bytes) -> str:
    """The command's last line, as the terminal shows it."""
    # The bar redraws itself with carriage returns and clears its line before the command's last line.
    return shown.decode(errors="replace").replace("\r\n", "\n").split("\n")[-2].split("\r")[-1]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@dataclass(frozen=True)
class Ended:
    """How an interrupted command ended: its status, its stdout, all its terminal showed, and what ``before`` found."""

    status: int
    out: bytes
    shown: bytes
    before: Any = None

    @property
    def line(self) -> str:
        return last_line(self.shown)


def interrupted(arguments: list[str], cwd: Path, sent: signal.Signals, wait: Callable[[int], bytes], *,
                before: Callable[[subprocess.Popen[bytes]], Any] | None = None, timeout: float = 120.0) -> Ended:
    """Run the command; once ``wait`` (given the terminal) returns what it showed, call ``before`` on the process (to
    see, say, its children under way), send ``sent`` and read the terminal to its end.  The process is killed in
    any case."""
    process, master = on_a_terminal(arguments, cwd)
    try:
        shown = wait(master)
        found = before(process) if before else None
        process.send_signal(sent)
        out, _ = process.communicate(timeout=timeout)
        shown += read(master)
    finally:
        process.kill()
        os.close(master)
    return Ended(process.returncode, out, shown, found)


def shows(text: bytes, timeout: float = 60.0) -> Callable[[int], bytes]:
    """A ``wait`` for :func:`interrupted`: until the terminal shows ``text``, which it must."""
    def wait(master: int) -> bytes:
        shown = read(master, until=text, timeout=timeout)
        assert text in shown, shown[-500:]
        return shown
    return wait
