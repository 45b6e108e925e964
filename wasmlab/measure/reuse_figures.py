"""Instance reuse's figures: per block and per variant, the requests that ran on a fresh instance and on a reused one,
the latency of each kind apart, and the reused requests whose results carried state over from an earlier request.

A run without reuse has every request on a fresh instance: its first-of-instance figures are its figures, and it has
no reused or carried-over requests (a difference there fails the variant, as the lab's result checks always did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# What the carried-over check compares, and what it cannot see: said beside the figure in JSON and tables.
REUSE_CHECK = ("each reused request's return value (or its failure), a recipe's exit and memory reads, and a WASI command's "
               "stdout, stderr and written files, compared with a fresh instance's for the same request (the workload's first "
               "request on a fresh instance); it "
               "sees state that changes a result, not timing nor state the guest keeps but never reports")
# What the check is for a variant without reuse: every request is on a fresh instance.
FRESH_CHECK = "every request on a fresh instance; a result that differs from the expected one fails the variant"
KINDS = ("first", "reused")
STATISTICS = ("p50", "p99")


def _percentiles(ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1000.0
    if us.size == 0:
        return {s: float("nan") for s in STATISTICS}
    return {s: float(np.percentile(us, float(s[1:]))) for s in STATISTICS}


def latency_columns(latency_ns: Sequence[int] | np.ndarray, fresh: Sequence[bool] | np.ndarray) -> dict[str, float]:
    """p50 and p99 (µs) of the requests on a fresh instance (``latency_us_p50_first``) and on a reused one
    (``latency_us_p50_reused``), ``nan`` where there are none."""
    ns, is_fresh = np.asarray(latency_ns, dtype=np.int64), np.asarray(fresh, dtype=bool)
    out: dict[str, float] = {}
    for kind, chosen in zip(KINDS, (ns[is_fresh], ns[~is_fresh]), strict=True):
        out.update({f"latency_us_{s}_{kind}": v for s, v in _percentiles(chosen).items()})
    return out


def block_columns(reuse: int, latency_ns: Sequence[int], served: Sequence[bool], fresh: Sequence[bool],
                  carried: Sequence[bool]) -> dict[str, Any]:
    """One block's reuse columns, latencies over its ``served`` requests."""
    keep = np.asarray(served, dtype=bool)
    return {
        "reuse": reuse,
        "reused_requests": int(np.count_nonzero(~np.asarray(fresh, dtype=bool))),
        "carried_over_requests": int(np.count_nonzero(carried)),
        **latency_columns(np.asarray(latency_ns, dtype=np.int64)[keep], np.asarray(fresh, dtype=bool)[keep]),
        "reuse_check": REUSE_CHECK if reuse > 1 else FRESH_CHECK,
    }


def variant_columns(group: pd.DataFrame, samples: pd.DataFrame | None) -> dict[str, Any]:
    """A variant's reuse columns over its repetitions (``group``: its summary rows): counts summed, latencies pooled over
    its served ``samples`` (else the repetitions' medians); empty for results saved before reuse existed."""
    if "reuse" not in group:
        return {}
    out: dict[str, Any] = {"reuse": int(group["reuse"].iloc[0]), "reused_requests": int(group["reused_requests"].sum()),
                           "carried_over_requests": int(group["carried_over_requests"].sum()),
                           "reuse_check": str(group["reuse_check"].iloc[0])}
    if samples is not None and "fresh_instance" in samples and not samples.empty:
        out.update(latency_columns(samples["latency_ns"].to_numpy(), samples["fresh_instance"].to_numpy()))
    else:
        out.update({f"latency_us_{s}_{k}": float(group[f"latency_us_{s}_{k}"].median()) for s in STATISTICS for k in KINDS})
    return out
