"""The one thing pyproject.toml cannot say: the native call path's C extension (``wasmlab/_native.c``).

It is built by ``pip install`` with the system C compiler (``environment.yml`` names conda's) and is not
linked against libwasmtime: it resolves the C API functions at run time from the library wasmtime-py
loaded (see the source's header comment).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wasmlab._native",
            sources=["wasmlab/_native.c"],
            libraries=["dl"],  # dlopen/dlsym: part of libc since glibc 2.34, a separate library before
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                                "-Wno-cast-function-type"],
        )
    ]
)
