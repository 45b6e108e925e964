"""One comparison of variants, described by a ``Scenario``: what the CLI, notebooks and widgets all run.

A Scenario is made of parts (:mod:`wasmlab.measure.settings`): the workload, the engine, its pool, the cache and
the measurement.  It is also built from, and stored as, one flat mapping of named parameters (``requests``,
``slots``, ``pool``...): the names sweeps, notebooks and every stored ``metadata.json`` use, so results stay
comparable across versions.  Knobs resolve in this order: wasmlab's defaults, then the preset (a real host's
settings), then single knobs given explicitly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmlab.config import CacheConfig, EngineConfig, Limits, PoolConfig, check_samples_fit, get_preset
from wasmlab.errors import ConfigError, Interrupted, allowed
from wasmlab.host import other_runtimes
from wasmlab.host.callpaths import call_paths, native, reuse
from wasmlab.host.engine import EnginePool, preflight
from wasmlab.host.recipes import dry_run
from wasmlab.host.runtime import Runtime, build_runtimes
from wasmlab.host.runtime_axis import WASMTIME, expand_runtimes
from wasmlab.host.variant import NAMED_VARIANTS, parse_variant, with_runtimes
from wasmlab.measure.harness import MeasureConfig, measure
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.settings import (
    FLAT,
    PARTS,
    CacheSettings,
    EngineSettings,
    MeasurementSettings,
    PoolSettings,
    WorkloadSettings,
)
from wasmlab.measure.traces import Trace, make_trace
from wasmlab.workloads import Workload

DEFAULT_VARIANTS = NAMED_VARIANTS


# Names for lists of call paths: ``both`` is the lean and api paths side by side, ``all`` every registered path.
CALL_PATH_LISTS = {"both": ("lean", "api")}
# ``wasmlab reproduce``'s default, decided when its workloads are built (``Scenario.call_path_for``): native, as the
# seed's gateway and ``concurrency`` and ``advise`` serve requests from a native host, unless the native path would
# refuse a variant (``disk``), a cache policy (all but lru) or a workload, which then run on the lean path, where
# everything is served.  Every result records the path that ran.
BY_KIND = "by-kind"


def expand_call_paths(spec: str) -> tuple[str, ...]:
    """The call paths ``spec`` names: one path, a comma list (``native,lean``), ``both`` (lean and api), ``all``, or
    :data:`BY_KIND` (one path, decided by the workloads)."""
    if spec == "all":
        return call_paths()
    if spec == BY_KIND:
        return (BY_KIND,)
    if spec in CALL_PATH_LISTS:
        return CALL_PATH_LISTS[spec]
    paths = tuple(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    for path in paths or (spec,):
        if path not in call_paths():
            raise ConfigError(f"call path {path!r} is not allowed; allowed: {', '.join(call_paths())}, both, all, "
                              f"or a comma list such as native,lean")
    return paths


# The flat names in the order ``to_dict`` writes them (the order stored results have always had).
ORDER = ("workload", "variants", "call_path", "requests", "repeats", "warmup", "rounds", "preset", "slots", "pool", "engine",
         "cache_policy", "cache_size", "ttl_seconds", "trace", "modules", "zipf_s", "seed", "phases", "cpu", "limits", "entry", "args",
         "expect", "artifact_dir", "argv", "stdin", "dirs", "stdout_match", "check", "recipe", "expect_exit", "expect_files", "invoke",
         "expect_value", "tenants", "stdout_file", "stderr_file", "time_budget")
# Written by ``to_dict`` only when set: results stored before they existed compare unchanged.
WHEN_SET = ("tenants", "stdout_file", "stderr_file", "time_budget")
TOP = ("variants", "call_path", "preset", "runtime")


def refuse_reuse_with(variants: Sequence[str], phases: bool, limits: Limits) -> None:
    """A one-line ConfigError when a variant reuses instances (+reuseN) with what reuse does not serve: phase timing
    (a reused request has no instantiation to time), or a per-request budget (fuel and an epoch deadline are set per
    store, and a kept store would carry one request's spent budget into the next)."""
    reusing = [v for v in variants if parse_variant(v).reuse > 1]
    if not reusing:
        return
    clash = ("--phases" if phases else f"--fuel {limits.fuel}" if limits.fuel is not None else
             f"--deadline-ms {limits.deadline_ms:g}" if limits.deadline_ms is not None else None)
    if clash:
        raise ConfigError(f"variant {reusing[0]!r} reuses instances, which {clash} cannot be combined with; allowed: "
                          f"{clash.split()[0]} with variants without +reuseN, or +reuseN without {clash.split()[0]}")


@dataclass(frozen=True, init=False)
class Scenario:
    """Everything that defines one side-by-side comparison of variants."""

    workload: WorkloadSettings
    variants: tuple[str, ...]
    call_path: str  # lean, api, native, a comma list of them, both (lean,api) or all: each variant on each, interleaved
    runtime: str  # wasmtime, v8, extism or a comma list: each variant on each runtime (``cached@v8``), interleaved
    preset: str | None
    engine: EngineSettings
    pool: PoolSettings
    cache: CacheSettings
    measurement: MeasurementSettings

    def __init__(self, workload: WorkloadSettings | str = "seed", variants: Sequence[str] | str = DEFAULT_VARIANTS,
                 call_path: str | None = "lean", preset: str | None = "seed", engine: EngineSettings | Mapping[str, Any] | None = None,
                 pool: PoolSettings | Mapping[str, Any] | None = None, cache: CacheSettings | None = None,
                 measurement: MeasurementSettings | None = None, runtime: str = WASMTIME, **flat: Any) -> None:
        """The parts, or any part's fields by their flat names (``requests=20``, ``slots=2``; ``workload`` as a spec,
        ``pool`` and ``engine`` as mappings of knobs): the form sweeps, notebooks and stored parameters use.
        ``call_path`` None is :data:`BY_KIND` (``--call-path`` not given)."""
        for name, value in (("workload", workload), ("pool", pool), ("engine", engine)):
            if isinstance(value, (str, Mapping)):
                flat[name] = value if isinstance(value, str) else dict(value)
        given: dict[str, Any] = {"workload": workload, "engine": engine, "pool": pool, "cache": cache, "measurement": measurement}
        given = {part: None if isinstance(value, (str, Mapping)) else value for part, value in given.items()}
        changes: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
        for name, value in flat.items():
            if name not in FLAT:
                raise TypeError(f"Scenario() got an unexpected keyword argument {name!r}")
            part, attribute = FLAT[name]
            changes[part][attribute] = value
        for part, kind in PARTS.items():
            base = given[part] or kind()
            object.__setattr__(self, part, dataclasses.replace(base, **changes[part]) if changes[part] else base)
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "call_path", BY_KIND if call_path is None else call_path)
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "runtime", runtime)
        self._settle()

    def _settle(self) -> None:
        """Variants per call path, every name and knob checked now, before anything is compiled."""
        if isinstance(self.variants, str):
            object.__setattr__(self, "variants", tuple(v.strip() for v in self.variants.split(",") if v.strip()))
        else:
            object.__setattr__(self, "variants", tuple(self.variants))
        if not self.variants:
            raise ConfigError("no variants given; allowed: " + ", ".join(NAMED_VARIANTS))
        paths = expand_call_paths(self.call_path)
        if len(paths) > 1:
            # Every variant on the first path (lean when listed: its variants keep their plain names) and again
            # pinned to each other path (``pooled+cached@native``), all interleaved in one run.
            default = "lean" if "lean" in paths else paths[0]
            pinned = tuple(v if "@" in v else f"{v}@{path}" for path in paths if path != default for v in self.variants)
            object.__setattr__(self, "variants", tuple(dict.fromkeys(self.variants + pinned)))
            object.__setattr__(self, "call_path", default)
        runtimes = expand_runtimes(self.runtime)
        object.__setattr__(self, "runtime", ",".join(runtimes))
        variants, notes = with_runtimes(self.variants, runtimes)
        if not variants:
            raise ConfigError(f"no variant runs on {self.runtime}: {notes[0] if notes else ''}; allowed: baseline, cached")
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "runtime_notes", notes)
        parsed = [parse_variant(v) for v in self.variants]
        if self.measurement.phases and any(v.runtime != WASMTIME for v in parsed):
            raise ConfigError("--phases times wasmtime's phases; allowed: --phases with wasmtime variants only, or other runtimes' "
                              "variants (v8, extism) without it")
        requests = self.measurement.requests
        refuse_reuse_with(self.variants, self.measurement.phases, self.limits_config())
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ConfigError(f"requests = {requests!r} is out of range; allowed: an integer >= 1")
        self.limits_config()
        measure = self.measure_config()
        # Before a trace or a sample is made: every request of every repetition and variant is kept until saved.
        count = len(self.variants)
        # The refusal names the larger factor: the one a user most likely mistyped.
        what, value = ("requests", requests) if requests >= measure.repeats else ("repeats", measure.repeats)
        check_samples_fit(what, value, requests * measure.repeats * count,
                          f"{requests:,} requests x {measure.repeats:,} repeats x {count} variants")
        engine = self.engine_config()
        if any(parse_variant(v).pooled for v in self.variants):
            # A pool reserves its address space when its engine is made; wasmtime aborts the process if it cannot.
            preflight(engine.replace(allocator="pooling"))
        self.cache_config()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """A Scenario from its flat parameters (as :meth:`to_dict` writes them, or a sweep point's)."""
        names = set(FLAT) | set(TOP)
        unknown = sorted(set(data) - names)
        if unknown:
            raise allowed(unknown[0], "scenario parameter", names)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The flat parameters, JSON-ready; ``tenants`` only when set (results stored before it compare unchanged)."""
        out: dict[str, Any] = {}
        for name in ORDER:
            if name in TOP:
                value = getattr(self, name)
            else:
                part, attribute = FLAT[name]
                value = getattr(getattr(self, part), attribute)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        for name in WHEN_SET:
            if not out[name]:
                del out[name]
        if self.runtime != WASMTIME:  # only when asked: results stored before the runtime axis compare unchanged
            out["runtime"] = self.runtime
        return out

    # Read where a run reports its progress (the isolating runner, the explorer): short for the measurement's.
    @property
    def requests(self) -> int:
        return self.measurement.requests

    @property
    def repeats(self) -> int:
        return self.measurement.repeats

    def engine_config(self) -> EngineConfig:
        """The engine knobs of pooled variants (on-demand variants use the same, allocator aside)."""
        base_pool, base_engine = PoolConfig(), {}
        if self.preset is not None:
            preset = get_preset(self.preset)
            base_pool, base_engine = preset.pool, dict(preset.engine)
        pool_changes = dict(self.pool.knobs)
        if self.pool.slots is not None:
            pool_changes["slots"] = self.pool.slots
        pool = base_pool.replace(**pool_changes)
        engine = EngineConfig(pool=pool)
        return engine.replace(**{**base_engine, **dict(self.engine.knobs)})

    def cache_config(self) -> CacheConfig:
        base = get_preset(self.preset).cache if self.preset is not None else CacheConfig()
        cache = self.cache
        changes = {k: v for k, v in (("policy", cache.policy), ("size", cache.size), ("ttl_seconds", cache.ttl_seconds)) if v is not None}
        return base.replace(**changes)

    def limits_config(self) -> Limits:
        return Limits.from_dict(dict(self.engine.limits))

    def measure_config(self) -> MeasureConfig:
        m = self.measurement
        return MeasureConfig(warmup=m.warmup, repeats=m.repeats, phases=m.phases, cpu=m.cpu, rounds=m.rounds,
                             time_budget_s=m.time_budget)

    def build_workloads(self) -> list[Workload]:
        workloads = self.workload.build()
        for workload in workloads:
            dry_run(workload)  # a recipe's steps run once before anything is measured
        return workloads

    def build_trace(self) -> Trace:
        w = self.workload
        return make_trace(w.trace, self.measurement.requests, w.modules, w.seed, w.zipf_s)

    def build_runtimes(self, engines: EnginePool | None = None) -> dict[str, Runtime]:
        workloads = self.build_workloads()
        limits = self.limits_config()
        for w in workloads:
            if w.expected_outcome == "timeout" and limits.fuel is None and limits.deadline_ms is None:
                raise ConfigError(f"workload {w.name!r} never returns, so it needs a budget; allowed: set a deadline "
                                  f"(--deadline-ms) or fuel (--fuel)")
        variants = self.variants
        if any(w.component for w in workloads) and {v.partition("@")[0] for v in variants} == set(DEFAULT_VARIANTS):
            # wasmtime-py 50 has no component InstancePre: the default list leaves pre out (asking for it is an error).
            variants = tuple(v for v in variants if not parse_variant(v).pre)
        artifacts = self.engine.artifact_dir
        return build_runtimes(variants, self.engine_config(), self.cache_config(), workloads, self.call_path_for(workloads),
                              engines, limits, Path(artifacts) if artifacts else None)

    def call_path_for(self, workloads: Sequence[Workload]) -> str:
        """The path the variants without one of their own (``@native``) are served on, for these built workloads."""
        if any(w.driver for w in workloads):
            # Library-style modules go through wasmtime-py's objects: every result says call_path api.
            return "api"
        if self.call_path == BY_KIND:
            cache = self.cache_config()
            refused = native_refusal(self.variants, cache.policy, cache.size, workloads)
            return "lean" if refused else "native"
        return self.call_path


def native_refusal(variants: Sequence[str], cache_policy: str, cache_size: int, workloads: Sequence[Workload]) -> str | None:
    """Why the native path would refuse to serve these variants, cache policy and workloads (one line), or ``None``:
    what ``reproduce`` asks before it defaults to the native path."""
    wasmtime_variants = [v for v in variants if parse_variant(v).runtime == WASMTIME]  # another runtime's are its own host's
    for name in wasmtime_variants:
        variant = parse_variant(name)
        if variant.disk:
            return f"variant {name!r} loads compiled artifacts from disk"
        if variant.reuse > 1:
            reason = next(filter(None, (reuse.refusal(w, native=True) for w in workloads)), None)
            if reason:
                return reason
    if cache_size and cache_policy != "lru" and any(parse_variant(v).cached for v in wasmtime_variants):
        return f"cache policy {cache_policy!r} is implemented in Python only"
    return next(filter(None, (native.refusal(w) for w in workloads if not w.component)), None)


def run(scenario: Scenario, progress: Callable[[str, int, int], None] | None = None) -> Measurement:
    """Measure ``scenario``: all its variants side by side in this process."""
    trace = scenario.build_trace()
    runtimes = scenario.build_runtimes()
    workloads = next(iter(runtimes.values())).workloads
    parameters = {
        **scenario.to_dict(),
        "call_path": scenario.call_path_for(workloads),  # the one that ran, not BY_KIND
        "engine_config": scenario.engine_config().to_dict(),
        "cache_config": scenario.cache_config().to_dict(),
        "limits_config": scenario.limits_config().to_dict(),
    }
    first = workloads[0].describe()
    if len(workloads) > 1:
        first["workload"] = f"{len(workloads)} distinct modules like {scenario.workload.spec}"
    try:
        measurement = measure(runtimes, trace, scenario.measure_config(), parameters, progress)
    except Interrupted as stop:
        if stop.partial is not None:  # the finished repetitions, described like a whole run
            stop.partial = stop.partial.annotated({**first, "preset": scenario.preset}, {**first, "preset": scenario.preset or "none"})
        raise
    measurement = measurement.annotated({**first, "preset": scenario.preset}, {**first, "preset": scenario.preset or "none"})
    return with_runtime_notes(scenario, measurement)


def with_runtime_notes(scenario: Scenario, measurement: Measurement) -> Measurement:
    """The run's metadata with what the runtime axis left out (``pooled`` on v8) and how other runtimes' variants
    compile (v8's baseline, extism's baseline and disk: each runtime's host says)."""
    notes = list(getattr(scenario, "runtime_notes", ())) + other_runtimes.notes([parse_variant(v) for v in scenario.variants])
    return measurement.annotated({"runtime_notes": notes}, {}) if notes else measurement
