"""``wasmlab serve --preset NAME``: the server's ``-O`` options from one of the lab's named presets (``wasmlab presets``).

A preset's pool counts ``slots``: requests served at once, each a fresh instance of the served component.
``wasmtime serve`` takes the pool's totals instead, and one instance of a component takes several core instances,
memories and tables from them (the proxy: two core instances).  So each total the preset leaves to ``slots`` becomes
``slots`` times what one instance of the served component holds, as the lab's own engine sizes a pool for a component
(:func:`~wasmlab.host.pool_sizing.sized_for`); a total the preset sets itself is kept.  The preset's other pool knobs
and its engine knobs go through the advisor's table of ``-O`` names (the one ``--from-advice`` uses), each checked
against the option names the pinned CLI's ``wasmtime serve -O help`` lists.  What ``wasmtime serve`` cannot take (the
preset's cache of compiled modules: the server compiles its one component at start) is said in one line, not dropped.

Explicit ``-O`` and ``--pooling`` win, key by key; ``--no-pooling`` also drops the preset's pool options (wasmtime serve
ignores them without a pool, so keeping them would only mislead the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmlab.config import SLOT_TOTALS, EngineConfig, Preset
from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.snippets import ENGINE_SERVE_OPTIONS, SERVE_OPTIONS
from wasmlab.experiments.serve_advice import key_of, overridden_by, serve_option_names
from wasmlab.host.pool_sizing import sized_for
from wasmlab.workloads.model import Workload
from wasmlab.workloads.proxy import proxy

ALLOCATOR = "pooling-allocator"
# Values of wasmtime's boolean -O options that turn a setting off.
OFF = ("n", "no", "false")


@dataclass(frozen=True)
class PresetOptions:
    """The preset's ``-O`` options, the explicit ones, and what the server gets: explicit wins, key by key."""

    name: str
    options: tuple[str, ...]  # the preset's, the allocator first
    explicit: tuple[str, ...]
    workload: str  # the component the pool's totals are sized for
    slots: int
    totals: tuple[str, ...]  # how each pool total came from the preset, in words
    not_taken: tuple[str, ...]  # the preset's settings wasmtime serve has no option for, in words

    @property
    def pool_off(self) -> bool:
        """An explicit ``pooling-allocator=n`` (``--no-pooling``): the preset's pool options mean nothing then."""
        return any(key_of(o) == ALLOCATOR and o.partition("=")[2].lower() in OFF for o in self.explicit)

    @property
    def overridden(self) -> tuple[str, ...]:
        """The preset's options that lose: an explicit option sets their key, or the pool is off."""
        lost = set(overridden_by(self.options, self.explicit))
        if self.pool_off:
            lost |= {o for o in self.options if o.startswith("pooling-")}
        return tuple(o for o in self.options if o in lost)

    @property
    def merged(self) -> tuple[str, ...]:
        return (*(o for o in self.options if o not in self.overridden), *self.explicit)

    def as_dict(self) -> dict[str, Any]:
        return {"preset": self.name, "options": list(self.options), "explicit": list(self.explicit),
                "overridden": list(self.overridden), "sized_for": self.workload, "slots": self.slots,
                "totals": list(self.totals), "not_taken": list(self.not_taken)}

    def lines(self) -> list[str]:
        """What the output says of where the options came from, and what of the preset the server does not get."""
        text = (f"-O from preset {self.name}: {' '.join(self.options)} (its {self.slots} slots are {self.workload} instances at "
                f"once; wasmtime serve takes totals: {', '.join(self.totals)})")
        by_key = overridden_by(self.options, self.explicit)
        if by_key:
            text += "; explicit -O wins over the preset's " + ", ".join(by_key)
        pool_left_out = [o for o in self.overridden if o not in by_key]
        if pool_left_out:
            text += f"; with the pool off (pooling-allocator=n) its {len(pool_left_out)} pool options are left out"
        lines = [text]
        if self.not_taken:
            lines.append(f"Preset {self.name} settings wasmtime serve cannot take (left out): {'; '.join(self.not_taken)}")
        return lines


def _value(value: object) -> str:
    return ("y" if value else "n") if isinstance(value, bool) else str(value)


def _totals(preset: Preset, workload: Workload) -> tuple[dict[str, int], list[str]]:
    """The pool's totals for ``preset.pool.slots`` concurrent instances of ``workload``, and how each came about."""
    try:
        config = EngineConfig(allocator="pooling", pool=preset.pool).replace(**dict(preset.engine))
        sized = sized_for(config, [workload]).pool
    except ConfigError as exc:
        raise ConfigError(f"--preset {preset.name}: {exc}") from None
    totals = {name: sized.resolved(name) for name in SLOT_TOTALS}
    words = []
    for name, value in totals.items():
        label = name.removeprefix("total_").replace("_", " ")
        per_instance = value // preset.pool.slots
        if getattr(preset.pool, name) is not None:
            words.append(f"{label} {value} (the preset's)")
        elif per_instance > 1:
            words.append(f"{label} {preset.pool.slots} x {per_instance} per instance = {value}")
        else:
            words.append(f"{label} {value}")
    return totals, words


def preset_options(preset: Preset, explicit: tuple[str, ...], workload: str, binary: Path) -> PresetOptions:
    """``preset`` as ``wasmtime serve`` options for ``binary`` serving the proxy ``workload``, ``explicit`` over them."""
    made = proxy(workload)
    component = Workload(made.name, made.wasm, "", (), (), (), None, kind="component", provenance=made.provenance)
    totals, words = _totals(preset, component)
    pool = preset.pool.replace(**totals).settings()
    options = [f"{ALLOCATOR}=y"] + [f"{SERVE_OPTIONS[k]}={v}" for k, v in pool.items() if k in SERVE_OPTIONS]
    not_taken = [f"pool {k}={v}" for k, v in pool.items() if k not in SERVE_OPTIONS]
    for name, value in preset.engine.items():
        if name in ENGINE_SERVE_OPTIONS:
            options.append(f"{ENGINE_SERVE_OPTIONS[name]}={_value(value)}")
        else:
            not_taken.append(f"engine {name}={_value(value)}")
    known = serve_option_names(binary)
    not_taken += [f"{o} (not an option of this wasmtime serve)" for o in options if key_of(o) not in known]
    options = [o for o in options if key_of(o) in known]
    cache = preset.cache
    not_taken.append(f"cache {cache.policy} of {cache.size} compiled modules (wasmtime serve compiles its one component at start)")
    return PresetOptions(preset.name, tuple(options), explicit, made.name, preset.pool.slots, tuple(words), tuple(not_taken))
