"""``wasmlab releases bisect A B``: the release between A and B where a figure moved outside its interval.

The figure is one variant's p50 latency per request (µs).  Every step is one run of two releases, A and a candidate,
interleaved by repetition with one child process per release and repetition (:func:`wasmlab.measure.release_run.run_releases`,
as ``releases run`` does): the candidate's figure is compared with A's from the same run, paired by repetition
(:func:`wasmlab.measure.stats.paired_ratio`: geometric mean of the per-repetition ratios, 95% Student-t interval on
their logs), so drift of the machine between steps does not look like a step.  The first run is B against A: when
that ratio's interval holds 1, the figure did not move and nothing else runs.  Otherwise the releases of the manifest
between A and B are bisected: a candidate whose ratio to A has an interval excluding 1 in B's direction has moved (the
move is at or before it), any other has not; the answer is the first release that moved, assuming the figure moved
once (a figure that moved and came back can be missed; every release measured is printed with its figures).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.host.releases import Release, fetch, load_manifest, resolve, version_key
from wasmlab.measure.stats import PAIRED_METHOD, Ratio, paired_ratio

# The figures of each release in one run, per repetition, in the same repetitions (index i: repetition i).
Measure = Callable[[list[str]], dict[str, list[float]]]
FIGURE = "p50 latency per request (µs)"


@dataclass(frozen=True)
class Measured:
    """One release's figure in one step: geometric mean over repetitions with its 95% interval, and its ratio to A's
    figure of the same step (A itself: ratio 1, no interval) with what that ratio says."""

    step: int
    release: str
    figure_us: float
    figure_low: float
    figure_high: float
    ratio: float
    ratio_low: float
    ratio_high: float
    repetitions: int
    moved: bool


@dataclass
class Bisection:
    """Every release measured, in the order measured, and the answer."""

    first: str
    last: str
    candidates: list[str]
    variant: str
    measured: list[Measured] = field(default_factory=list)
    direction: int = 0  # +1: B's figure above A's; -1: below; 0: no move between A and B
    moved_at: str | None = None
    stopped: str = ""  # why the bisection stopped before an answer (a release that crashed or failed)
    settings: dict[str, Any] = field(default_factory=dict)

    def answer(self) -> str:
        if self.stopped:
            return f"No answer: {self.stopped}"
        if self.moved_at is None:
            return (f"{self.variant} did not move between {self.first} and {self.last}: the ratio's 95% interval holds 1 "
                    f"({FIGURE}, paired by repetition)")
        way = "up" if self.direction > 0 else "down"
        step = next(m for m in reversed(self.measured) if m.release == self.moved_at)
        before = self.candidates[self.candidates.index(self.moved_at) - 1]
        return (f"{self.variant} moved {way} at release {self.moved_at} (after {before}): {step.figure_us:.3f} µs against "
                f"{self.first}'s {self.first_figure(step.step):.3f} µs, ratio {step.ratio:.3f} (95% CI {step.ratio_low:.3f}..{step.ratio_high:.3f})")

    def first_figure(self, step: int) -> float:
        return next(m.figure_us for m in self.measured if m.step == step and m.release == self.first)

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "candidates": self.candidates, "variant": self.variant, "figure": FIGURE,
                "direction": self.direction, "moved_at": self.moved_at, "stopped": self.stopped or None, "answer": self.answer(),
                "measured": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(m).items()}
                             for m in self.measured],
                "ratio_method": PAIRED_METHOD, "settings": self.settings}

    def render(self) -> str:
        lines = [f"Bisecting {self.first}..{self.last} ({', '.join(self.candidates)}) on {self.variant}: {FIGURE}, "
                 f"each step {self.first} and one release interleaved by repetition",
                 f"{'step':>4}  {'release':<20} {'p50 µs':>9} {'95% CI':>19} {'ratio to ' + self.first:>16} {'95% CI':>15}  moved"]
        for m in self.measured:
            ratio = "" if m.release == self.first else f"{m.ratio:.3f}"
            ratio_ci = "" if m.release == self.first else _interval(m.ratio_low, m.ratio_high)
            moved = "" if m.release == self.first else ("yes" if m.moved else "no")
            lines.append(f"{m.step:>4}  {m.release:<20} {m.figure_us:>9.3f} {_interval(m.figure_low, m.figure_high):>19} "
                         f"{ratio:>16} {ratio_ci:>15}  {moved}")
        lines.append(self.answer())
        if self.settings:
            s = self.settings
            lines.append(f"Measured: {s['workload']}, {s['requests']} requests per child after {s['warmup']} warm-up, "
                         f"{s['repeats']} repetitions per step (releases rotated, one child each); {PAIRED_METHOD}")
            lines.extend(f"{label}: your build {path}" for label, path in (s.get("libraries") or {}).items())
        return "\n".join(lines)


def _interval(low: float, high: float) -> str:
    return f"{low:.3f}..{high:.3f}" if math.isfinite(low) and math.isfinite(high) else "(none)"


def figure_interval(values: Sequence[float]) -> Ratio:
    """A release's figure over repetitions: geometric mean with the 95% Student-t interval on the logs (the interval
    of a ratio to 1, as :func:`paired_ratio` computes it)."""
    return paired_ratio(np.asarray(values, dtype=np.float64), np.ones(len(values)))


def moved(ratio: Ratio, direction: int) -> bool:
    """Whether ``ratio``'s interval excludes 1 in ``direction`` (+1: above 1; -1: below)."""
    if not (math.isfinite(ratio.low) and math.isfinite(ratio.high)):
        return False
    return ratio.low > 1 if direction > 0 else ratio.high < 1


