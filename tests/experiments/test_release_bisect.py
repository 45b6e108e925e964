"""Bisecting releases: the bisection on figures of known truth (a planted step is found, flat figures do not move), and
one real run of two cached releases through their child processes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.experiments.release_bisect import bisect, release_figures, releases_between
from wasmlab.host import releases as rel

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = ["40.0.0", "41.0.0", "42.0.0", "43.0.0", "44.0.0", "45.0.0", "46.0.1", "47.0.1", "48.0.0", "49.0.0", "50.0.1"]


def planted(step_at: int | None, factor: float, repeats: int = 5, noise: float = 0.02, seed: int = 1):
    """A measure function whose truth is known: 1.7 µs before release ``step_at``, 1.7 x ``factor`` from it on, each
    repetition's figure drawn with ``noise`` (log-normal), and a drift per repetition shared by every release of a run."""
    rng = np.random.default_rng(seed)
    calls: list[list[str]] = []

    def measure(versions: list[str]) -> dict[str, list[float]]:
        calls.append(list(versions))
        drift = rng.normal(0, 0.05, repeats)  # the machine's state of each repetition, the same for both releases
        out = {}
        for version in versions:
            index = CANDIDATES.index(version)
            truth = 1.7 * (factor if step_at is not None and index >= step_at else 1.0)
            out[version] = list(truth * np.exp(drift + rng.normal(0, noise, repeats)))
        return out

    return measure, calls


@pytest.mark.parametrize("step_at", range(1, len(CANDIDATES)))
@pytest.mark.parametrize("factor", [1.45, 0.7])
def test_the_bisection_finds_the_planted_step_in_a_handful_of_steps(step_at, factor):
    measure, calls = planted(step_at, factor, seed=step_at)
    result = bisect(CANDIDATES, measure, "pooled+cached")
    assert result.moved_at == CANDIDATES[step_at], result.render()
    assert result.direction == (1 if factor > 1 else -1) and not result.stopped
    assert len(calls) <= 1 + math.ceil(math.log2(len(CANDIDATES) - 1))  # B first, then halving the range
    assert all(call[0] == "40.0.0" for call in calls)  # every candidate is compared with A measured in the same run
    measured = {m.release for m in result.measured}
    assert {"40.0.0", "50.0.1", CANDIDATES[step_at]} <= measured
    text = result.render()
    assert f"moved {'up' if factor > 1 else 'down'} at release {CANDIDATES[step_at]} (after {CANDIDATES[step_at - 1]})" in text
    for m in result.measured:  # every release measured is printed with its figure
        assert f"{m.release:<20} {m.figure_us:>9.3f}" in text


def test_flat_figures_did_not_move_and_only_a_and_b_are_measured():
    measure, calls = planted(None, 1.0, seed=7)
    result = bisect(CANDIDATES, measure, "pooled+cached")
    assert result.moved_at is None and result.direction == 0 and calls == [["40.0.0", "50.0.1"]]
    assert "did not move between 40.0.0 and 50.0.1" in result.render()
    data = result.to_json()
    assert data["moved_at"] is None and [m["release"] for m in data["measured"]] == ["40.0.0", "50.0.1"]
    json.dumps(data)


def test_a_small_step_within_the_noise_is_not_named():
    """A 1% step under 10% noise per repetition: B's interval holds 1, so nothing is named (no false answer)."""
    measure, _ = planted(5, 1.01, noise=0.10, seed=3)
    assert bisect(CANDIDATES, measure, "v").moved_at is None


def test_a_release_that_fails_stops_the_bisection_with_its_line_and_the_figures_so_far():
    measure, _ = planted(8, 1.45)

    def failing(versions: list[str]) -> dict[str, list[float]]:
        if "45.0.0" in versions:
            raise WasmlabError("release 45.0.0: pooled+cached crash: signal SIGABRT")
        return measure(versions)

    result = bisect(CANDIDATES, failing, "pooled+cached")
    assert result.moved_at is None and "release 45.0.0: pooled+cached crash" in result.stopped
    assert [m.release for m in result.measured] == ["40.0.0", "50.0.1"]
    assert result.render().splitlines()[-1].startswith("No answer: release 45.0.0")


def test_releases_between_takes_the_manifest_in_order_and_refuses_a_newer_first():
    manifest = rel.load_manifest()
    assert [r.version for r in releases_between("40", "50", manifest)] == CANDIDATES
    with pytest.raises(ConfigError, match=r"A \(50.0.1\) must be older than B \(40.0.0\)"):
        releases_between("50", "40", manifest)
    with pytest.raises(ConfigError, match=r"A \(50.0.1\) must be older than B \(50.0.1\)"):
        releases_between("50", "50.0.1", manifest)
    assert [r.version for r in releases_between("50", "50", manifest, same=True)] == ["50.0.1"]


def wasmlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_bad_bisect_arguments_are_one_line():
    for args, expected in ((("50", "40"), "must be older than B"), (("40", "99"), "release '99' is not in the manifest"),
                           (("38", "50", "--repeats", "1"), "--repeats 1: an interval needs repetitions"),
                           (("38", "50", "--call-path", "lean"), "Invalid value for '--call-path'"),
                           (("50",), "releases bisect needs B")):
        done = wasmlab("releases", "bisect", *args)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow  # a child per release and repetition
def test_a_real_bisection_of_two_cached_releases_measures_both_in_their_children():
    """38 and 50 (fetched by `make components`), tiny request counts: each figure real (positive, one per repetition),
    the answer either 50.0.1 or no move, both printed."""
    manifest = rel.load_manifest()
    pair = [manifest["38.0.0"], manifest["50.0.1"]]
    for release in pair:
        rel.fetched(release)
    settings = {"workload": "seed", "variant": "pooled+cached", "requests": 40, "repeats": 2, "warmup": 5, "slots": 4, "pool": {},
                "cache_size": 16}
    result = bisect([r.version for r in pair], release_figures(pair, settings), "pooled+cached")
    assert not result.stopped, result.stopped
    assert [m.release for m in result.measured] == ["38.0.0", "50.0.1"]
    assert all(m.figure_us > 0 and m.repetitions == 2 and m.figure_low <= m.figure_us <= m.figure_high for m in result.measured)
    assert result.moved_at in (None, "50.0.1")
    b = result.measured[1]
    assert b.moved == (b.ratio_low > 1 or b.ratio_high < 1)


@pytest.mark.slow  # a child per release and repetition
def test_bisect_goes_on_into_a_users_build_up_to_the_release_its_version_says(tmp_path):
    """`bisect 50 --library COPY`: B is the newest 50 of the manifest (the copy says 50; fetched by `make components`),
    the copy measured after it, A and B being the same release here."""
    release = rel.load_manifest()["50.0.1"]
    build = tmp_path / "mine.so"
    build.write_bytes(rel.fetched(release).read_bytes())
    label = f"library:{release.library_sha256[:12]}"
    done = wasmlab("releases", "bisect", "50", "--library", str(build), "--requests", "30", "--repeats", "2", "--warmup", "3",
                   "--slots", "4", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["candidates"] == ["50.0.1", label] and data["settings"]["libraries"] == {label: str(build)}
    assert [m["release"] for m in data["measured"]] == ["50.0.1", label] and data["moved_at"] in (None, label)
    assert all(m["figure_us"] > 0 for m in data["measured"])
