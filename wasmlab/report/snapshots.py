"""Is a snapshot worth it for this guest?  Each ``+snapshot`` variant beside the same variant with the start-up per request.

From a measurement's summary rows (:mod:`wasmlab.host.snapshot` puts the snapshot's figures on its variant's rows):
per request, the p50 latency and the minor page faults of both; once per module, the module's and the snapshot's
sizes, Wizer's time, and the compile times of both (a default engine, the median of three).  A variant without its
start-up-per-request twin in the run is shown alone.
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


def table(measurement: Measurement) -> str:
    """The snapshot report as text: one block per ``+snapshot`` variant (empty string when there is none)."""
    lines = []
    for r in summary(measurement):
        snap, start = r["snapshot"], r["start_up"]
        lines.append(f"Snapshot ({r['variant']}, init {r['init']}): module {r['module_bytes']:,} B -> snapshot "
                     f"{r['snapshot_bytes']:,} B; Wizer {r['wizer_ms']:.1f} ms{' (made earlier, cached)' if r['snapshot_cached'] else ''}; "
                     f"compile {r['module_compile_ms']:.2f} ms -> {r['snapshot_compile_ms']:.2f} ms (default engine, median of 3)")
        if start is not None:
            lines.append(f"  per request, p50: start-up every request ({r['start_up_variant']}) {start['latency_us_p50']:.1f} µs, "
                         f"{start['minor_faults_per_request']:.1f} faults -> from the snapshot {snap['latency_us_p50']:.1f} µs, "
                         f"{snap['minor_faults_per_request']:.1f} faults ({r['p50_ratio']:.2f}x)")
        else:
            lines.append(f"  per request, p50: from the snapshot {snap['latency_us_p50']:.1f} µs, {snap['minor_faults_per_request']:.1f} "
                         f"faults (add {start_up_twin(r['variant'])} to the variants to see the start-up per request beside it)")
    return "\n".join(lines)
