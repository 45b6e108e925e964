"""Frozen, self-validating configuration of the pool, the engine and the module cache.

Every object checks itself in ``__post_init__`` and names the bad value and what is
allowed.  ``None`` for an optional knob means "wasmtime's own default", which is
recorded as such in results instead of a guessed number.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from wasmlab.errors import ConfigError, allowed

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

ALLOCATORS = ("on-demand", "pooling")
# wasmtime's defaults on 64-bit hosts, used where a knob is left unset.
WASMTIME_DEFAULT_MAX_MEMORY = 4 * GiB
WASMTIME_DEFAULT_RESERVATION = 4 * GiB
COMPILERS = ("cranelift", "winch")
OPT_LEVELS = ("none", "speed", "speed_and_size")
CACHE_POLICIES = ("none", "clear-when-full", "lru", "lfu", "fifo", "rr", "ttl")
# The pool totals ``slots`` stands for, as wasmtime's ``PoolingAllocationConfig`` names them: every pooled
# engine the lab makes (in-process, a release's child, the advisor's code to paste) gets them from
# ``PoolConfig.totals``, so none can leave one out.
SLOT_TOTALS = ("total_core_instances", "total_memories", "total_tables", "total_stacks", "total_component_instances")


def _check_int(owner: str, name: str, value: Any, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} = {value!r} is not an integer; allowed: an integer >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{owner}.{name} = {value} is out of range; allowed: an integer >= {minimum}")


def _check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} = {value!r} is not a boolean; allowed: true or false")


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise allowed(value, f"{owner}.{name}", choices)


class _DictMixin:
    """Round-trip through plain dicts (and so YAML/JSON), rejecting unknown keys.  Mixed into dataclasses only."""

    # Declared so that type checkers see every subclass as the dataclass it is.
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise allowed(unknown[0], f"{cls.__name__} key", names)
        return cls(**data)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated; keys must be fields."""
        names = {f.name for f in fields(self)}
        for key in changes:
            if key not in names:
                raise allowed(key, f"{type(self).__name__} key", names)
        return dataclasses.replace(self, **changes)


DEFAULT_SLOTS = 20  # pool slots when a preset or flag does not say


@dataclass(frozen=True)
class PoolConfig(_DictMixin):
    """Knobs of wasmtime's pooling instance allocator.

    ``slots`` is the shorthand for the pool's capacity: it sets the total core
    instances, memories, tables and stacks (and component instances) unless one of
    those is given explicitly.  ``total_stacks`` matters for memory: wasmtime's default
    of 1000 alone reserves about 2 GiB of address space.
    """

    slots: int = DEFAULT_SLOTS
    total_core_instances: int | None = None
    total_memories: int | None = None
    total_tables: int | None = None
    total_stacks: int | None = None
    total_component_instances: int | None = None
    max_memory_size: int | None = None
    max_core_instance_size: int | None = None
    max_memories_per_module: int | None = None
    max_tables_per_module: int | None = None
    table_elements: int | None = None
    max_unused_warm_slots: int | None = None
    linear_memory_keep_resident: int | None = None
    table_keep_resident: int | None = None
    decommit_batch_size: int | None = None
    max_component_instance_size: int | None = None
    max_core_instances_per_component: int | None = None
    max_memories_per_component: int | None = None
    max_tables_per_component: int | None = None

    def __post_init__(self) -> None:
        _check_int("pool", "slots", self.slots, 1)
        for f in fields(self):
            if f.name == "slots":
                continue
            minimum = 1 if f.name in ("decommit_batch_size",) else 0
            _check_int("pool", f.name, getattr(self, f.name), minimum, optional=True)
        if self.max_unused_warm_slots is not None and self.max_unused_warm_slots > self.resolved("total_core_instances"):
            raise ConfigError(
                f"pool.max_unused_warm_slots = {self.max_unused_warm_slots} exceeds the pool's "
                f"{self.resolved('total_core_instances')} core instance slots; allowed: 0..{self.resolved('total_core_instances')}"
            )

    def resolved(self, total: str) -> int:
        """The effective value of a ``total_*`` knob: its own value, or ``slots``."""
        value = getattr(self, total)
        return self.slots if value is None else value

    def totals(self) -> dict[str, int]:
        """Every pool total of :data:`SLOT_TOTALS`: its own value, or ``slots``."""
        return {name: self.resolved(name) for name in SLOT_TOTALS}

    def settings(self) -> dict[str, int]:
        """What a host sets on wasmtime's ``PoolingAllocationConfig``: the totals, then every other knob that is
        given (``None`` is wasmtime's default, left unset).  Keys are the setters' names."""
        knobs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "slots" and f.name not in SLOT_TOTALS}
        return {**self.totals(), **{name: value for name, value in knobs.items() if value is not None}}


