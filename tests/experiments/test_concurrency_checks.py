"""One check of an offered rate, wherever it comes from: ``wasmlab concurrency``'s flags (through ``Load``) and a
direct call of ``concurrency`` (notebooks, the advisor's trials) refuse nan and inf in the same line.  The direct
path checked ``not rate > 0`` only, which lets inf through (and would have served with every gap 0)."""

from __future__ import annotations

import pytest

from wasmlab.errors import ConfigError
from wasmlab.experiments.concurrency import check_modes, concurrency
from wasmlab.experiments.concurrency_load import Load
from wasmlab.measure.scenario import Scenario


@pytest.mark.parametrize("rate", [float("inf"), float("nan"), 0.0, -5.0])
def test_every_way_in_refuses_a_rate_that_is_not_a_finite_positive_number_in_one_line(rate):
    line = f"rate = {rate} is out of range; allowed: a finite number of requests per second > 0"
    with pytest.raises(ConfigError) as through_flags:
        Load(threads=(1,), call_paths=("native",), rates=(rate,))
    with pytest.raises(ConfigError) as direct:
        check_modes(1, "shared", "per-worker", "native", rate)
    with pytest.raises(ConfigError) as served:
        # Refused before any engine is built or any request served.
        concurrency(Scenario(requests=10, warmup=1, variants=("pooled+cached",)), 1, call_path="native", rate=rate)
    assert str(through_flags.value) == str(direct.value) == str(served.value) == line


def test_a_finite_positive_rate_passes_every_check():
    Load(threads=(1,), call_paths=("native",), rates=(1e6,))
    check_modes(1, "shared", "per-worker", "native", 1e6)
