"""The ``Workload`` model: a module (or component) and how one request calls it, with what it must return.

Every workload knows the value its entry point must return (or the exit code, output pattern or
typed outcome a request must end with), so a runtime that skipped work is caught.  This module is
the bottom of the workloads layer: generators, files, the catalog and components build ``Workload``s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads.expectation import Expectation, expectation_of

WASM_PAGE = 65536
VALUE_TYPES = ("i32", "i64")
# Component parameters that get a default argument (zero) when none is given.
COMPONENT_INT_TYPES = ("u8", "s8", "u16", "s16", "u32", "s32", "u64", "s64")
WASM_MAGIC = b"\0asm"
CORE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"
# What each request's result is checked against: the workload's expected value (or output pattern, exit
# code, or the outcome a hostile guest provokes), the first request's own result (a module given by path
# without an expectation: the result must not change between requests), or nothing (--no-check).
CHECKS = ("expected", "first-result", "none")


@dataclass(frozen=True)
class ComponentCall:
    """A call a component request makes before its entry call, in the same instance (a recipe's earlier ``invoke``
    steps): the export, its shapes (a ``Signature``), plain argument values, and what it must return (``None``: the
    first request's result, when it returns anything)."""

    entry: str
    signature: Any = field(compare=False, repr=False)
    args: tuple[Any, ...] = ()
    expected: Any = None


@dataclass(frozen=True)
class ComponentStub:
    """A component function import a recipe stubs (``imports:``): ``name`` its full name (``INSTANCE#FUNCTION``, an
    instance inside an imported instance ``OUTER#INNER#FUNCTION``, a top-level import's bare name), its shapes (a
    ``Signature``) and the plain value every call of it returns (``None`` for a function without a result)."""

    name: str
    signature: Any = field(compare=False, repr=False)
    value: Any = None

    @property
    def instance(self) -> tuple[str, ...]:
        """The imported instances it sits in, outermost first (empty: a top-level function import)."""
        return tuple(self.name.split("#")[:-1])

    @property
    def function(self) -> str:
        return self.name.split("#")[-1]


@dataclass(frozen=True)
class Workload:
    """A module and how to call it: ``entry(*args)`` must return ``expected``."""

    name: str
    wasm: bytes
    entry: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    args: tuple[Any, ...]
    expected: Any
    kind: str = "core"
    provenance: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    wasi: bool = False
    # What a request is expected to end with: "ok", or the typed outcome a hostile guest provokes.
    expected_outcome: str = "ok"
    # WASI commands: their argv and stdin, what their output must match, the exit code that means success.
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None
    stdout_pattern: str | None = None
    stderr_pattern: str | None = None
    expected_exit: int = 0
    license: str = ""
    # A host-function set the lab links (wasmlab.workloads.hostfuncs), and for library-style modules the
    # driver that runs a request (allocate, pass ``driver_input``, call, read the output back).
    host_imports: str = ""
    driver: str = ""
    driver_input: str = ""
    # Host directories a WASI command sees, as (host path, guest path) pairs, read-only.
    preopens: tuple[tuple[str, str], ...] = ()
    # Components: the entry's parameter and result shapes (wasmlab.workloads.signature.Signature);
    # params/results then hold their WIT text and args/expected are plain values.
    signature: Any = field(default=None, compare=False, repr=False)
    check: str = "expected"
    # A request recipe (wasmlab.workloads.recipe.Recipe): its steps, environment, writable directories, expectations.
    recipe: Any = field(default=None, compare=False, repr=False)
    # Components: the calls a request makes, in order, before the call of ``entry`` (a recipe's invoke steps).
    before: tuple[ComponentCall, ...] = ()
    # A component command (wasmlab.workloads.component_command): ``entry`` is its wasi:cli/run function, and a request
    # ends with an exit status (run's ok 0, err 1, or wasi:cli/exit's) and outputs, checked as a core command's.
    command: bool = False
    # Components: the function imports a recipe stubs, each defined on the component linker as a host function that
    # returns its constant (the arguments ignored).
    stubs: tuple[ComponentStub, ...] = ()
    # A core module's start-up export (a recipe's ``init:``): the first step of every request, on its fresh instance, unless
    # the variant serves the module's Wizer snapshot (+snapshot, wasmlab.host.snapshot), taken after it ran.
    init: str = ""
    # Everything a request is checked against, gathered once from the fields above (wasmlab.workloads.expectation):
    # what every call path reads, so none reaches into the fields or the recipe's expect itself.  Always built by
    # __post_init__; a value passed in is replaced, so that a copy with changed fields (dataclasses.replace, or
    # Workload(**{**w.__dict__, ...})) gets the expectation of its own fields.
    expectation: Expectation = field(default=Expectation(), compare=False, repr=False)

    @property
    def captures_output(self) -> bool:
        return not self.driver and bool(self.argv or self.stdin is not None or self.stdout_pattern or self.stderr_pattern
                                        or self.preopens or (self.check == "first-result" and self.wasi and not self.results)
                                        or (self.recipe is not None and self.wasi) or self.command)

    @property
    def steps(self) -> bool:
        """A recipe with steps: the request is its steps, not one call of ``entry``."""
        return self.recipe is not None and bool(self.recipe.steps)

    @property
    def step_labels(self) -> tuple[str, ...]:
        """How ``--phases`` names the steps of one request: a recipe's steps, or a component's calls when it makes
        several (``1. invoke configure``, ``2. invoke on-request``); empty for a request of one call."""
        if self.steps:
            return tuple(self.recipe.step_labels)
        if self.before:
            return tuple(f"{k}. invoke {name}" for k, name in enumerate([c.entry for c in self.before] + [self.entry], 1))
        return ()

    @property
    def component(self) -> bool:
        return self.kind == "component"

    @property
    def linked(self) -> bool:
        """A core module instantiated through a core linker: it imports WASI or host functions."""
        return not self.component and (self.wasi or bool(self.host_imports) or (self.recipe is not None and bool(self.recipe.imports)))

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise allowed(self.check, f"workload {self.name!r} check", CHECKS)
        for t in () if self.component else self.params + self.results:
            if t not in VALUE_TYPES:
                raise allowed(t, f"workload {self.name!r} value type", VALUE_TYPES)
        if len(self.args) != len(self.params):
            raise ConfigError(
                f"workload {self.name!r} has {len(self.args)} argument(s) for {len(self.params)} parameter(s)"
            )
        if len(self.results) > 1:
            raise ConfigError(f"workload {self.name!r} returns {len(self.results)} values; allowed: at most 1")
        if not self.results and self.expected is not None:
            raise ConfigError(f"workload {self.name!r} returns nothing, so it cannot expect {self.expected!r}")
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.wasm).hexdigest())
        object.__setattr__(self, "expectation", expectation_of(self))

    @property
    def size_bytes(self) -> int:
        return len(self.wasm)

    def describe(self) -> dict[str, Any]:
        """A flat record for tables and result metadata."""
        return {
            "workload": self.name,
            "workload_kind": self.kind,
            "workload_bytes": self.size_bytes,
            "workload_sha256": self.sha256,
            "workload_entry": self.entry,
            "workload_provenance": self.provenance,
            "workload_expected_outcome": self.expected_outcome,
            "workload_argv": " ".join(self.argv),
            "workload_check": self.check,
        }


def wasi_command(name: str, wasm: bytes, argv: tuple[str, ...], stdout: str | None = None, stderr: str | None = None,
                 expected_exit: int = 0, stdin: bytes | None = None, provenance: str = "", license: str = "") -> Workload:
    """A WASI preview1 command: each request runs ``_start`` with ``argv`` in a fresh WASI context and
    checks the exit code and that stdout/stderr match the given regular expressions."""
    return Workload(
        name=name, wasm=wasm, entry="_start", params=(), results=(), args=(), expected=None, kind="wasi-command",
        provenance=provenance, wasi=True, argv=tuple(argv), stdin=stdin, stdout_pattern=stdout, stderr_pattern=stderr,
        expected_exit=expected_exit, license=license,
    )
