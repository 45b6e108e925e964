"""The one thing pyproject.toml cannot say: the native call path's C extension (``wasmlab/native/``, imported as
``wasmlab._native``).

It is built by ``pip install`` with the system C compiler (``environment.yml`` names conda's) and is not
linked against libwasmtime: it resolves the C API functions at run time from the library wasmtime-py
loaded (see ``wasmlab/native/wasmtime_api.h``).

``WASMLAB_NATIVE_CFLAGS`` (space-separated) adds compiler and linker flags: ``make test-sanitize`` builds a copy
with ``-fsanitize=address,undefined`` into a directory of its own that way, leaving the normal build alone.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

EXTRA = os.environ.get("WASMLAB_NATIVE_CFLAGS", "").split()

setup(
    ext_modules=[
        Extension(
            "wasmlab._native",
            # relative paths, as setuptools wants them; every .c of the folder (its core and its Python glue)
            sources=sorted(str(p) for p in Path("wasmlab/native").glob("*.c")),
            include_dirs=["wasmlab/native"],
            depends=sorted(str(p) for p in Path("wasmlab/native").glob("*.h")),
            libraries=["dl"],  # dlopen/dlsym: part of libc since glibc 2.34, a separate library before
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                                "-Wno-cast-function-type", *EXTRA],
            extra_link_args=EXTRA,
        )
    ]
)
