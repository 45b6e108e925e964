"""One comparison of variants, described by a ``Scenario``: what the CLI, notebooks and widgets all run.

Knobs resolve in this order: wasmlab's defaults, then the preset (a real host's
settings), then single knobs given explicitly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from wasmlab.config import CacheConfig, EngineConfig, Limits, PoolConfig, get_preset
from wasmlab.errors import ConfigError, allowed
from wasmlab.host.callpaths import call_paths
from wasmlab.host.engine import EnginePool
from wasmlab.host.recipes import dry_run
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.host.variant import NAMED_VARIANTS, parse_variant
from wasmlab.measure.harness import MeasureConfig, measure
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.traces import Trace, make_trace
from wasmlab.workloads import Workload, distinct_copies, from_path, load_workload, recipe_workload
from wasmlab.workloads.recipe import Recipe
from wasmlab.workloads.recipe import load as load_recipe
from wasmlab.workloads.recipe import parse as parse_recipe

DEFAULT_VARIANTS = NAMED_VARIANTS


# Names for lists of call paths: ``both`` is the lean and api paths side by side, ``all`` every registered path.
CALL_PATH_LISTS = {"both": ("lean", "api")}


def expand_call_paths(spec: str) -> tuple[str, ...]:
    """The call paths ``spec`` names: one path, a comma list (``native,lean``), ``both`` (lean and api) or ``all``."""
    if spec == "all":
        return call_paths()
    if spec in CALL_PATH_LISTS:
        return CALL_PATH_LISTS[spec]
    paths = tuple(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    for path in paths or (spec,):
        if path not in call_paths():
            raise ConfigError(f"call path {path!r} is not allowed; allowed: {', '.join(call_paths())}, both, all, "
                              f"or a comma list such as native,lean")
    return paths


@dataclass(frozen=True)
class Scenario:
    """Everything that defines one side-by-side comparison of variants."""

    workload: str = "seed"
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    call_path: str = "lean"  # lean, api, native, a comma list of them, both (lean,api) or all: each variant on each, interleaved
    requests: int = 1000
    repeats: int = 5
    warmup: int = 200
    rounds: int = 10  # slices of each repetition's trace, the variants interleaved in each (MeasureConfig.rounds)
    preset: str | None = "seed"
    slots: int | None = None
    pool: Mapping[str, Any] = field(default_factory=dict)
    engine: Mapping[str, Any] = field(default_factory=dict)
    cache_policy: str | None = None
    cache_size: int | None = None
    ttl_seconds: float | None = None
    trace: str = "repeat"
    modules: int = 1
    zipf_s: float = 1.1
    seed: int = 0
    phases: bool = False
    cpu: int | None = None
    limits: Mapping[str, Any] = field(default_factory=dict)
    entry: str | None = None
    args: tuple[int, ...] | None = None
    expect: int | None = None
    artifact_dir: str = ""  # the disk variant's artifacts; empty means <project>/data/artifacts
    argv: tuple[str, ...] = ()  # for a WASI command given by path
    stdin: str = ""  # a file whose bytes are the command's stdin
    dirs: tuple[str, ...] = ()  # HOST::GUEST directories preopened read-only
    stdout_match: str = ""  # a regular expression the command's stdout must match
    check: bool = True  # False: a module by path measured without checking its results (--no-check)
    recipe: str = ""  # a request recipe (YAML): module, WASI context, steps, expectations; replaces workload
    expect_exit: int | None = None  # the exit code a WASI command given by path must end with
    expect_files: tuple[str, ...] = ()  # GUEST_PATH=sha256:HEX or GUEST_PATH=regex:R, files a command must write
    invoke: str = ""  # one call in WAVE, name(args), for a module or component given by path
    expect_value: str = ""  # what that call must return, in WAVE

    def __post_init__(self) -> None:
        if isinstance(self.variants, str):
            object.__setattr__(self, "variants", tuple(v.strip() for v in self.variants.split(",") if v.strip()))
        else:
            object.__setattr__(self, "variants", tuple(self.variants))
        if not self.variants:
            raise ConfigError("no variants given; allowed: " + ", ".join(NAMED_VARIANTS))
        if self.args is not None:
            object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "dirs", tuple(self.dirs))
        object.__setattr__(self, "expect_files", tuple(self.expect_files))
        paths = expand_call_paths(self.call_path)
        if len(paths) > 1:
            # Every variant on the first path (lean when listed: its variants keep their plain names) and again
            # pinned to each other path (``pooled+cached@native``), all interleaved in one run.
            default = "lean" if "lean" in paths else paths[0]
            pinned = tuple(v if "@" in v else f"{v}@{path}" for path in paths if path != default for v in self.variants)
            object.__setattr__(self, "variants", tuple(dict.fromkeys(self.variants + pinned)))
            object.__setattr__(self, "call_path", default)
        for v in self.variants:
            parse_variant(v)
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 1:
            raise ConfigError(f"requests = {self.requests!r} is out of range; allowed: an integer >= 1")
        # Building the configs validates every knob now, before anything is compiled.
        self.limits_config()
        self.engine_config()
        self.cache_config()
        self.measure_config()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise allowed(unknown[0], "scenario parameter", names)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["variants"] = list(self.variants)
        out["pool"] = dict(self.pool)
        out["engine"] = dict(self.engine)
        out["limits"] = dict(self.limits)
        out["args"] = list(self.args) if self.args is not None else None
        out["argv"] = list(self.argv)
        out["dirs"] = list(self.dirs)
        return out

    def engine_config(self) -> EngineConfig:
        """The engine knobs of pooled variants (on-demand variants use the same, allocator aside)."""
        base_pool, base_engine = PoolConfig(), {}
        if self.preset is not None:
            preset = get_preset(self.preset)
            base_pool, base_engine = preset.pool, dict(preset.engine)
        pool_changes = dict(self.pool)
        if self.slots is not None:
            pool_changes["slots"] = self.slots
        pool = base_pool.replace(**pool_changes)
        engine = EngineConfig(pool=pool)
        return engine.replace(**{**base_engine, **dict(self.engine)})

    def cache_config(self) -> CacheConfig:
        base = get_preset(self.preset).cache if self.preset is not None else CacheConfig()
        changes = {
            k: v
            for k, v in (("policy", self.cache_policy), ("size", self.cache_size), ("ttl_seconds", self.ttl_seconds))
            if v is not None
        }
        return base.replace(**changes)

    def limits_config(self) -> Limits:
        return Limits.from_dict(dict(self.limits))

    def measure_config(self) -> MeasureConfig:
        return MeasureConfig(warmup=self.warmup, repeats=self.repeats, phases=self.phases, cpu=self.cpu, rounds=self.rounds)

    def build_workloads(self) -> list[Workload]:
        workloads = self._workloads()
        for workload in workloads:
            dry_run(workload)  # a recipe's steps run once before anything is measured
        return workloads

    def recipe_only_checks(self) -> None:
        if self.entry is not None or self.args is not None or self.expect is not None or self.argv or self.dirs or self.stdin:
            raise ConfigError("a recipe says the module and the request; allowed: a recipe without --entry, --args, --expect, "
                              "--argv, --stdin and --dir")

    def _recipe_from_flags(self) -> Recipe | None:
        """A module by path with a shortcut only a recipe can say (--expect-exit, --dir ...:rw, --expect-file), as one."""
        writable = any(spec.endswith(":rw") for spec in self.dirs)
        if self.invoke:
            if self.entry is not None or self.args is not None:
                raise ConfigError("--invoke names the export and its arguments; allowed: --invoke or --entry/--args, not both")
            result: Any = self.expect_value or self.expect
            return parse_recipe({"module": str(Path(self.workload).resolve()), "invoke": self.invoke,
                                 **({"expect": {"result": result}} if result is not None and result != "" else {})}, "--invoke")
        if self.expect_value:
            raise ConfigError("--expect-value applies with --invoke; allowed: --invoke 'name(args)' --expect-value 'value'")
        if self.expect_exit is None and not self.expect_files and not writable:
            return None
        if self.entry is not None or self.args is not None or self.expect is not None:
            raise ConfigError("--expect-exit, --expect-file and writable --dir apply to WASI commands; allowed without "
                              "--entry, --args and --expect (a recipe's steps say those for other modules)")
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
        data: dict[str, Any] = {"module": str(Path(self.workload).resolve()),
                                "wasi": {"argv": list(self.argv), "dirs": dirs, **({"stdin": str(Path(self.stdin).resolve())} if self.stdin else {})},
                                "expect": {**({"exit": self.expect_exit} if self.expect_exit is not None else {}),
                                           **({"stdout_match": self.stdout_match} if self.stdout_match else {}),
                                           **({"files": files} if files else {})}}
        return parse_recipe(data, "--flags")

    def _workloads(self) -> list[Workload]:
        if self.recipe:
            if self.workload != "seed":
                raise ConfigError("--recipe says the module; allowed: --recipe or --workload, not both")
            self.recipe_only_checks()
            return [recipe_workload(load_recipe(self.recipe))]
        if self.workload.endswith((".yaml", ".yml")):
            self.recipe_only_checks()
            return [load_workload(self.workload)]
        if self.workload.endswith((".wasm", ".wat")) or "/" in self.workload:
            from_flags = self._recipe_from_flags()
            if from_flags is not None:
                return [recipe_workload(from_flags)]
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
                    raise ConfigError(f"directory {spec!r} is not HOST::GUEST; allowed: e.g. ./data::/data")
                preopens.append((host, guest))
            if self.stdout_match:
                try:
                    re.compile(self.stdout_match)
                except re.error as exc:
                    raise ConfigError(f"stdout pattern {self.stdout_match!r} is not a regular expression ({exc})") from None
            workload = from_path(self.workload, self.entry, self.args, self.expect, tuple(self.argv), stdin, tuple(preopens),
                                 self.stdout_match or None)
            if not self.check:
                if self.expect is not None or self.stdout_match:
                    raise ConfigError("--no-check contradicts --expect and --stdout-match; allowed: an expectation, or none "
                                      "with --no-check")
                workload = dataclasses.replace(workload, check="none")
            return [workload]
        if not self.check:
            raise ConfigError(f"--no-check applies to a module given by path; the catalog workload {self.workload!r} is always "
                              f"checked against its expected result")
        if (self.entry is not None or self.args is not None or self.expect is not None or self.argv or self.stdin or self.dirs
                or self.stdout_match or self.expect_exit is not None or self.expect_files or self.invoke or self.expect_value):
            raise ConfigError(f"entry, args, expect, argv, stdin and dirs apply to a module given by path, "
                              f"not to the catalog workload {self.workload!r}")
        if self.modules == 1:
            return [load_workload(self.workload)]
        return distinct_copies(self.workload, self.modules)

    def build_trace(self) -> Trace:
        return make_trace(self.trace, self.requests, self.modules, self.seed, self.zipf_s)

    def build_runtimes(self, engines: EnginePool | None = None) -> dict[str, Runtime]:
        workloads = self.build_workloads()
        limits = self.limits_config()
        for w in workloads:
            if w.expected_outcome == "timeout" and limits.fuel is None and limits.deadline_ms is None:
                raise ConfigError(f"workload {w.name!r} never returns, so it needs a budget; allowed: set a deadline "
                                  f"(--deadline-ms) or fuel (--fuel)")
        call_path = self.call_path
        variants = self.variants
        if any(w.component for w in workloads) and {v.partition("@")[0] for v in variants} == set(DEFAULT_VARIANTS):
            # wasmtime-py 50 has no component InstancePre: the default list leaves pre out (asking for it is an error).
            variants = tuple(v for v in variants if not parse_variant(v).pre)
        if any(w.driver for w in workloads):
            # Library-style modules go through wasmtime-py's objects: every result says call_path api.
            call_path = "api"
        return build_runtimes(
            variants, self.engine_config(), self.cache_config(), workloads, call_path, engines, limits,
            Path(self.artifact_dir) if self.artifact_dir else None,
        )


def run(scenario: Scenario, progress: Callable[[str, int, int], None] | None = None) -> Measurement:
    """Measure ``scenario``: all its variants side by side in this process."""
    trace = scenario.build_trace()
    runtimes = scenario.build_runtimes()
    workloads = next(iter(runtimes.values())).workloads
    parameters = {
        **scenario.to_dict(),
        "engine_config": scenario.engine_config().to_dict(),
        "cache_config": scenario.cache_config().to_dict(),
        "limits_config": scenario.limits_config().to_dict(),
    }
    measurement = measure(runtimes, trace, scenario.measure_config(), parameters, progress)
    first = workloads[0].describe()
    if len(workloads) > 1:
        first["workload"] = f"{len(workloads)} distinct modules like {scenario.workload}"
    return measurement.annotated({**first, "preset": scenario.preset}, {**first, "preset": scenario.preset or "none"})
