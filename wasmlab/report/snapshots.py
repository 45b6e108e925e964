"""Is a snapshot worth it for this guest?  Each ``+snapshot`` variant beside the same variant with the start-up per request.

From a measurement's summary rows (:mod:`wasmlab.host.snapshot` puts the snapshot's figures on its variant's rows):
per request, the p50 latency and the minor page faults of both; once per module, the module's and the snapshot's
sizes, Wizer's time, and the compile times of both (a default engine, the median of three).  A variant without its
start-up-per-request twin in the run is shown alone.
"""

from __future__ import annotations

from wasmlab.measure.measurement import Measurement
from wasmlab.measure.snapshot_figures import SNAPSHOT, start_up_twin, summary

__all__ = ["SNAPSHOT", "start_up_twin", "summary", "table"]


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
