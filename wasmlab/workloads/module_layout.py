"""What a module's bytes declare that a host sizes a pool and a memory image by: each linear memory (its minimum and
maximum pages, 64-bit indexes, shared, imported, custom page size), its data segments (how many, how many bytes, at
constant offsets or not), and whether wasmtime can give the module a copy-on-write memory image.

Read from the sections of the binary, not by instantiating: wasmtime-py reports memory types only for exported and
imported memories, and says nothing of data segments.  Only the import, memory and data sections are decoded; every
other section (code above all) is skipped by its length, so a 30 MB module reads in milliseconds.  A component's core
modules (and those of its nested components) are read one by one.

The copy-on-write rule is wasmtime's own (``try_static_init`` in wasmtime-environ's module translation, wasmtime 50):
a module gets a static memory image when every active data segment has a constant offset (``i32.const`` /
``i64.const``), targets a memory the module defines (not an imported one) and lies within the memory's minimum size,
no memory's pages are smaller than the host's, and for each memory the initialized span is under twice its data bytes
or under ``memory_guaranteed_dense_image_size`` (16 MiB by default).  Otherwise each instance copies its data segments
in at instantiation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from wasmlab.errors import ConfigError

WASM_PAGE = 1 << 16
HOST_PAGE = 4096
# wasmtime's default `memory_guaranteed_dense_image_size`: images under this are always made.
DENSE_IMAGE_ALWAYS_ALLOWED = 16 << 20
_CORE_VERSION, _COMPONENT_VERSION = b"\x01\x00\x00\x00", b"\x0d\x00\x01\x00"
_IMPORT, _MEMORY, _DATA = 2, 5, 11
_COMPONENT_CORE_MODULE, _COMPONENT_NESTED = 1, 4


@dataclass(frozen=True)
class Memory:
    """One linear memory as the module declares it (sizes in pages of ``page_size`` bytes)."""

    minimum_pages: int
    maximum_pages: int | None
    memory64: bool = False
    shared: bool = False
    imported: bool = False
    page_size: int = WASM_PAGE

    def to_dict(self) -> dict[str, object]:
        return {"minimum_bytes": self.minimum_pages * self.page_size,
                "maximum_bytes": None if self.maximum_pages is None else self.maximum_pages * self.page_size,
                "memory64": self.memory64, "shared": self.shared, "imported": self.imported, "page_size": self.page_size}


@dataclass(frozen=True)
class Segment:
    """One data segment: the memory it initializes (None: passive), its constant offset (None: computed), its bytes."""

    memory: int | None
    offset: int | None
    size: int


@dataclass(frozen=True)
class ModuleLayout:
    """One core module's memories and data segments, and whether wasmtime gives it a copy-on-write memory image."""

    memories: tuple[Memory, ...] = ()
    segments: tuple[Segment, ...] = ()
    cow_image: bool = True
    cow_reason: str = "no data segments: every memory starts zeroed"

    @property
    def data_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def to_dict(self) -> dict[str, object]:
        return {"memories": [m.to_dict() for m in self.memories], "data_segments": len(self.segments),
                "data_bytes": self.data_bytes, "passive_data_bytes": sum(s.size for s in self.segments if s.memory is None),
                "copy_on_write_image": self.cow_image, "copy_on_write_reason": self.cow_reason}


@dataclass
class _Reader:
    data: bytes
    at: int = 0
    end: int = field(default=-1)

    def __post_init__(self) -> None:
        self.end = len(self.data) if self.end < 0 else self.end

    def byte(self) -> int:
        if self.at >= self.end:
            raise ValueError("unexpected end of section")
        self.at += 1
        return self.data[self.at - 1]

    def leb(self, signed: bool = False) -> int:
        """A LEB128 integer (unsigned, or signed: sign-extended from its last byte's bit 6)."""
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value - (1 << shift) if signed and b & 0x40 else value

    def uleb(self) -> int:
        return self.leb()

    def sleb(self) -> int:
        return self.leb(signed=True)

    def skip(self, n: int) -> None:
        self.at += n

    def name(self) -> None:
        self.skip(self.uleb())


def _sections(wasm: bytes) -> Iterator[tuple[int, _Reader]]:
    """Each section's id and a reader over its payload."""
    r = _Reader(wasm, 8)
    while r.at < len(wasm):
        section = r.byte()
        size = r.uleb()
        yield section, _Reader(wasm, r.at, r.at + size)
        r.skip(size)


def _limits(r: _Reader, imported: bool = False) -> Memory:
    flags = r.byte()
    minimum = r.uleb()
    maximum = r.uleb() if flags & 0x01 else None
    page_size = 1 << r.uleb() if flags & 0x08 else WASM_PAGE
    return Memory(minimum, maximum, bool(flags & 0x04), bool(flags & 0x02), imported, page_size)


def _value_type(r: _Reader) -> None:
    if r.byte() in (0x63, 0x64):  # (ref null? <heap type>)
        r.sleb()


