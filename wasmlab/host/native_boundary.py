"""The boundary between Python and the C driver (``wasmlab._native``): the named structures a ``Driver`` reads by
attribute, and the version both sides agree on.

A workload reaches C as one :class:`RequestPlan` (``Driver.add(plan)``): the module and what one request does with it
(an export called with fixed arguments, or a recipe's :class:`RecipeProgram`), how its result is checked
(:class:`ResultCheck`) and, for a WASI guest, its context (:class:`WasiSpec`).  A component reaches C as a
:class:`ComponentPlan` (``Driver.add_component(plan)``) of :class:`ComponentCallPlan` calls with their values as
:class:`ComponentValue` trees, and the stubs of its imports as :class:`ComponentStubPlan`.  Every structure carries ``version``;
the C glue (``wasmlab/native/driver_inputs.c``) refuses one of another version in one line naming both, and
:func:`check_version` refuses an extension built for another version (a stale build) when the library is loaded.
Change a structure here and in the glue together, and bump :data:`BOUNDARY_VERSION` in both.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from wasmlab.errors import ConfigError

# 5: the driver's take_stats counts the WASI output checks it runs after each request's end stamp (output_checks,
# output_check_ns), which the native path reads.  6: a request's record is 7 words (_native.RECORD_WORDS), gaining
# whether it ran on a fresh instance and whether it carried state over (instance reuse: Driver(reuse=N)).  7: a
# component request's record words 5 and 6 hold the same (instance reuse of components, component_serve_reused); an
# older build reports every component request fresh.  8: a ComponentPlan's wasi_http and instantiate_only (a wasi:http
# proxy's request without the handler's call, for serve --beside-lab), and take_stats' component_instances.
BOUNDARY_VERSION = 8

Operand = tuple[int, int]
"""A value the C loop computes: the value in slot ``[0]`` plus the offset ``[1]``; slot -1: the literal offset."""


def check_version(native: ModuleType) -> None:
    """``native`` (the loaded ``wasmlab._native``) reads this module's structures, or a one-line ConfigError."""
    theirs = getattr(native, "BOUNDARY_VERSION", None)
    if theirs != BOUNDARY_VERSION:
        raise ConfigError(f"wasmlab._native reads boundary version {theirs}, wasmlab.host.native_boundary writes version "
                          f"{BOUNDARY_VERSION}: the extension is a stale build (rebuild it: pip install -e .)")


@dataclass(frozen=True)
class ResultCheck:
    """What C checks each request against: ``mode`` (``_native.CHECK_NONE``, ``CHECK_EXPECTED`` the value
    ``expected``, ``CHECK_FIRST`` the first request's result) and, for a WASI guest, the exit status that means success."""

    mode: int
    expected: int = 0
    exit_status: int = 0
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class WasiSpec:
    """A WASI guest's context, built by C for every request: every string and path bytes; stdin ``None`` for none;
    stdout and stderr the files this driver's requests write; ``preopens`` (host, guest) read-only directories;
    ``writable`` (folder, source, guest): a directory made anew in ``folder`` for every request, empty for an empty
    ``source`` or a copy of it.  ``compare_output``: each request's outputs must equal the first request's."""

    argv: tuple[bytes, ...]
    env: tuple[tuple[bytes, bytes], ...]
    stdin: bytes | None
    stdout: bytes
    stderr: bytes
    preopens: tuple[tuple[bytes, bytes], ...] = ()
    writable: tuple[tuple[bytes, bytes, bytes], ...] = ()
    compare_output: bool = True
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class CallOp:
    """Call ``export`` with ``args`` (each of its kind: 'i' i32, 'I' i64); its result (kind ``result_kind``, '' none)
    into value slot ``dst`` (-1 none); ``top``: a step of its own, whose result is the request's."""

    code: ClassVar[int] = 1
    export: bytes
    args: tuple[Operand, ...]
    kinds: str
    result_kind: str
    dst: int = -1
    top: bool = False


@dataclass(frozen=True)
class WriteOp:
    """Write ``data`` into the memory at ``at``."""

    code: ClassVar[int] = 2
    at: Operand
    data: bytes


@dataclass(frozen=True)
class ReadOp:
    """Read ``length`` bytes at ``at`` as read number ``read`` (every request's equal the first request's)."""

    code: ClassVar[int] = 3
    at: Operand
    length: Operand
    read: int


@dataclass(frozen=True)
class LoadOp:
    """The u32 at ``at`` into value slot ``dst``."""

    code: ClassVar[int] = 4
    at: Operand
    dst: int


@dataclass(frozen=True)
class StoreOp:
    """The u32 ``value`` stored at ``at``."""

    code: ClassVar[int] = 5
    at: Operand
    value: Operand


@dataclass(frozen=True)
class StepEnd:
    """A recipe step ended: a phased request stamps here (its steps' times)."""

    code: ClassVar[int] = 6


Op = CallOp | WriteOp | ReadOp | LoadOp | StoreOp | StepEnd


