"""The cheats a runtime of the axis other than wasmtime (V8, Extism) must not get away with, one test for both: a result
checked only on the first request of a block, on a kept instance or plugin and on a fresh one per request."""

from __future__ import annotations

import dataclasses

import pytest

from tests.host.test_extism import FRESH as EXTISM_FRESH
from tests.host.test_v8 import ANSWER, COUNTED, REUSING, V8_VARIANTS, K, close_all, guest
from tests.host.test_v8 import v8_runtimes as hosted_runtimes  # builds any variants, whichever runtime they name
from wasmlab.errors import ResultMismatch

KEPT = (*REUSING, "cached+reuse16@extism", "baseline+reuse16@extism")
FRESH = (*V8_VARIANTS, *EXTISM_FRESH)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("variant", KEPT)
def test_a_wrong_answer_at_request_k_on_a_reused_instance_stops_the_variant_at_k(variant):
    """The guest answers 42, 42, then 41 on its instance's Kth call (a kept V8 instance or Extism plugin): a runtime
    checking request 1 only would serve all 8."""
    runtimes = hosted_runtimes([guest("counted", COUNTED, 42)], (variant,))
    try:
        with pytest.raises(ResultMismatch, match=f"returned 41, expected 42.*request {K} of a block of 8"):
            runtimes[variant].block([0] * 8, [0] * 8, [])
    finally:
        close_all(runtimes)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("variant", FRESH)
def test_a_planted_wrong_expectation_at_request_k_stops_a_fresh_instance_variant_at_k(variant):
    """Workload 1 is the same guest with a planted wrong expectation (43); the trace reaches it at request K only."""
    right = guest("answer", ANSWER, 42)
    planted = dataclasses.replace(right, name="planted", expected=43)
    runtimes = hosted_runtimes([right, planted], (variant,))
    try:
        indices = [0] * (K - 1) + [1] + [0] * 4
        with pytest.raises(ResultMismatch, match=f"'planted' returned 42, expected 43.*request {K} of a block of 7"):
            runtimes[variant].block(indices, [0] * len(indices), [])
    finally:
        close_all(runtimes)
