"""A user's own libwasmtime build (``--library PATH``), measured like a release and labelled by its digest.

A build with other Cargo features or a patch has no wheel and no manifest pin: it is named
``library:<first 12 hex of its SHA-256>``, and the child that loads it checks the file against the full digest first,
as a release's child checks the manifest's pin.  Its version is what the library itself says: wasmtime writes its
version into every module it serializes (the ``.wasmtime.engine`` section of the artifact: a format byte, then the
version string; releases since ~31 write the major only, "50"), so :func:`probe` compiles an empty module through the
library's C API and reads it back; a library that does not say is ``unknown``.  :func:`probe` opens the library with
``dlopen`` and so runs in a child process (:func:`wasmlab.measure.release_run.user_library`).
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.host.releases import Release, file_sha256

UNKNOWN = "unknown"
LABEL_PREFIX = "library:"
ALLOWED = "allowed: a libwasmtime shared library (.so), e.g. the _libwasmtime.so of a wasmtime-py wheel or of your own cargo build"
EMPTY_MODULE = b"\x00asm\x01\x00\x00\x00"
ENGINE_SECTION = b".wasmtime.engine"


class _ByteVec(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.POINTER(ctypes.c_uint8))]


def label(digest: str) -> str:
    return f"{LABEL_PREFIX}{digest[:12]}"


def checked_path(path: str | Path) -> Path:
    """``path`` when it is a readable file; otherwise one line."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--library {path}: no such file; {ALLOWED}")
    return file.resolve()


def engine_section_version(artifact: bytes) -> str:
    """The version a serialized module's ``.wasmtime.engine`` section carries (ELF64, little-endian), or ``unknown``."""
    if artifact[:4] != b"\x7fELF" or len(artifact) < 0x40:
        return UNKNOWN
    (table,) = struct.unpack_from("<Q", artifact, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", artifact, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", artifact, table + index * entry_size)
        return name, offset, size

    _, names, _ = section(names_index)
    for index in range(count):
        name, offset, size = section(index)
        if artifact[names + name: artifact.index(b"\0", names + name)] == ENGINE_SECTION and size >= 2:
            length = artifact[offset + 1]
            said = artifact[offset + 2: offset + 2 + length].decode("ascii", "replace")
            return said if said and said[0].isdigit() else UNKNOWN
    return UNKNOWN


def probe(path: str) -> str:
    """The version the library at ``path`` says (see the module docstring); one line when it is not a loadable
    libwasmtime.  Run in a child: it loads the library into this process."""
    try:
        library = ctypes.CDLL(path)
        functions = (library.wasm_engine_new, library.wasm_engine_delete, library.wasmtime_module_new,
                     library.wasmtime_module_serialize, library.wasmtime_module_delete, library.wasm_byte_vec_delete)
    except (OSError, AttributeError) as exc:
        raise ConfigError(f"--library {path}: not a loadable libwasmtime ({str(exc).splitlines()[0]}); {ALLOWED}") from None
    engine_new, engine_delete, module_new, serialize, module_delete, vec_delete = functions
    engine_new.restype = ctypes.c_void_p
    module_new.restype = serialize.restype = ctypes.c_void_p
    engine = engine_new()
    module, artifact = ctypes.c_void_p(), _ByteVec()
    said = UNKNOWN
    if not module_new(ctypes.c_void_p(engine), EMPTY_MODULE, ctypes.c_size_t(len(EMPTY_MODULE)), ctypes.byref(module)):
        if not serialize(module, ctypes.byref(artifact)):
            said = engine_section_version(ctypes.string_at(artifact.data, artifact.size))
            vec_delete(ctypes.byref(artifact))
        module_delete(module)
    engine_delete(ctypes.c_void_p(engine))
    return said


def user_release(path: Path, library_version: str) -> Release:
    """The :class:`Release` standing for the build at ``path`` (no wheel; labelled by its digest)."""
    digest = file_sha256(path)
    return Release(label(digest), "", "", digest, user_path=str(path), library_version=library_version)


def describe(release: Release) -> dict[str, Any]:
    """What the run's metadata says of a release or a user's build."""
    if release.user_path:
        return {"library": release.user_path, "library_sha256": release.library_sha256, "library_version": release.library_version}
    return {"wheel": release.wheel, "wheel_sha256": release.wheel_sha256, "library_sha256": release.library_sha256}
