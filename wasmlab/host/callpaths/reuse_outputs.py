"""A WASI command's outputs under instance reuse (lean and api paths): what each request wrote, and the check of it.

A kept instance keeps its WASI context: its stdout and stderr files (truncated when the instance is made) grow by each
request's output, and its writable directories keep what earlier requests wrote.  So a request's output is the bytes
its files gained since the request before it on the same instance (offsets noted after each check, outside every
request's time, so the timed request reads nothing).  A request on a fresh instance is checked as the lab checks every
WASI request (:meth:`~wasmlab.host.store.WasiIO.check`: patterns, expected files, the first request's output); its
stdout, stderr and written tree become the workload's fresh reference.  A reused request's are compared with that
reference, and a difference is state carried over (a counter printed, a file left behind), not a failure.
"""

from __future__ import annotations

from wasmlab.host.store import WasiIO


class OutputOffsets:
    """Where a kept instance's stdout and stderr files ended after its last checked request."""

    __slots__ = ("stderr", "stdout")

    def __init__(self) -> None:
        self.stdout = self.stderr = 0


def _grown(path: str, offset: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read()


class ReusedOutputs:
    """One WASI workload's output check under reuse: :meth:`check` after each request, outside its time."""

    def __init__(self, io: WasiIO) -> None:
        self.io = io
        self.reference: tuple[bytes, bytes, dict[str, str]] | None = None

    def check(self, offsets: OutputOffsets, fresh: bool) -> bool:
        """The request that just ended on the instance ``offsets`` belongs to: checked (fresh, raising
        :class:`~wasmlab.errors.ResultMismatch` as every WASI request's check does) or compared with the fresh reference
        (reused); whether it carried state over."""
        io = self.io
        out, err = _grown(io.stdout, offsets.stdout), _grown(io.stderr, offsets.stderr)
        offsets.stdout += len(out)
        offsets.stderr += len(err)
        seen = (out, err, io.written_tree() if io.writable else {})
        if fresh:
            io.check()  # the files were made with this instance: they hold this request's output alone
            if self.reference is None:
                self.reference = seen
            return False
        return self.reference is not None and seen != self.reference