def _imported_memories(r: _Reader) -> list[Memory]:
    found = []
    for _ in range(r.uleb()):
        r.name()
        r.name()
        kind = r.byte()
        if kind in (0x00, 0x04):  # a function's or a tag's type index (a tag has an attribute byte first)
            if kind == 0x04:
                r.byte()
            r.uleb()
        elif kind == 0x01:  # a table: its element type, then its limits
            _value_type(r)
            flags = r.byte()
            r.uleb()
            if flags & 0x01:
                r.uleb()
        elif kind == 0x02:
            found.append(_limits(r, imported=True))
        elif kind == 0x03:  # a global: its type and mutability
            _value_type(r)
            r.byte()
        else:
            raise ValueError(f"unknown import kind {kind:#x}")
    return found


def _offset(r: _Reader) -> int | None:
    """A constant expression's value when it is one ``i32.const``/``i64.const``, else None (read to its ``end``)."""
    ops = []
    while True:
        op = r.byte()
        if op == 0x0B:
            break
        if op in (0x41, 0x42):
            ops.append(("const", r.sleb()))
        elif op == 0x23:  # global.get
            ops.append(("global", r.uleb()))
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            ops.append(("arith", 0))
        else:
            raise ValueError(f"unknown constant-expression opcode {op:#x}")
    return ops[0][1] & ((1 << 64) - 1) if len(ops) == 1 and ops[0][0] == "const" else None


def _segments(r: _Reader) -> list[Segment]:
    found = []
    for _ in range(r.uleb()):
        flag = r.uleb()
        if flag == 1:
            memory, offset = None, None
        elif flag in (0, 2):
            memory = r.uleb() if flag == 2 else 0
            offset = _offset(r)
        else:
            raise ValueError(f"unknown data segment flag {flag}")
        size = r.uleb()
        r.skip(size)
        found.append(Segment(memory, offset, size))
    return found


def cow_verdict(memories: tuple[Memory, ...], segments: tuple[Segment, ...]) -> tuple[bool, str]:
    """wasmtime's static-image rule (see the module's docstring): whether, and why (not)."""
    active = [s for s in segments if s.memory is not None and s.size > 0]
    if not active:
        return True, "no active data segments: every memory starts zeroed"
    spans: dict[int, tuple[int, int, int]] = {}
    for s in active:
        assert s.memory is not None
        if s.offset is None:
            return False, "a data segment's offset is computed (global.get), not a constant"
        if s.memory >= len(memories):
            return False, f"a data segment names memory {s.memory}, which the module does not have"
        memory = memories[s.memory]
        if memory.imported:
            return False, "a data segment initializes an imported memory"
        if s.offset + s.size > memory.minimum_pages * memory.page_size:
            return False, "a data segment lies beyond its memory's minimum size (it traps at instantiation)"
        low, high, data = spans.get(s.memory, (s.offset, s.offset + s.size, 0))
        spans[s.memory] = (min(low, s.offset), max(high, s.offset + s.size), data + s.size)
    for index, (low, high, data) in spans.items():
        if memories[index].page_size < HOST_PAGE:
            return False, f"memory {index}'s pages ({memories[index].page_size} B) are smaller than the host's"
        if high - low >= 2 * data and high - low >= DENSE_IMAGE_ALWAYS_ALLOWED:
            return False, (f"memory {index}'s data is sparse: {data} B spread over {high - low} B, over half empty and "
                           f"over wasmtime's memory_guaranteed_dense_image_size ({DENSE_IMAGE_ALWAYS_ALLOWED} B)")
    return True, "every active data segment is at a constant offset in a memory the module defines"


def core_layout(wasm: bytes) -> ModuleLayout:
    """The layout of one core module's bytes."""
    memories: list[Memory] = []
    segments: list[Segment] = []
    for section, r in _sections(wasm):
        if section == _IMPORT:
            memories[:0] = _imported_memories(r)
        elif section == _MEMORY:
            memories.extend(_limits(r) for _ in range(r.uleb()))
        elif section == _DATA:
            segments.extend(_segments(r))
    verdict, reason = cow_verdict(tuple(memories), tuple(segments))
    return ModuleLayout(tuple(memories), tuple(segments), verdict, reason)


def _core_modules(component: bytes) -> Iterator[bytes]:
    for section, r in _sections(component):
        if section == _COMPONENT_CORE_MODULE:
            yield r.data[r.at:r.end]
        elif section == _COMPONENT_NESTED:
            yield from _core_modules(r.data[r.at:r.end])


def layouts(wasm: bytes, name: str = "module") -> list[ModuleLayout]:
    """One layout per core module: the module itself, or each core module inside a component (nested ones included)."""
    try:
        if wasm[4:8] == _COMPONENT_VERSION:
            return [core_layout(module) for module in _core_modules(wasm)]
        return [core_layout(wasm)]
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{name}: its memory and data sections could not be read ({exc}); allowed: a valid module or component") from None
