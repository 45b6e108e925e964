"""What a parsed recipe is: its steps (calls, writes, reads, WAVE invocations), its directories, its ``expect`` and the
recipe itself, all frozen.  Parsing (:mod:`.parse`) makes them; binding (:mod:`.binding`) checks them against a module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmlab.workloads.expectation import ExpectedBytes

RECIPE_KEYS = ("module", "name", "wasi", "imports", "steps", "invoke", "expect", "allocator", "memory", "driver", "input", "init")
# The start-up export a recipe's ``init:`` names when it says none: Wizer's own default.
DEFAULT_INIT = "wizer.initialize"
WASI_KEYS = ("argv", "stdin", "env", "dirs")
DIR_KEYS = ("host", "guest", "writable", "resource")
EXPECT_KEYS = ("exit", "stdout_match", "stderr_match", "stdout_file", "stderr_file", "stdout_sha256", "stderr_sha256", "result", "bytes",
               "files")
WRITE_SOURCES = ("text", "hex", "file", "repeat")
DIGESTS = ("sha256", "hex", "text", "regex")
FILE_CHECKS = ("sha256", "regex")


@dataclass(frozen=True)
class Expr:
    """An integer: a literal, a name set by an earlier step plus an offset, a nested call's result, or the
    little-endian u32 in guest memory at another expression (``{load: EXPR}``, e.g. a length the guest wrote)."""

    name: str | None = None
    offset: int = 0
    call: Call | None = None
    load: Expr | None = None


@dataclass(frozen=True)
class PtrArray:
    """i32 values written into guest memory as an array; the argument is the array's address."""

    items: tuple[Expr, ...]
    at: Expr | None = None


Arg = Expr | PtrArray


@dataclass(frozen=True)
class Call:
    export: str
    args: tuple[Arg, ...] = ()
    name: str | None = None  # ``as``
    where: str = ""  # the recipe key, for messages

    @property
    def label(self) -> str:
        """How ``--phases`` names the step."""
        return f"call {self.export}"


@dataclass(frozen=True)
class Write:
    at: Expr
    data: bytes
    where: str = ""

    @property
    def label(self) -> str:
        return f"write {len(self.data)} B"


@dataclass(frozen=True)
class Read:
    at: Expr
    length: Expr
    name: str
    where: str = ""

    @property
    def label(self) -> str:
        return f"read {self.name}"


@dataclass(frozen=True)
class Invoke:
    """One call in WAVE (``name(args)``), as ``wasmtime run --invoke`` writes it: a component export with typed
    arguments, or a core export with integers; ``expect`` (WAVE) what this call must return."""

    text: str
    expect: str | None = None
    where: str = ""

    @property
    def export(self) -> str:
        return self.text.split("(", 1)[0].strip()

    @property
    def label(self) -> str:
        return f"invoke {self.export}"


Step = Call | Write | Read | Invoke


@dataclass(frozen=True)
class Dir:
    guest: str
    host: str | None = None  # None: a fresh empty directory (or, with ``resource``, resolved from the package)
    writable: bool = False
    resource: str | None = None  # a folder of the catalog module's package (extracted once when it is fetched)


@dataclass(frozen=True)
class Expect:
    exit: int | None = None
    stdout_match: str | None = None
    stderr_match: str | None = None
    # The exact bytes of stdout / stderr, read from a file beside the recipe (a standard suite's NAME.stdout.expected).
    stdout_file: ExpectedBytes | None = None
    stderr_file: ExpectedBytes | None = None
    stdout_sha256: str | None = None  # lower-case hex
    stderr_sha256: str | None = None
    result: int | str | None = None  # an integer, or for a component's export a value in WAVE
    bytes: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (sha256|hex|text, value)
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # guest path -> (sha256|regex, value)

    @property
    def anything(self) -> bool:
        return (any(v is not None for v in (self.exit, self.stdout_match, self.stderr_match, self.stdout_file, self.stderr_file,
                                                self.stdout_sha256, self.stderr_sha256, self.result))
                or bool(self.bytes or self.files))


@dataclass(frozen=True)
class Recipe:
    """A parsed, statically checked recipe (see the module docstring)."""

    source: str  # the recipe file (or "--flags")
    module: str  # as written
    module_path: Path | None  # resolved, when a path
    name: str
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[Dir, ...] = ()
    steps: tuple[Step, ...] = ()
    expect: Expect = field(default_factory=Expect)
    allocator: str = "malloc"
    memory: str = "memory"
    wasi: bool = False
    # What a recipe cannot say: a plugin request driver (wasmlab.drivers entry points) and the input it is given.
    driver: str = ""
    input: str = ""
    # One call in WAVE (``name(args)``): a component's export with typed arguments, or a core export with integers.
    invoke: str | None = None
    # Host functions the guest imports that the recipe stubs: a core module's "module.name" -> the integer each returns;
    # a component's "INSTANCE#FUNCTION" -> a WAVE constant (None: a function without a result), typed when bound.
    imports: Mapping[str, Any] = field(default_factory=dict)
    # The types of the exports the steps call, (params, results) by name: read once from the module when the recipe
    # is checked against it (to_workload), so the call paths need not compile the module again to learn them.
    signatures: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # The module's start-up function (``init:``): called first on every request's fresh instance (the first step, once
    # bound), unless the variant serves the module's Wizer snapshot (+snapshot), taken after it ran.  ``None``: as
    # written, none named (the default, wizer.initialize, applies when the module exports it).
    init: str | None = None

    @property
    def step_labels(self) -> tuple[str, ...]:
        """Each step's name in ``--phases``, numbered from 1 so that two calls of one export stay apart."""
        return tuple(f"{k}. {step.label}" for k, step in enumerate(self.steps, 1))

    @property
    def calls(self) -> list[Call]:
        """Every call the steps make, nested ones included, in order."""
        found: list[Call] = []

        def visit(value: Any) -> None:
            if isinstance(value, Call):
                found.append(value)
                for arg in value.args:
                    visit(arg)
            elif isinstance(value, Expr) and value.call is not None:
                visit(value.call)
            elif isinstance(value, Expr) and value.load is not None:
                visit(value.load)
            elif isinstance(value, PtrArray):
                for item in value.items:
                    visit(item)
                if value.at is not None:
                    visit(value.at)
            elif isinstance(value, (Write, Read)):
                visit(value.at)
                if isinstance(value, Read):
                    visit(value.length)
        for step in self.steps:
            visit(step)
        return found

    @property
    def needs_allocator(self) -> bool:
        """Whether a pointer array without ``at:`` has the ``allocator`` export place it."""
        return any(isinstance(a, PtrArray) and a.at is None for c in self.calls for a in c.args)

    @property
    def uses_memory(self) -> bool:
        def loads(value: Any) -> bool:
            if isinstance(value, Expr):
                return value.load is not None or (value.call is not None and any(loads(a) for a in value.call.args))
            if isinstance(value, PtrArray):
                return True
            return False
        return (any(isinstance(s, (Write, Read)) for s in self.steps)
                or any(loads(a) for c in self.calls for a in c.args))
