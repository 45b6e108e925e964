"""A C loop's ``main``, built into a shared library, called in this very process with its stdout captured: both bar
scripts run their bare C loop this way, so that it shares the lab's address space (what remains between them is then
the driver's own work, not the difference between a small program and a Python process)."""

from __future__ import annotations

import ctypes
import os
import tempfile


def call_main(main: ctypes._CFuncPtr, words: list[bytes]) -> tuple[int, str]:
    """``main(argc, argv)`` with ``words`` as argv: its exit status and what it printed to stdout."""
    main.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(1)
        os.dup2(captured.fileno(), 1)
        try:
            status = main(len(words), (ctypes.c_char_p * len(words))(*words))
            libc.fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        captured.seek(0)
        return int(status), captured.read().decode()
