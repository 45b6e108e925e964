"""Extism's compilation cache, as each ``@extism`` variant asks for it: off, or on in a folder of the run.

Extism reads ``EXTISM_CACHE_CONFIG`` each time it makes a plugin's wasmtime engine (every ``CompiledPlugin``, so every
plugin made from bytes): empty turns wasmtime's cache off, a path loads that cache-config TOML, and unset loads
wasmtime's default config (a cache in the user's home folder, shared by every run: never what the lab wants).  So
each block of a variant sets it for its own time (:meth:`CacheSetting.applied`) and puts the previous value back.
``disk@extism`` gets a folder of its own, made when the variant is built and removed when it closes: no two runs, and
no two variants, share compiled code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VARIABLE = "EXTISM_CACHE_CONFIG"
OFF = ""
# How long a removed cache folder must stay gone before the variant's close returns, and the most it waits for that.
QUIET_S = 0.2
PATIENCE_S = 5.0


class CacheSetting:
    """The ``EXTISM_CACHE_CONFIG`` value of one variant: off, or a TOML pinning wasmtime's cache to a temporary folder."""

    def __init__(self, disk: bool) -> None:
        self.folder: Path | None = Path(tempfile.mkdtemp(prefix="wasmlab-extism-cache-")) if disk else None
        self.value = OFF
        if self.folder is not None:
            config = self.folder / "cache.toml"
            # wasmtime 49's cache config: the [cache] table with its directory (no `enabled` key since wasmtime 43).
            config.write_text(f"[cache]\ndirectory = {str(self.folder / 'compiled')!r}\n")
            self.value = str(config)

    @property
    def directory(self) -> Path | None:
        """Where wasmtime writes the compiled modules (``None`` with the cache off)."""
        return None if self.folder is None else self.folder / "compiled"

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The variable set to this variant's value for the block's time, the previous value (or its absence) restored."""
        before = os.environ.get(VARIABLE)
        os.environ[VARIABLE] = self.value
        try:
            yield
        finally:
            if before is None:
                del os.environ[VARIABLE]
            else:
                os.environ[VARIABLE] = before

    def close(self) -> None:
        """Remove the folder, and again whenever it comes back, until it has stayed gone for :data:`QUIET_S`: wasmtime's
        cache worker (a thread per engine) writes usage stats after the engine's last plugin is dropped, creating the
        folders it needs, so one removal can leave a folder behind (seen here in 2 of 10 runs)."""
        folder, self.folder = self.folder, None
        if folder is None:
            return
        start = quiet_since = time.monotonic()
        while time.monotonic() - start < PATIENCE_S:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return
            time.sleep(0.005)
