"""Request sequences: which workload each request runs, reproducible from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wasmlab.errors import ConfigError, allowed

DISTRIBUTIONS = ("repeat", "uniform", "zipf")


@dataclass(frozen=True)
class Trace:
    """Indices into a list of workloads, one per request, and how they were drawn."""

    indices: tuple[int, ...]
    distribution: str
    modules: int
    seed: int | None = None
    zipf_s: float | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def describe(self) -> dict[str, object]:
        return {
            "trace": self.distribution,
            "trace_modules": self.modules,
            "trace_seed": self.seed,
            "trace_zipf_s": self.zipf_s,
        }


def _check_counts(requests: int, modules: int) -> None:
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ConfigError(f"requests = {requests!r} is out of range; allowed: an integer >= 1")
    if isinstance(modules, bool) or not isinstance(modules, int) or modules < 1:
        raise ConfigError(f"modules = {modules!r} is out of range; allowed: an integer >= 1")


def repeat(requests: int) -> Trace:
    """The same module on every request (the seed scenario)."""
    _check_counts(requests, 1)
    return Trace(indices=(0,) * requests, distribution="repeat", modules=1)


def uniform(requests: int, modules: int, seed: int = 0) -> Trace:
    """Each request picks one of ``modules`` modules uniformly at random."""
    _check_counts(requests, modules)
    rng = np.random.default_rng(seed)
    return Trace(tuple(int(i) for i in rng.integers(0, modules, requests)), "uniform", modules, seed)


def zipf(requests: int, modules: int, s: float = 1.1, seed: int = 0) -> Trace:
    """Module ``k`` (0-based) is drawn with probability proportional to ``1 / (k+1)**s``."""
    _check_counts(requests, modules)
    if not s > 0:
        raise ConfigError(f"zipf exponent s = {s!r} is out of range; allowed: a number > 0")
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, modules + 1) ** s
    picks = rng.choice(modules, size=requests, p=weights / weights.sum())
    return Trace(tuple(int(i) for i in picks), "zipf", modules, seed, float(s))


def make_trace(distribution: str, requests: int, modules: int = 1, seed: int = 0, s: float = 1.1) -> Trace:
    """Build a trace by distribution name."""
    if distribution == "repeat":
        if modules != 1:
            raise ConfigError(f"trace 'repeat' runs one module; modules = {modules} is not allowed (use uniform or zipf)")
        return repeat(requests)
    if distribution == "uniform":
        return uniform(requests, modules, seed)
    if distribution == "zipf":
        return zipf(requests, modules, s, seed)
    raise allowed(distribution, "trace distribution", DISTRIBUTIONS)


def parse_trace_spec(text: str) -> tuple[str, float]:
    """``repeat``, ``uniform``, ``zipf`` or ``zipf:s=1.3`` as (distribution, zipf exponent)."""
    name, _, options = text.partition(":")
    if name not in DISTRIBUTIONS or (options and name != "zipf"):
        raise ConfigError(f"--trace {text!r} is not allowed; allowed: repeat, uniform, zipf, or zipf:s=<exponent>")
    s = 1.1
    if options:
        key, eq, value = options.partition("=")
        try:
            s = float(value)
        except ValueError:
            s = float("nan")
        if key != "s" or not eq or not s > 0:
            raise ConfigError(f"--trace {text!r} is not allowed; allowed: zipf:s=<exponent > 0>, e.g. zipf:s=1.1")
    return name, s
