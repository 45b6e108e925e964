"""The recommended settings as code to paste: wasmtime's Rust API, ``wasmtime serve -O`` flags, Spin's environment.

Every Rust method named is checked against the targeted release: wasmtime's C API wraps each
``PoolingAllocationConfig`` method ``m`` as ``wasmtime_pooling_allocation_config_m_set`` and each ``Config``
method as ``wasmtime_config_m_set`` (calling the Rust method of the same name), so a method is real in a
release when its library exports that symbol.  A knob the release lacks is refused, not guessed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path

from wasmlab.config import PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.space import Candidate

# The lab's pool knob -> the PoolingAllocationConfig method (the same name) and `wasmtime serve -O` option.
SERVE_OPTIONS = {
    "total_core_instances": "pooling-total-core-instances", "total_memories": "pooling-total-memories",
    "total_tables": "pooling-total-tables", "total_stacks": "pooling-total-stacks",
    "total_component_instances": "pooling-total-component-instances", "max_memory_size": "pooling-max-memory-size",
    "table_elements": "pooling-table-elements", "max_core_instance_size": "pooling-max-core-instance-size",
    "max_memories_per_module": "pooling-max-memories-per-module", "max_tables_per_module": "pooling-max-tables-per-module",
    "linear_memory_keep_resident": "pooling-memory-keep-resident", "table_keep_resident": "pooling-table-keep-resident",
    "max_unused_warm_slots": "pooling-max-unused-warm-slots", "decommit_batch_size": "pooling-decommit-batch-size",
    "max_core_instances_per_component": "pooling-max-core-instances-per-component",
    "max_memories_per_component": "pooling-max-memories-per-component",
    "max_tables_per_component": "pooling-max-tables-per-component",
    "max_component_instance_size": "pooling-max-component-instance-size",
}
ENGINE_SERVE_OPTIONS = {"memory_reservation": "memory-reservation", "memory_guard_size": "memory-guard-size",
                        "memory_init_cow": "memory-init-cow"}
# Spin reads these variables for its pool (crates/core/src/lib.rs); the rest of its pool is fixed in code.
# Its total_core_instances is wasmtime's default (1000), not a variable: a component of N core instances serves at most
# 1000 // N requests at once there, whatever SPIN_WASMTIME_INSTANCE_COUNT says.
SPIN_VARIABLES = {"total_component_instances": "SPIN_WASMTIME_INSTANCE_COUNT", "total_memories": "SPIN_WASMTIME_TOTAL_MEMORIES",
                  "total_tables": "SPIN_WASMTIME_TOTAL_TABLES", "max_core_instance_size": "SPIN_WASMTIME_CORE_INSTANCE_SIZE",
                  "table_elements": "SPIN_WASMTIME_INSTANCE_TABLE_ELEMENTS",
                  "max_component_instance_size": "SPIN_WASMTIME_INSTANCE_SIZE",
                  "max_core_instances_per_component": "SPIN_WASMTIME_CORE_INSTANCE_COUNT",
                  "max_memories_per_component": "SPIN_WASMTIME_INSTANCE_MEMORIES",
                  "max_tables_per_component": "SPIN_WASMTIME_INSTANCE_TABLES"}
SPIN_FIXED = "max_memory_size 4 GiB, linear_memory_keep_resident 2 MiB, table_keep_resident 512 KiB and wasmtime's memory layout"


def pool_settings(candidate: Candidate, needs: ServingNeeds) -> dict[str, int]:
    """Every pool setting a host needs for this candidate, as the measured engine had them (``PoolConfig.settings``):
    the totals of ``slots`` spelled out, then the knobs."""
    if not candidate.pooled:
        return {}
    return PoolConfig(slots=candidate.slots, **candidate.pool_knobs(needs)).settings()


def exported_symbols(library: Path) -> Callable[[str], bool]:
    """Whether the wasmtime library at ``library`` exports a symbol."""
    handle = ctypes.CDLL(str(library))
    return lambda name: hasattr(handle, name)


def release_symbols(version: str | None = None) -> tuple[str, Callable[[str], bool]]:
    """The targeted release and a check of its library's symbols: the installed wasmtime-py's by default, else a
    release of the manifest fetched with ``wasmlab releases fetch`` (its SHA-256 verified)."""
    if version is None:
        from importlib.metadata import version as installed

        from wasmlab import capi

        return installed("wasmtime"), lambda name: hasattr(capi.dll, name)
    from wasmlab.host import releases

    release = releases.resolve([version])[0]
    return release.version, exported_symbols(releases.fetched(release))


def rust(candidate: Candidate, needs: ServingNeeds, release: str, has_symbol: Callable[[str], bool], measured: str = "") -> str:
    """Rust for wasmtime ``release``: a ``Config`` with the pooling allocator and memory layout of ``candidate``;
    ``measured`` (lines: what was measured with it, how, the command that measures it again) goes in its comment."""
    engine = candidate.engine_knobs(needs)
    for name in engine:
        if not has_symbol(f"wasmtime_config_{name}_set"):
            raise ConfigError(f"wasmtime {release} has no Config::{name}; allowed: a release whose C API exports wasmtime_config_{name}_set")
    lines = [f"// wasmtime {release}: what `wasmlab advise` measured for {', '.join(needs.workloads)}",
             *(f"// {line}" for line in measured.splitlines()),
             "let mut config = wasmtime::Config::new();"]
    for name, value in engine.items():
        lines.append(f"config.{name}({str(value).lower()});")
    pool = pool_settings(candidate, needs)
    if pool:
        for name in pool:
            if not has_symbol(f"wasmtime_pooling_allocation_config_{name}_set"):
                raise ConfigError(f"wasmtime {release} has no PoolingAllocationConfig::{name}; allowed: a release whose C API exports "
                                  f"wasmtime_pooling_allocation_config_{name}_set (pooling in the C API: 32.0.0 and later)")
        lines.append("let mut pool = wasmtime::PoolingAllocationConfig::default();")
        calls = [f"    .{name}({value})" for name, value in pool.items()]
        lines += ["pool" + calls[0].strip(), *calls[1:]]
        lines[-1] += ";"
        lines.append("config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));")
    lines.append("let engine = wasmtime::Engine::new(&config)?;")
    if candidate.reuse > 1:
        lines.append(f"// reuse: keep each Store and its Instance for {candidate.reuse} requests, then drop both and make fresh ones "
                     "(one request's state reaches the next: the lab counted no result that differed, and cannot see timing)")
    if candidate.snapshot:
        lines.append("// snapshot: compile the module Wizer pre-initialized (wizer --init-func <init> guest.wasm -o guest.snap.wasm) "
                     "and skip the start-up call per request")
    if candidate.pre:
        lines.append("// once per module: let pre = linker.instantiate_pre(&module)?; then per request: pre.instantiate(&mut store)?")
    lines.append(f"// keep compiled modules: an LRU of {candidate.cache_size} per worker (wasmtime::Module is cheap to clone)")
    return "\n".join(lines)


def wasmtime_serve_options(candidate: Candidate, needs: ServingNeeds) -> list[str]:
    """The ``-O`` options (``KEY=VALUE``) of ``wasmtime serve`` for the same settings.  The allocator is always stated:
    ``wasmtime serve`` turns the pooling allocator on by default, so an on-demand candidate needs ``pooling-allocator=n``."""
    options = ["pooling-allocator=y" if candidate.pooled else "pooling-allocator=n"]
    if candidate.pooled:
        options += [f"{SERVE_OPTIONS[k]}={v}" for k, v in pool_settings(candidate, needs).items() if k in SERVE_OPTIONS]
    for name, value in candidate.engine_knobs(needs).items():
        options.append(f"{ENGINE_SERVE_OPTIONS[name]}={('y' if value else 'n') if isinstance(value, bool) else value}")
    return options


def wasmtime_serve(candidate: Candidate, needs: ServingNeeds) -> str:
    """``wasmtime serve`` options for the same settings (its ``-O`` group)."""
    return "wasmtime serve " + " ".join(f"-O {o}" for o in wasmtime_serve_options(candidate, needs)) + " COMPONENT.wasm"


def all_snippets(candidate: Candidate, needs: ServingNeeds, release: str, has_symbol: Callable[[str], bool],
                 measured: str = "") -> dict[str, str]:
    """The recommendation for each kind of host: Rust (checked against ``release``, ``measured`` in its comment),
    ``wasmtime serve`` and Spin."""
    return {"rust": rust(candidate, needs, release, has_symbol, measured), "wasmtime_serve": wasmtime_serve(candidate, needs),
            "spin": spin(candidate, needs)}


def spin(candidate: Candidate, needs: ServingNeeds) -> str:
    """Spin's environment for what it lets a user set, and what it does not."""
    if not candidate.pooled:
        return "SPIN_WASMTIME_POOLING=0 spin up   # the on-demand allocator"
    pool = pool_settings(candidate, needs)
    variables = ["SPIN_WASMTIME_POOLING=1"] + [f"{var}={pool[k]}" for k, var in SPIN_VARIABLES.items() if k in pool]
    unset = [k for k in candidate.pool_knobs(needs) if k not in SPIN_VARIABLES] + list(candidate.engine_knobs(needs))
    note = f"\n# Spin fixes {SPIN_FIXED}; not settable there: {', '.join(unset)}" if unset else ""
    return " ".join(variables) + " spin up" + note
