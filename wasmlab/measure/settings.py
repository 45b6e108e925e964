"""The parts a :class:`~wasmlab.measure.scenario.Scenario` is made of: what each request runs, the engine, its pool,
the compiled-module cache, and how it is measured.  Each holds what was asked (a preset's values are applied
by the Scenario, which resolves them into :mod:`wasmlab.config`'s configurations)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.workloads import Workload, distinct_copies, from_path, load_workload, recipe_workload
from wasmlab.workloads.recipe import Recipe
from wasmlab.workloads.recipe import load as load_recipe
from wasmlab.workloads.recipe import parse as parse_recipe
from wasmlab.workloads.recipe.parse import guest_path


@dataclass(frozen=True)
class EngineSettings:
    """Engine knobs on top of the preset's, what one request may use, and where the disk variant's artifacts live."""

    knobs: Mapping[str, Any] = field(default_factory=dict)
    limits: Mapping[str, Any] = field(default_factory=dict)  # fuel, deadline_ms, memory_bytes, max_wasm_stack, exhaustion ...
    artifact_dir: str = ""  # empty means <project>/data/artifacts


@dataclass(frozen=True)
class PoolSettings:
    """Pool slots (None: the preset's) and any other pool knob."""

    slots: int | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheSettings:
    """The compiled-module cache; None keeps the preset's (or wasmlab's) value."""

    policy: str | None = None
    size: int | None = None
    ttl_seconds: float | None = None


@dataclass(frozen=True)
class MeasurementSettings:
    """How much is measured, and how (see :class:`~wasmlab.measure.harness.MeasureConfig`)."""

    requests: int = 1000
    repeats: int = 5
    warmup: int = 200
    rounds: int = 10  # slices of each repetition's trace, the variants interleaved in each
    phases: bool = False
    cpu: int | None = None
    time_budget: float | str | None = None  # seconds for all timed requests (wasmlab.measure.budget); None: no budget


@dataclass(frozen=True)
class WorkloadSettings:
    """What each request runs: a catalog spec, a module by path (with what to call and check), or a recipe; the
    trace over several modules; and, for a multi-tenant host, the other workloads served beside it."""

    spec: str = "seed"
    recipe: str = ""  # a request recipe (YAML): module, WASI context, steps, expectations; replaces spec
    trace: str = "repeat"
    modules: int = 1
    zipf_s: float = 1.1
    seed: int = 0
    tenants: tuple[str, ...] = ()  # several workloads one host serves (the trace picks one per request); empty: spec alone
    entry: str | None = None
    args: tuple[int, ...] | None = None
    expect: int | None = None
    argv: tuple[str, ...] = ()  # for a WASI command given by path
    stdin: str = ""  # a file whose bytes are the command's stdin
    dirs: tuple[str, ...] = ()  # HOST::GUEST directories preopened read-only (HOST::GUEST:rw writable)
    stdout_match: str = ""  # a regular expression the command's stdout must match
    check: bool = True  # False: a module by path measured without checking its results (--no-check)
    expect_exit: int | None = None  # the exit code a WASI command given by path must end with
    expect_files: tuple[str, ...] = ()  # GUEST_PATH=sha256:HEX or GUEST_PATH=regex:R, files a command must write
    invoke: str = ""  # one call in WAVE, name(args), for a module or component given by path
    expect_value: str = ""  # what that call must return, in WAVE
    stdout_file: str = ""  # a file of the exact bytes a WASI command's stdout must hold (a standard suite's NAME.stdout.expected)
    stderr_file: str = ""  # the same for stderr

    def __post_init__(self) -> None:
        if self.args is not None:
            object.__setattr__(self, "args", tuple(self.args))
        for name in ("argv", "dirs", "expect_files", "tenants"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def specs(self) -> tuple[str, ...]:
        """Every workload the host serves."""
        return self.tenants or (self.spec,)

    def build(self) -> list[Workload]:
        """The workloads, checked: a recipe, a module by path (as a recipe when only a recipe can say what is asked), or
        the catalog's (``modules`` distinct copies of it)."""
        if self.recipe:
            if self.spec != "seed":
                raise ConfigError("--recipe says the module; allowed: --recipe or --workload, not both")
            self.recipe_only_checks()
            return [recipe_workload(load_recipe(self.recipe))]
        if self.spec.endswith((".yaml", ".yml")):
            self.recipe_only_checks()
            return [load_workload(self.spec)]
        if self.spec.endswith((".wasm", ".wat")) or "/" in self.spec:
            from_flags = self._recipe_from_flags()
            return [recipe_workload(from_flags)] if from_flags is not None else [self._module_by_path()]
        if not self.check:
            raise ConfigError(f"--no-check applies to a module given by path; the catalog workload {self.spec!r} is always "
                              f"checked against its expected result")
        if (self.entry is not None or self.args is not None or self.expect is not None or self.argv or self.stdin or self.dirs
                or self.stdout_match or self.expect_exit is not None or self.expect_files or self.invoke or self.expect_value
                or self.stdout_file or self.stderr_file):
            raise ConfigError(f"entry, args, expect, argv, stdin and dirs apply to a module given by path, "
                              f"not to the catalog workload {self.spec!r}")
        if self.modules == 1:
            return [load_workload(self.spec)]
        return distinct_copies(self.spec, self.modules)

    def recipe_only_checks(self) -> None:
        if (self.entry is not None or self.args is not None or self.expect is not None or self.argv or self.dirs or self.stdin
                or self.stdout_file or self.stderr_file):
            raise ConfigError("a recipe says the module and the request; allowed: a recipe without --entry, --args, --expect, "
                              "--argv, --stdin, --dir, --stdout-file and --stderr-file (its expect.stdout_file says those)")

    def _module_by_path(self) -> Workload:
        stdin = None
        if self.stdin:
            try:
                stdin = Path(self.stdin).read_bytes()
            except OSError as exc:
                raise ConfigError(f"stdin file {self.stdin!r} cannot be read ({exc.strerror})") from None
        preopens = []
        for spec in self.dirs:
            host, sep, guest = spec.partition("::")
            if not sep or not host or not guest:
                raise ConfigError(f"directory {spec!r} is not HOST::GUEST; allowed: e.g. ./data::/data, ./bench::.")
            preopens.append((host, guest_path(guest, f"directory {spec!r}: guest")))
        if self.stdout_match:
            try:
                re.compile(self.stdout_match.encode())  # matched on the output's bytes
            except re.error as exc:
                raise ConfigError(f"stdout pattern {self.stdout_match!r} is not a regular expression ({exc})") from None
        workload = from_path(self.spec, self.entry, self.args, self.expect, tuple(self.argv), stdin, tuple(preopens),
                             self.stdout_match or None)
        if not self.check:
            if self.expect is not None or self.stdout_match:
                raise ConfigError("--no-check contradicts --expect and --stdout-match; allowed: an expectation, or none "
                                  "with --no-check")
            workload = dataclasses.replace(workload, check="none")
        return workload

    def _recipe_from_flags(self) -> Recipe | None:
        """A module by path with a shortcut only a recipe can say (--expect-exit, --dir ...:rw, --expect-file), as one."""
        writable = any(spec.endswith(":rw") for spec in self.dirs)
        if self.invoke:
            if self.entry is not None or self.args is not None:
                raise ConfigError("--invoke names the export and its arguments; allowed: --invoke or --entry/--args, not both")
            result: Any = self.expect_value or self.expect
            return parse_recipe({"module": str(Path(self.spec).resolve()), "invoke": self.invoke,
                                 **({"expect": {"result": result}} if result is not None and result != "" else {})}, "--invoke")
        if self.expect_value:
            raise ConfigError("--expect-value applies with --invoke; allowed: --invoke 'name(args)' --expect-value 'value'")
        if self.expect_exit is None and not self.expect_files and not writable and not self.stdout_file and not self.stderr_file:
            return None
        if self.entry is not None or self.args is not None or self.expect is not None:
            raise ConfigError("--expect-exit, --expect-file, --stdout-file, --stderr-file and writable --dir apply to WASI commands; "
                              "allowed without --entry, --args and --expect (a recipe's steps say those for other modules)")
        expected = {}
        for flag, path in (("--stdout-file", self.stdout_file), ("--stderr-file", self.stderr_file)):
            if path and not Path(path).is_file():
                raise ConfigError(f"{flag} {path!r} is not a readable file; allowed: a file of the output's exact bytes, "
                                  f"e.g. NAME.stdout.expected")
            if path:
                expected[flag[2:].replace("-", "_")] = str(Path(path).resolve())
        dirs = []
        for spec in self.dirs:
            rw = spec.endswith(":rw")
            host, sep, guest = spec.removesuffix(":rw").partition("::")
            if not sep or not guest or (not host and not rw):
                raise ConfigError(f"directory {spec!r} is not HOST::GUEST[:rw]; allowed: e.g. ./data::/data, ./seed::/work:rw, ::/out:rw")
            dirs.append({"guest": guest, **({"host": str(Path(host).resolve())} if host else {}), "writable": rw})
        files = {}
        for spec in self.expect_files:
            path, eq, check = spec.partition("=")
            kind, colon, value = check.partition(":")
            if not eq or not colon or kind not in ("sha256", "regex"):
                raise ConfigError(f"--expect-file {spec!r} is not GUEST_PATH=sha256:HEX or GUEST_PATH=regex:R")
            files[path] = {kind: value}
        data: dict[str, Any] = {"module": str(Path(self.spec).resolve()),
                                "wasi": {"argv": list(self.argv), "dirs": dirs, **({"stdin": str(Path(self.stdin).resolve())} if self.stdin else {})},
                                "expect": {**({"exit": self.expect_exit} if self.expect_exit is not None else {}),
                                           **({"stdout_match": self.stdout_match} if self.stdout_match else {}),
                                           **({"files": files} if files else {}), **expected}}
        return parse_recipe(data, "--flags")


# Every flat name a Scenario takes (and ``to_dict`` writes, in this order), and the part and field that hold it.
FLAT: dict[str, tuple[str, str]] = {
    "workload": ("workload", "spec"), "requests": ("measurement", "requests"), "repeats": ("measurement", "repeats"),
    "warmup": ("measurement", "warmup"), "rounds": ("measurement", "rounds"), "slots": ("pool", "slots"), "pool": ("pool", "knobs"),
    "engine": ("engine", "knobs"), "cache_policy": ("cache", "policy"), "cache_size": ("cache", "size"),
    "ttl_seconds": ("cache", "ttl_seconds"), "trace": ("workload", "trace"), "modules": ("workload", "modules"),
    "zipf_s": ("workload", "zipf_s"), "seed": ("workload", "seed"), "phases": ("measurement", "phases"), "cpu": ("measurement", "cpu"),
    "limits": ("engine", "limits"), "entry": ("workload", "entry"), "args": ("workload", "args"), "expect": ("workload", "expect"),
    "artifact_dir": ("engine", "artifact_dir"), "argv": ("workload", "argv"), "stdin": ("workload", "stdin"),
    "dirs": ("workload", "dirs"), "stdout_match": ("workload", "stdout_match"), "check": ("workload", "check"),
    "recipe": ("workload", "recipe"), "expect_exit": ("workload", "expect_exit"), "expect_files": ("workload", "expect_files"),
    "invoke": ("workload", "invoke"), "expect_value": ("workload", "expect_value"), "tenants": ("workload", "tenants"),
    "stdout_file": ("workload", "stdout_file"), "stderr_file": ("workload", "stderr_file"),
    "time_budget": ("measurement", "time_budget"),
}
PARTS: dict[str, type] = {"workload": WorkloadSettings, "engine": EngineSettings, "pool": PoolSettings, "cache": CacheSettings,
                          "measurement": MeasurementSettings}
