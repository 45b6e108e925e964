"""Instance reuse as text and JSON: per variant, the requests on a fresh instance and on a reused one, their latencies
apart, throughput, and the isolation price (reused requests whose results carried state over from an earlier request),
with what the carried-over check can and cannot see."""

from __future__ import annotations

from typing import Any

from wasmlab.measure.measurement import Measurement
from wasmlab.measure.reuse_figures import FRESH_CHECK, REUSE_CHECK

COLUMNS = {
    "variant": "variant",
    "reuse": "reuse N",
    "requests": "requests",
    "reused_requests": "reused",
    "carried_over_requests": "carried over",
    "latency_us_p50_first": "p50 first µs",
    "latency_us_p50_reused": "p50 reused µs",
    "latency_us_p99_first": "p99 first",
    "latency_us_p99_reused": "p99 reused",
    "throughput_rps": "req/s",
}
SEES = ("return values", "a component's result, as the value its WAVE text encodes",
        "a failure (trap) where a fresh instance succeeded", "a recipe's exit and the bytes of its memory reads",
        "a WASI command's stdout, stderr and written files")
CANNOT_SEE = ("timing (a request's latency revealing an earlier one's work)", "memory, globals or tables the guest keeps but never "
              "reports in a result or a read", "the earlier calls of a component recipe of several calls (those guests are "
              "refused with +reuseN)")


def reusing(measurement: Measurement) -> bool:
    """Whether any variant of the run reused instances."""
    summary = measurement.summary
    return "reuse" in summary and bool((summary["reuse"].fillna(1) > 1).any())


def reuse_json(measurement: Measurement) -> dict[str, Any] | None:
    """What the JSON headline says of reuse beside each variant's own columns: the check, what it sees and cannot."""
    if not reusing(measurement):
        return None
    return {"reuse_check": REUSE_CHECK, "without_reuse": FRESH_CHECK, "check_sees": list(SEES), "check_cannot_see": list(CANNOT_SEE)}


def reuse_table(measurement: Measurement) -> str:
    """Every variant's fresh and reused requests, their latencies apart and the carried-over count; then what the count
    means.  Empty when no variant reused instances."""
    if not reusing(measurement):
        return ""
    table = measurement.variants(None)
    shown = table[[c for c in COLUMNS if c in table]].rename(columns=COLUMNS)
    text = shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}")
    return "\n".join([
        "Instance reuse: an instance with its store serves N requests in a row (first: a request on a fresh instance; "
        "reused: on one an earlier request used; no instance outlives a timed slice)",
        text,
        f"Carried over: {REUSE_CHECK}.",
        f"It sees: {'; '.join(SEES)}.  It cannot see: {'; '.join(CANNOT_SEE)}.",
        "With reuse the count is a measured price, not a failure; without reuse (N = 1) " + FRESH_CHECK + ".",
    ])
