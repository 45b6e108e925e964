"""The time budget of a run's timed requests, one concept in one place: "``requests`` per repetition, or fewer if they
would not fit in ``--time-budget`` seconds", for guests whose requests take from milliseconds to seconds (a standard
suite's), where a fixed count is either a few seconds or hours.

As criterion does, the budget is met by calibration, not by a clock read between requests: each variant's warm-up
says what one of its requests costs, and every repetition serves the same first ``N`` requests of the trace, ``N`` the
largest count whose predicted time (every variant, every repetition, the phased re-run when phases are timed) fits
the budget, at least one and never more than asked.  Every variant serves the same requests in every repetition, so
the paired ratios over repetitions are still paired; a clock checked inside the timed loop would end variants and
repetitions at different requests and cost a timer read per request.  The prediction is only as good as the warm-up
is representative: the run's metadata keeps the predicted and the actual time, and the figures print both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.measure.measurement import Measurement

BUDGET = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m)?$")
UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


def parse_budget(value: Any) -> float | None:
    """A time budget in seconds (``30``, ``30s``, ``2.5s``, ``500ms``, ``2m``; ``0``, ``""`` or ``None``: none), or a
    one-line ConfigError naming it."""
    if value is None or value == "" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    found = BUDGET.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise ConfigError(f"time budget {value!r} is not a duration; allowed: a positive number of seconds such as 30, "
                          f"30s, 2.5s, 500ms or 2m (0: none)")
    seconds = float(found["value"]) * UNITS[found["unit"]]
    return seconds or None


@dataclass(frozen=True)
class BudgetFit:
    """How a budget cut a run: the requests asked and served per repetition, and the time predicted for them."""

    budget_s: float
    requests_asked: int
    requests: int
    per_request_ns: Mapping[str, float]  # each variant's warm-up mean, the calibration
    predicted_s: float  # the timed requests of every variant and repetition, as predicted

    @property
    def cut(self) -> bool:
        return self.requests < self.requests_asked

    def columns(self) -> dict[str, Any]:
        """For the run's metadata (each variant's calibration is its rows' ``warmup_ns_per_request``)."""
        return {"time_budget_s": self.budget_s, "requests_asked": self.requests_asked, "budget_predicted_s": self.predicted_s}


def fit(budget_s: float, asked: int, per_request_ns: Mapping[str, float], repeats: int, phases: bool) -> BudgetFit:
    """The largest count of requests per repetition (1 to ``asked``) whose timed requests, ``repeats`` times for every
    variant of ``per_request_ns`` (twice with ``phases``: the phased re-run serves them again), fit ``budget_s``."""
    passes = repeats * (2 if phases else 1)
    per_round_ns = sum(per_request_ns.values()) * passes
    fits = int(budget_s * 1e9 // per_round_ns) if per_round_ns > 0 else asked
    requests = max(1, min(asked, fits))
    return BudgetFit(budget_s, asked, requests, dict(per_request_ns), requests * per_round_ns / 1e9)


def describe(meta: Mapping[str, Any], timed_s: float | None = None) -> str:
    """The budget in words for the figures' lines ("" without one): ``in a 30 s budget: 37 of 1000 requests per
    repetition, predicted 29.1 s from the warm-up, timed 28.7 s``."""
    budget = meta.get("time_budget_s")
    if budget is None or (isinstance(budget, float) and math.isnan(budget)):
        return ""
    asked, served = int(meta.get("requests_asked", meta["requests"])), int(meta["requests"])
    rerun = " (the phased re-run, which the prediction counts, besides)" if meta.get("phases") else ""
    timed = f", timed {timed_s:.3g} s{rerun}" if timed_s is not None else ""
    share = f"{served} of {asked} requests" if served < asked else f"all {asked} requests"
    return f"in a {budget:g} s budget: {share} per repetition, predicted {meta['budget_predicted_s']:.3g} s from the warm-up{timed}"


def in_words(measurement: Measurement) -> str:
    """`` (in a 30 s budget: ...)`` for the Measured line where the run had a time budget, else ``""``."""
    timed_s = float(measurement.samples["latency_ns"].sum()) / 1e9 if len(measurement.samples) else None
    words = describe(measurement.metadata, timed_s)
    return f" ({words})" if words else ""
