"""How the lab executes notebooks: papermill, with kernels that talk to it over IPC.

A kernel started over TCP (jupyter_client's default) prints "Kernel is running over TCP without
encryption" on every start, which the lab would pass on to its users on every sweep point and
report.  The kernels the lab starts are always on the same host as the process that drives them
(a Dask worker runs its own), so they use IPC sockets in Jupyter's runtime folder instead: no
ports, no plain-text network traffic, and no warning.  Each kernel gets a folder of its own for its
sockets: jupyter_client numbers IPC sockets from 1 beside the connection file, so two kernels started
at once in one folder (a sweep on several Dask workers) would take each other's sockets.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

# Set by a process that is being interrupted: its kernels are then killed at shutdown (see IPCKernelManager).
STOPPING = threading.Event()


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on IPC sockets instead of TCP ports."""

    def __init__(self, **kwargs: Any) -> None:
        self._socket_folder = tempfile.mkdtemp(prefix="wasmlab-kernel-")
        # Removed at cleanup, or at the latest when this manager is collected or the process exits.
        weakref.finalize(self, shutil.rmtree, self._socket_folder, True)
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", str(Path(self._socket_folder) / "kernel"))
        super().__init__(**kwargs)

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
        # After Ctrl-C or SIGTERM the kernel is killed, not asked to stop: asked mid-cell, it answers on sockets already
        # closed and prints a ZMQ traceback, and its cell's results are dropped with its point anyway.
        await self._async_shutdown_kernel(now=now or STOPPING.is_set(), restart=restart)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        # The coroutine behind both cleanup_resources and shutdown_kernel in jupyter_client 8.
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_folder, ignore_errors=True)


def execute_notebook(notebook: str | Path, output: str | Path, parameters: dict[str, Any], cwd: str | Path,
                     kernel_name: str = "python3") -> Any:
    """Execute ``notebook`` with ``parameters`` into ``output`` (papermill), in an IPC kernel started in ``cwd``."""
    import papermill

    return papermill.execute_notebook(str(notebook), str(output), parameters=parameters, cwd=str(cwd), kernel_name=kernel_name,
                                      progress_bar=False, kernel_manager_class=IPCKernelManager)