@dataclass(frozen=True)
class EngineConfig(_DictMixin):
    """How a ``wasmtime.Engine`` is built: allocator, compiler and memory layout."""

    allocator: str = "on-demand"
    pool: PoolConfig = field(default_factory=PoolConfig)
    compiler: str = "cranelift"
    opt_level: str = "speed"
    memory_init_cow: bool = True
    memory_reservation: int | None = None
    memory_guard_size: int | None = None
    parallel_compilation: bool = True
    consume_fuel: bool = False
    epoch_interruption: bool = False
    max_wasm_stack: int | None = None
    # wasmtime's own on-disk compilation cache (its default location and settings).
    compilation_cache: bool = False
    # Refuse (with a clear error) a pool whose reservation cannot fit the process's address-space
    # limit, instead of letting wasmtime abort the whole process.
    preflight: bool = True

    def __post_init__(self) -> None:
        _check_choice("engine", "allocator", self.allocator, ALLOCATORS)
        for name in ("consume_fuel", "epoch_interruption", "preflight", "compilation_cache"):
            _check_bool("engine", name, getattr(self, name))
        _check_int("engine", "max_wasm_stack", self.max_wasm_stack, 4096, optional=True)
        _check_choice("engine", "compiler", self.compiler, COMPILERS)
        _check_choice("engine", "opt_level", self.opt_level, OPT_LEVELS)
        _check_bool("engine", "memory_init_cow", self.memory_init_cow)
        _check_bool("engine", "parallel_compilation", self.parallel_compilation)
        _check_int("engine", "memory_reservation", self.memory_reservation, 0, optional=True)
        _check_int("engine", "memory_guard_size", self.memory_guard_size, 0, optional=True)
        if not isinstance(self.pool, PoolConfig):
            raise ConfigError(f"engine.pool = {self.pool!r} is not a PoolConfig")
        if self.pooled:
            # wasmtime refuses this combination when the engine is built, by aborting the process.
            max_memory = self.pool.max_memory_size if self.pool.max_memory_size is not None else WASMTIME_DEFAULT_MAX_MEMORY
            reservation = self.memory_reservation if self.memory_reservation is not None else WASMTIME_DEFAULT_RESERVATION
            if max_memory > reservation:
                raise ConfigError(
                    f"pool.max_memory_size = {max_memory} exceeds engine.memory_reservation = {reservation}; allowed: "
                    f"max_memory_size <= memory_reservation (e.g. --pool max_memory_size={reservation})"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineConfig:
        data = dict(data)
        if isinstance(data.get("pool"), Mapping):
            data["pool"] = PoolConfig.from_dict(data["pool"])
        return super().from_dict(data)

    @property
    def pooled(self) -> bool:
        return self.allocator == "pooling"


@dataclass(frozen=True)
class CacheConfig(_DictMixin):
    """The compiled-module cache: eviction policy, capacity (modules) and TTL."""

    policy: str = "lru"
    size: int = 16
    ttl_seconds: float = 60.0

    def __post_init__(self) -> None:
        _check_choice("cache", "policy", self.policy, CACHE_POLICIES)
        if self.policy != "none":
            _check_int("cache", "size", self.size, 1)
        if self.policy == "ttl":
            if isinstance(self.ttl_seconds, bool) or not isinstance(self.ttl_seconds, (int, float)) or self.ttl_seconds <= 0:
                raise ConfigError(f"cache.ttl_seconds = {self.ttl_seconds!r} is out of range; allowed: a number > 0")


EXHAUSTION_POLICIES = ("fail", "wait")


@dataclass(frozen=True)
class Limits(_DictMixin):
    """What one request may use.  ``None`` means no limit beyond wasmtime's own.

    ``fuel`` and ``deadline_ms`` (a wall-time budget enforced with epoch interruption, ticked
    every ``epoch_tick_ms``) stop runaway guests; ``memory_bytes`` and the other counts go to
    the store limiter; ``max_wasm_stack`` is the engine's wasm stack size.  Pool exhaustion is
    ``fail`` (the request fails, counted as ``pool_exhausted``) or ``wait`` (retry until a slot
    frees, at most ``wait_timeout_ms``).
    """

    fuel: int | None = None
    deadline_ms: float | None = None
    epoch_tick_ms: float = 1.0
    memory_bytes: int | None = None
    table_elements: int | None = None
    instances: int | None = None
    tables: int | None = None
    memories: int | None = None
    max_wasm_stack: int | None = None
    exhaustion: str = "fail"
    wait_timeout_ms: float = 100.0

    def __post_init__(self) -> None:
        _check_int("limits", "fuel", self.fuel, 1, optional=True)
        for name in ("memory_bytes", "table_elements", "instances", "tables", "memories"):
            _check_int("limits", name, getattr(self, name), 0, optional=True)
        _check_int("limits", "max_wasm_stack", self.max_wasm_stack, 4096, optional=True)
        for name, optional in (("deadline_ms", True), ("epoch_tick_ms", False), ("wait_timeout_ms", False)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"limits.{name} = {value!r} is out of range; allowed: a number > 0")
        _check_choice("limits", "exhaustion", self.exhaustion, EXHAUSTION_POLICIES)

    @property
    def store_limited(self) -> bool:
        return any(getattr(self, n) is not None for n in ("memory_bytes", "table_elements", "instances", "tables", "memories"))


@dataclass(frozen=True)
class Preset:
    """Settings of a real host, applied before single flags override them."""

    name: str
    description: str
    pool: PoolConfig
    cache: CacheConfig
    engine: Mapping[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        name="seed",
        description=(
            "sgl-project PR #15515: 20 pool slots per worker thread, LRU cache of compiled modules "
            "(the PR does not state its capacity or memory limits; wasmtime defaults are kept)"
        ),
        pool=PoolConfig(slots=20),
        cache=CacheConfig(policy="lru", size=16),
    ),
    "spin": Preset(
        name="spin",
        description=(
            "Fermyon Spin: 1000 instances, 4x core instances, linear_memory_keep_resident 2 MiB, "
            "table_keep_resident 512 KiB, 10 MB instance size, max_memory_size 4 GiB"
        ),
        pool=PoolConfig(
            slots=1000,
            total_core_instances=4000,
            total_component_instances=1000,
            max_core_instance_size=10_000_000,
            max_component_instance_size=10_000_000,
            max_memory_size=4 * GiB,
            linear_memory_keep_resident=2 * MiB,
            table_keep_resident=512 * KiB,
        ),
        cache=CacheConfig(policy="lru", size=64),
    ),
    "wasmtime-serve": Preset(
        name="wasmtime-serve",
        description="`wasmtime serve` defaults: 1000 of everything, max_unused_warm_slots 100, 4 GiB reservation + 32 MiB guard",
        pool=PoolConfig(slots=1000, max_unused_warm_slots=100),
        cache=CacheConfig(policy="lru", size=64),
        engine={"memory_reservation": 4 * GiB, "memory_guard_size": 32 * MiB},
    ),
}


