"""A pytest plugin for ``make test-sanitize``: the extension built with ``-fsanitize=address,undefined`` (in the folder
``WASMLAB_NATIVE_BUILD`` names) is the ``wasmlab._native`` the tests import, in place of the normal build, which stays
untouched.  Loaded with ``-p tests.native.sanitized`` before any test imports the driver; it refuses to run (one line) if
the sanitized build would not be the one imported, so the target cannot pass on the unsanitized extension."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import wasmlab

folder = os.environ.get("WASMLAB_NATIVE_BUILD")
if not folder or not any(Path(folder).glob("_native*.so")):
    sys.exit(f"WASMLAB_NATIVE_BUILD={folder!r} holds no sanitized _native build; allowed: the folder make test-sanitize builds")
if "wasmlab._native" in sys.modules:
    sys.exit("wasmlab._native was imported before the sanitized build could take its place")
# The package's own folder stays on its path for every other module: only _native is found first in the build folder.
wasmlab.__path__.insert(0, str(Path(folder).resolve()))

from wasmlab import _native  # noqa: E402  (after the path is set: that is the point)

if Path(_native.__file__).resolve().parent != Path(folder).resolve():
    sys.exit(f"the tests would import {_native.__file__}, not the sanitized build in {folder}")