@dataclass(frozen=True)
class RecipeProgram:
    """A recipe's steps flattened into ops on integer value slots (at most 256), on the exported memory ``memory``,
    with ``nreads`` numbered reads."""

    ops: tuple[Op, ...]
    memory: bytes
    nreads: int
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class RequestPlan:
    """One workload as C serves it: ``wasm`` (its SHA-256 the cache key), and per request either ``entry`` called with
    ``args`` of ``arg_kinds`` returning ``result_kind`` ('i' i32, 'I' i64, '' none), or ``program``; its result checked by
    ``check``; instantiated through the driver's linker when ``linked`` (host functions) or ``wasi`` is given."""

    wasm: bytes
    sha256: bytes
    check: ResultCheck
    entry: bytes = b"(recipe)"
    args: tuple[int, ...] = ()
    arg_kinds: str = ""
    result_kind: str = ""
    program: RecipeProgram | None = None
    wasi: WasiSpec | None = None
    linked: bool = False
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class ComponentValue:
    """A component value tree as C builds it (``wasmtime_component_val_t``): ``kind`` a wasmtime component value kind;
    ``number`` a bool, an integer's bits (unsigned), a char's code point, a float's bits, or a result's ``is_ok``; ``text``
    a string, an enum case or a variant's case; ``items`` a list's, tuple's or record's values, or the payload of a
    variant, option or result (empty: none); ``names`` a record's field names or the flags set."""

    kind: int
    number: int = 0
    text: bytes = b""
    items: tuple[ComponentValue, ...] = ()
    names: tuple[bytes, ...] = ()
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class ComponentCallPlan:
    """One call a component request makes: ``entry`` called with ``args``; when ``returns``, its result checked by
    ``check`` (``_native.CHECK_*``) against ``expected`` (``CHECK_EXPECTED``) or this call's result in the first request
    (``CHECK_FIRST``)."""

    entry: bytes
    args: tuple[ComponentValue, ...]
    returns: bool
    check: int
    expected: ComponentValue | None = None
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class ComponentStubPlan:
    """A stubbed component function import, defined on the driver's component linker: ``name`` in the imported
    instances ``instance`` (outermost first; empty: a top-level import), returning ``result`` (``None``: nothing)
    whatever its arguments."""

    instance: tuple[bytes, ...]
    name: bytes
    result: ComponentValue | None = None
    version: int = BOUNDARY_VERSION


@dataclass(frozen=True)
class ComponentPlan:
    """One component workload as C serves it (``Driver.add_component(plan)``): ``component`` (its SHA-256 and the calls'
    exports the cache key), and per request ``calls`` made in order in one fresh instance (a recipe's invoke steps; the
    entry's last), each result checked in C; ``wasi``: each store gets a WASI p2 context and the linker WASI p2 (a
    component importing ``wasi:*``); ``command``: a component command's WASI context (a core command's
    :class:`WasiSpec`), its request ended by an exit status (run's ``err`` is 1) that must be ``exit_status``, its
    outputs checked as a core command's.  ``stubs``: the runtime's stubs of component imports, merged (the same in every
    plan of one driver), defined on the driver's linker with its first plan.  ``wasi_http``: wasmtime's wasi:http on the
    linker and a wasi-http context on each store (after its WASI one); ``instantiate_only``: each request instantiates
    and looks each call's function up, and makes no call (a wasi:http proxy, whose handler the C API cannot call)."""

    component: bytes
    sha256: bytes
    calls: tuple[ComponentCallPlan, ...]
    wasi: bool = False
    command: WasiSpec | None = None
    exit_status: int = 0
    stubs: tuple[ComponentStubPlan, ...] = ()
    wasi_http: bool = False
    instantiate_only: bool = False
    version: int = BOUNDARY_VERSION


# The component value kinds (wasmtime/component/val.h), as the tree conversion reads them.
_SCALARS = {0: "boolean", 1: "s8", 2: "u8", 3: "s16", 4: "u16", 5: "s32", 6: "u32", 7: "s64", 8: "u64", 11: "character"}
_FLOATS = {9: ("f32", "<f", "<I"), 10: ("f64", "<d", "<Q")}


def _text(vec: Any) -> bytes:
    return ctypes.string_at(ctypes.cast(vec.data, ctypes.c_void_p), vec.size) if vec.size else b""


def _payload(pointer: Any) -> tuple[ComponentValue, ...]:
    return (value_tree(pointer.contents),) if pointer else ()


def value_tree(val: Any) -> ComponentValue:  # noqa: PLR0911 - a dispatcher with one branch per component value kind
    """The C value ``val`` (a ``wasmtime._bindings.wasmtime_component_val_t``, as the lab's shapes lower a typed value
    into one) as a :class:`ComponentValue` tree, read without freeing it."""
    kind, of = int(val.kind), val.of
    if kind in _SCALARS:
        return ComponentValue(kind, int(getattr(of, _SCALARS[kind])) & 0xFFFF_FFFF_FFFF_FFFF)
    if kind in _FLOATS:
        field, as_float, as_bits = _FLOATS[kind]
        return ComponentValue(kind, struct.unpack(as_bits, struct.pack(as_float, getattr(of, field)))[0])
    if kind in (12, 17):  # string, enum
        return ComponentValue(kind, text=_text(of.string))
    if kind in (13, 15):  # list, tuple
        return ComponentValue(kind, items=tuple(value_tree(of.list.data[i]) for i in range(of.list.size)))
    if kind == 14:
        entries = [of.record.data[i] for i in range(of.record.size)]
        return ComponentValue(kind, items=tuple(value_tree(e.val) for e in entries), names=tuple(_text(e.name) for e in entries))
    if kind == 16:
        return ComponentValue(kind, text=_text(of.variant.discriminant), items=_payload(of.variant.val))
    if kind == 18:
        return ComponentValue(kind, items=_payload(of.option))
    if kind == 19:
        return ComponentValue(kind, int(bool(of.result.is_ok)), items=_payload(of.result.val))
    if kind == 20:
        return ComponentValue(kind, names=tuple(_text(of.flags.data[i]) for i in range(of.flags.size)))
    raise ConfigError(f"component value kind {kind} (a resource or a map) cannot be checked on the native path")
