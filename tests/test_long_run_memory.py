"""benchmarks/long_run_memory.py: its verdict on series of known truth, and the script itself at smoke size on the real
native driver (its full-size figures are in docs/methodology.md, not here)."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "long_run_memory.py"
MiB = 1 << 20
PAGE = 4096


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("long_run_memory", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


LONG_RUN = _script()
REQUESTS = np.arange(0, 1_000_001, 10_000)  # a million requests sampled every 10,000, as the script does at full size


def pages(values: np.ndarray) -> np.ndarray:
    """Bytes as RSS reports them: whole pages."""
    return (np.round(values / PAGE) * PAGE).astype(np.int64)


def warmed_up(rng: np.random.Generator, leak_per_request: float) -> np.ndarray:
    """RSS of a run of known truth: 120 MiB, 6 MiB filled during the first 10% (caches, pools, arenas), noise of
    +-256 KiB from sample to sample, then ``leak_per_request`` bytes per request."""
    warm = 6 * MiB * np.minimum(REQUESTS / (0.1 * REQUESTS[-1]), 1.0)
    noise = rng.normal(0, 256 * 1024, len(REQUESTS))
    return pages(120 * MiB + warm + noise + leak_per_request * REQUESTS)


def test_a_leak_of_64_bytes_per_request_is_found_and_measured() -> None:
    fit = LONG_RUN.verdict(REQUESTS, warmed_up(np.random.default_rng(1), 80.0), granularity=PAGE)
    assert not fit.flat
    assert fit.low <= 80.0 <= fit.high and fit.high - fit.low < 10
    # Last sample minus the first after the warm-up: two samples' noise (sd 256 KiB each) around the leak's 68.7 MiB.
    assert fit.growth_mib == pytest.approx(80 * 900_000 / MiB, abs=2.0)


def test_a_leak_of_two_bytes_per_request_under_noise_is_found() -> None:
    """2 MiB over a million requests, under 256 KiB of noise per sample: just twice the threshold."""
    assert not LONG_RUN.verdict(REQUESTS, warmed_up(np.random.default_rng(2), 2.0), granularity=PAGE).flat


def test_flat_with_noise_after_a_warm_up_is_flat_and_its_interval_holds_zero() -> None:
    """The 6 MiB of warm-up are left out of the fit; a fit over every sample would call them 6 bytes per request."""
    for seed in range(5):
        fit = LONG_RUN.verdict(REQUESTS, warmed_up(np.random.default_rng(seed), 0.0), granularity=PAGE)
        assert fit.flat, (seed, fit)
        assert fit.low <= 0 <= fit.high


def test_one_transient_spike_does_not_make_a_flat_series_grow() -> None:
    """A 200 MiB spike in the last sample (a request that briefly held a big buffer): a least-squares line would call
    it growth; the Theil-Sen line does not."""
    values = warmed_up(np.random.default_rng(3), 0.0)
    values[-1] += 200 * MiB
    assert LONG_RUN.verdict(REQUESTS, values, granularity=PAGE).flat


def test_for_a_short_series_one_page_of_rss_is_within_the_granularity_but_a_leak_is_not() -> None:
    """1,000 failures: one page that RSS gains half way is 4 bytes per failure, not a leak; 80 bytes per failure is."""
    requests = np.arange(0, 1001, 10)
    step = np.where(requests >= 500, PAGE, 0) + 100 * MiB
    assert LONG_RUN.verdict(requests, step, granularity=PAGE).flat
    assert not LONG_RUN.verdict(requests, step, granularity=1).flat  # the allowance is what makes it flat
    assert not LONG_RUN.verdict(requests, pages(100 * MiB + 80.0 * requests), granularity=PAGE).flat


def test_too_few_samples_after_the_warm_up_are_refused_in_one_line() -> None:
    from wasmlab.errors import ConfigError
    with pytest.raises(ConfigError, match="samples after the warm-up; allowed: at least 3"):
        LONG_RUN.verdict([0, 1, 10], [1, 2, 3])


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_the_script_serves_every_series_and_prints_its_provenance() -> None:
    done = run("--requests", "20000", "--failures", "200", "--chunks", "20",
               "--only", "seed pooled+cached,component-seed pooled+cached,trap,deadline 1 ms,pool exhausted")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Machine: ") and " cores" in lines[0]
    assert lines[1].startswith("Versions: Python ") and "wasmtime " in lines[1] and "glibc" in lines[1]
    assert lines[2].startswith("Settings: ") and "'requests': 20000" in lines[2]
    assert lines[3].startswith("Method: ") and "Theil-Sen" in lines[3]
    table = done.stdout[done.stdout.rindex("\nseries "):]  # the closing table, after the rows printed as each series ended
    for name, served in (("seed pooled+cached", "20,000"), ("component-seed pooled+cached", "20,000"), ("trap", "200"),
                         ("deadline 1 ms", "200"), ("pool exhausted", "200")):
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert row.split()[len(name.split())] == served
    # The seed's own optimised variant keeps nothing per request: a leak in its path fails here already.
    assert next(line for line in table.splitlines() if line.startswith("seed pooled+cached")).endswith("flat")
    assert done.stdout.splitlines()[-1].startswith("Verdict: ")


@pytest.mark.slow
def test_the_baselines_and_the_json_record_each_outcome_and_sample(tmp_path: Path) -> None:
    done = run("--requests", "500", "--chunks", "10", "--only", "seed baseline,component-seed baseline",
               "--format", "json", "--out", str(tmp_path / "result.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result == json.loads((tmp_path / "result.json").read_text()) and result["partial"] is False
    assert [s["name"] for s in result["series"]] == ["seed baseline", "component-seed baseline"]
    for series in result["series"]:
        assert series["outcomes"] == {"ok": 500}
        assert series["samples"]["requests"] == list(range(0, 501, 50))
        assert len(series["samples"]["rss"]) == len(series["samples"]["heap"]) == 11
        assert set(series["fits"]) == {"rss", "heap"}
        # Read from the process, not made up: a Python process with wasmtime loaded holds tens of MiB.
        assert all(50 * MiB < v < 4096 * MiB for v in series["samples"]["rss"])
        assert all(MiB < v < series["samples"]["rss"][k] for k, v in enumerate(series["samples"]["heap"]))


def test_a_bad_size_is_one_line_and_exit_2() -> None:
    done = run("--chunks", "3")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("--chunks 3 is out of range; allowed: an integer >= 10")


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_keeps_the_finished_series_marked_partial_in_one_line(tmp_path: Path, signal_number: int) -> None:
    """The signal is sent once the first series' row is printed (no blind sleep), while the seed baseline runs."""
    out = tmp_path / "partial.json"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--requests", "20000", "--chunks", "100", "--out", str(out),
                                "--only", "seed pooled+cached,seed baseline"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("seed pooled+cached "):
            break
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    name = "SIGTERM" if signal_number == signal.SIGTERM else "SIGINT"
    assert stderr.strip() == f"long_run_memory: stopped by {name}; 1 of 2 series finished (partial); kept in {out}"
    kept = json.loads(out.read_text())
    assert kept["partial"] is True and [s["name"] for s in kept["series"]] == ["seed pooled+cached"]
