"""A ``wasmtime serve`` process on a loopback port: started, waited for, read from ``/proc`` and stopped by its PID.

The server listens on 127.0.0.1 only (never another interface).  It runs in its own session, so a Ctrl-C at the
terminal reaches the lab, not the server, and the lab stops it by PID in :meth:`ServerProcess.stop` whatever happened:
success, a failed check, an error or an interrupt.  Starting is bounded in time; a server that exits or does not answer
within the bound is one line with the first line it printed.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.measure.spawn import spawned, terminate

HOST = "127.0.0.1"
# How long a server has to answer its first request (it compiles the component first: tens of ms for a proxy).
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int) -> int:
    """``port`` when nothing is bound to it on 127.0.0.1; one line otherwise."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is out of range; allowed: 1 to 65535, or 0 for a free port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise ConfigError(f"--port {port}: {HOST}:{port} is in use ({exc.strerror}); allowed: a free port, or 0 "
                              f"to let the lab pick one") from None
    return port


def memory_of(pid: int) -> dict[str, int]:
    """The process's resident set (now and its peak) and address space, in KiB, from ``/proc/PID/status``."""
    fields = {"VmRSS": "rss_kib", "VmHWM": "rss_peak_kib", "VmSize": "address_space_kib", "VmPeak": "address_space_peak_kib"}
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            found[fields[key]] = int(value.split()[0])
    return found


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def fetch(port: int, path: str = "/", timeout: float = 5.0) -> Response:
    """One ``GET`` of ``path`` on the loopback port, with Python's own HTTP client (not the load generator's)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return Response(answer.status, answer.read())
    finally:
        connection.close()


class ServerProcess:
    """``wasmtime serve`` of ``component`` on 127.0.0.1:``port`` with the given ``-O`` options; a context manager that
    stops the server on leaving, however it is left."""

    def __init__(self, binary: Path, component: Path, port: int, optimize: tuple[str, ...] = ()) -> None:
        self.port = port
        self.command = [str(binary), "serve", "--addr", f"{HOST}:{port}",
                        *(arg for option in optimize for arg in ("-O", option)), str(component)]
        self._log = tempfile.TemporaryFile()
        self._running = ExitStack()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise WasmlabError("the server was not started")
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "RUST_BACKTRACE": "0"}
        try:
            self.process = self._running.enter_context(spawned(
                self.command, lambda process: terminate(process, STOP_TIMEOUT_S), stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True))
            self._wait_until_it_answers()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()

    def first_line(self) -> str:
        """The first line the server printed (its error, when it did not start)."""
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode(errors="replace").splitlines() if line.strip()]
        return next((line for line in lines if line.startswith("Error") or "error" in line.lower()), lines[0] if lines else "")

    def _wait_until_it_answers(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise WasmlabError(f"wasmtime serve exited with status {self.process.returncode} before answering: "
                                   f"{self.first_line() or '(it printed nothing)'}")
            try:
                fetch(self.port, timeout=1.0)
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise WasmlabError(f"wasmtime serve did not answer on {HOST}:{self.port} within {START_TIMEOUT_S:.0f} s "
                                   f"(it was stopped): {self.first_line() or '(it printed nothing)'}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL if it has not exited within the bound; reaped either way."""
        try:
            self._running.close()
        finally:
            self._log.close()
