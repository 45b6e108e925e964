"""A snapshot's figures from a measurement: each ``+snapshot`` variant beside the same variant with the start-up per
request (its twin).  :mod:`wasmlab.host.snapshot` puts the snapshot's sizes and times on its variant's summary rows;
here they are gathered with both variants' p50 and page faults per request, for the text report, JSON and notebook 10.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from wasmlab.measure.measurement import Measurement

SNAPSHOT = "+snapshot"


def start_up_twin(variant: str) -> str:
    """The variant that serves the same requests with the start-up on every request: ``variant`` without ``snapshot``."""
    composition, at, path = variant.partition("@")
    tokens = [t for t in composition.split("+") if t != "snapshot"]
    return ("+".join(tokens) or "baseline") + at + path


def _variant_figures(rows: pd.DataFrame) -> dict[str, float]:
    return {"latency_us_p50": float(rows["latency_us_p50"].median()),
            "minor_faults_per_request": float(rows["minor_faults_per_request"].mean()) if "minor_faults_per_request" in rows else math.nan,
            "requests": int(rows["requests"].sum())}


def summary(measurement: Measurement) -> list[dict[str, Any]]:
    """One record per ``+snapshot`` variant (empty when the run has none), as the JSON output gives it."""
    table = measurement.summary
    if "snapshot_bytes" not in table or table.empty:
        return []
    ok = table[table["status"] == "ok"] if "status" in table else table
    out = []
    for variant, rows in ok[ok["snapshot_bytes"].notna()].groupby("variant", sort=False):
        first = rows.iloc[0]
        twin = start_up_twin(str(variant))
        twin_rows = ok[ok["variant"] == twin]
        record: dict[str, Any] = {
            "variant": variant, "start_up_variant": twin if not twin_rows.empty else None, "init": first["snapshot_init"],
            "module_bytes": int(first["snapshot_module_bytes"]), "snapshot_bytes": int(first["snapshot_bytes"]),
            "wizer_ms": float(first["snapshot_wizer_ms"]), "snapshot_cached": bool(first["snapshot_cached"]),
            "module_compile_ms": float(first["snapshot_module_compile_ms"]), "snapshot_compile_ms": float(first["snapshot_compile_ms"]),
            "snapshot": _variant_figures(rows),
            "start_up": _variant_figures(twin_rows) if not twin_rows.empty else None,
        }
        start_up = record["start_up"]
        record["p50_ratio"] = (record["snapshot"]["latency_us_p50"] / start_up["latency_us_p50"]
                               if start_up and start_up["latency_us_p50"] else None)
        out.append(record)
    return out