# What the machine can hold, checked before a trace, a sample buffer or a pool is made: a value past these
# would end in a MemoryError or a Rust panic (wasmtime's C API aborts the process when a pool cannot be
# reserved) instead of one line.
# x86-64 and aarch64 Linux give a process 2**47 bytes of user address space (4-level page tables); a pool
# reserves every slot's memory inside it up front, whatever RLIMIT_AS says.
USER_ADDRESS_SPACE = 1 << 47
# Bytes one recorded request costs until its repetition is stored: its latency in a Python list (8-byte
# pointer + 32-byte int), its outcome (8), and its row of the samples table (latency 8, indices 4 + 4,
# repetition 8, variant 8, outcome 1): 73, rounded up to 80 (pandas' copies while concatenating come on top,
# hence the fraction below).
BYTES_PER_SAMPLE = 80
# Recorded samples may take at most this share of the memory available when the run starts (the rest is
# the guests', the engines' and pandas' copies).
SAMPLE_MEMORY_SHARE = 0.5
# Worker threads of one concurrency run: each takes a stack (8 MiB of address space), its own stores and a
# sample list; past a thousand on a machine of a few cores the figures measure the kernel's scheduler, not the host.
MAX_THREADS = 1024


def memory_available() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``; without it, the
    physical memory)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * KiB
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_samples_fit(what: str, value: int, samples: int, how: str) -> None:
    """Refuse ``value`` of ``what`` when the ``samples`` it makes the run record (``how`` says the product) would
    not fit :data:`SAMPLE_MEMORY_SHARE` of the memory available, naming the largest value that would."""
    budget = int(memory_available() * SAMPLE_MEMORY_SHARE)
    need = samples * BYTES_PER_SAMPLE
    if need > budget:
        per_unit = max(1, samples // max(1, value))
        most = max(0, budget // (per_unit * BYTES_PER_SAMPLE))
        raise ConfigError(
            f"{what} = {value} is out of range: {how} x {BYTES_PER_SAMPLE} bytes per recorded request = {need / GiB:,.1f} GiB, "
            f"more than {SAMPLE_MEMORY_SHARE:.0%} of the {budget / SAMPLE_MEMORY_SHARE / GiB:,.1f} GiB of memory available; "
            f"allowed: {what} <= {most:,} here"
        )


def check_threads(threads: int, what: str = "threads") -> None:
    """Refuse a worker-thread count below 1 or above :data:`MAX_THREADS`."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ConfigError(f"{what} = {threads!r} is out of range; allowed: an integer from 1 to {MAX_THREADS}")


def get_preset(name: str) -> Preset:
    """Look a preset up by name, with a clear error for unknown names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise allowed(name, "preset", PRESETS) from None


_UNITS = {"": 1, "b": 1, "kib": KiB, "mib": MiB, "gib": GiB, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def has_size_unit(text: str) -> bool:
    """Whether ``text`` is a number followed by one of the size units ``parse_size`` knows (e.g. ``64KiB``)."""
    match = _SIZE.fullmatch(text)
    return bool(match and match.group(2) and match.group(2).lower() in _UNITS)


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from ``65536``, ``"64KiB"``, ``"10 MiB"`` or ``"4GiB"`` (binary units; KB/MB/GB are decimal)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.fullmatch(str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"{what} {text!r} is not a size; allowed: a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