def bisect(candidates: Sequence[str], measure: Measure, variant: str) -> Bisection:
    """The first of ``candidates`` (oldest first: A, the releases between, B) where ``measure``'s figure moved beyond
    its interval in B's direction, or none (see the module docstring)."""
    if len(candidates) < 2:
        raise ConfigError(f"releases bisect needs two different releases; got {', '.join(candidates) or 'none'}")
    first, last = candidates[0], candidates[-1]
    result = Bisection(first, last, list(candidates), variant)

    def step(candidate: str) -> Ratio:
        number = len({m.step for m in result.measured}) + 1
        figures = measure([first, candidate])
        ratio = paired_ratio(figures[candidate], figures[first])
        for release in (first, candidate):
            own = figure_interval(figures[release])
            against = ratio if release == candidate else Ratio(1.0, float("nan"), float("nan"), own.repetitions, PAIRED_METHOD)
            result.measured.append(Measured(number, release, own.point, own.low, own.high, against.point, against.low, against.high,
                                            own.repetitions, release == candidate and moved(ratio, result.direction or _sign(ratio))))
        return ratio

    try:
        whole = step(last)
        result.direction = _sign(whole) if moved(whole, _sign(whole)) else 0
        if result.direction == 0:
            return result
        low, high = 0, len(candidates) - 1  # candidates[low] has not moved (A), candidates[high] has (B)
        while high - low > 1:
            middle = (low + high) // 2
            if moved(step(candidates[middle]), result.direction):
                high = middle
            else:
                low = middle
        result.moved_at = candidates[high]
    except WasmlabError as exc:
        result.stopped = str(exc)
    return result


def _sign(ratio: Ratio) -> int:
    return 1 if ratio.point > 1 else -1


def releases_between(first: str, last: str, manifest: dict[str, Release] | None = None, same: bool = False) -> list[Release]:
    """A, B and every release of the manifest between them, oldest first; A must be older than B (one line otherwise;
    with ``same``, when a user's build follows, A may be B)."""
    manifest = manifest if manifest is not None else load_manifest()
    a, b = resolve([first], manifest)[0], resolve([last], manifest)[0]
    if version_key(a.version) > version_key(b.version) or (a == b and not same):
        raise ConfigError(f"releases bisect {first} {last}: A ({a.version}) must be older than B ({b.version}); "
                          "allowed: an older release first, e.g. 40 50")
    return [r for r in manifest.values() if version_key(a.version) <= version_key(r.version) <= version_key(b.version)]


def release_figures(releases: Sequence[Release], settings: dict[str, Any]) -> Measure:
    """The real :data:`Measure`: each step's releases fetched (and verified) as ``releases add`` does, then run in a
    child process per release and repetition; a release whose variant did not serve every request stops the bisection."""
    from wasmlab.measure.release_run import requests_of, run_releases

    by_version = {r.version: r for r in releases}
    variant = settings["variant"]

    def measure(versions: list[str]) -> dict[str, list[float]]:
        chosen = [by_version[v] for v in versions]
        for release in chosen:
            fetch(release)
        table, _ = run_releases(chosen, settings["workload"], [variant], settings["requests"], settings["repeats"], settings["warmup"],
                                settings["slots"], dict(settings.get("pool") or {}), settings["cache_size"])
        rows = requests_of(table)
        figures = {}
        for version in versions:
            mine = rows[rows["release"] == version].sort_values("repetition")
            bad = mine[mine["status"] != "ok"]
            if not bad.empty:
                raise WasmlabError(f"release {version}: {variant} {bad['status'].iloc[0]}: {bad['error'].iloc[0]}")
            figures[version] = [float(v) for v in mine["latency_us_p50"]]
        return figures

    return measure


def bisect_releases(first: str, last: str | None, settings: dict[str, Any], libraries: Sequence[str] = ()) -> Bisection:
    """The bisection of the manifest's releases from ``first`` to ``last`` with ``settings`` (workload, variant, requests,
    repeats, warmup, slots, pool, cache_size), then each of ``libraries`` (a user's builds, after ``last``; without
    ``last``, the manifest's newest release of the major the first build says it is)."""
    from wasmlab.host.variant import parse_variant
    from wasmlab.measure.release_run import user_library

    settings = {**settings, "variant": parse_variant(settings["variant"]).name}
    builds = [user_library(path) for path in libraries]
    if last is None:
        if not builds:
            raise ConfigError("releases bisect needs B (a release of the manifest, e.g. 50) or --library PATH")
        if builds[0].major is None:
            raise ConfigError(f"--library {libraries[0]}: its version is unknown, so the last release is too; give B, "
                              f"e.g. releases bisect {first} 50 --library {libraries[0]}")
        last = str(builds[0].major)
    releases = releases_between(first, last, same=bool(builds)) + builds
    result = bisect([r.version for r in releases], release_figures(releases, settings), settings["variant"])
    result.settings = {**settings, "libraries": {b.version: b.user_path for b in builds}}
    return result


def as_json(result: Bisection) -> str:
    return json.dumps(result.to_json(), indent=2, default=str)
