"""What ``wasmlab concurrency`` prints: the summary of a concurrency run as a text table, and how it was measured."""

from __future__ import annotations

from typing import Any

COLUMNS = {"call_path": "path", "variant": "variant", "threads": "threads", "offered_rps": "offered/s", "throughput_rps": "req/s",
           "latency_us_p50": "p50 µs", "latency_us_p99": "p99 µs", "outcome_ok": "ok", "failed_requests": "failed",
           "reused_requests": "reused", "carried_over_requests": "carried over",
           "minor_faults_per_request": "faults/req", "voluntary_switches_per_request": "vcsw/req",
           "involuntary_switches_per_request": "ivcsw/req", "tlb_shootdowns_per_request": "TLB/req",
           "rss_mib": "RSS MiB", "address_space_mib": "reserved MiB"}


def concurrency_text(served: Any, open_loop: bool) -> str:
    """The summary as a text table, and how it was measured."""
    summary, metadata = served.summary, served.metadata
    parameters = metadata["parameters"]
    shown = {k: v for k, v in COLUMNS.items() if open_loop or k != "offered_rps"}
    summary["rss_mib"], summary["address_space_mib"] = summary["rss_bytes"] / 2**20, summary["address_space_bytes"] / 2**20
    table = summary[[c for c in shown if c in summary]].rename(columns=shown).to_string(
        index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}")
    pool = ", ".join(f"{k}={v}" for k, v in parameters["pool"].items() if v is not None)
    return (f"{table}\n\nMeasured: {parameters['workload']}, {parameters['requests_per_thread']} requests per worker after "
            f"{parameters['warmup']} warm-up, {parameters['repeats']} runs per configuration in rotation ({metadata['statistic']}); "
            f"pool {parameters['pool_mode']} ({pool}), exhaustion {parameters['exhaustion']}; "
            f"{metadata['cpu_model']}, {metadata['cpu_count']} cores, wasmtime {metadata['wasmtime_version']}; "
            f"TLB shootdowns are machine-wide; RSS is the peak resident memory added while serving, reserved the address space "
            f"the engines and pools added (measured, VmSize), plus one live instance's reservation per worker on demand; "
            f"throughput over the wall of the served requests, from each worker's own first start to last end"
            f"{load_note(metadata)}{partial_note(metadata)}")


def load_note(metadata: dict[str, Any]) -> str:
    """The machine's load across the run, and a warning when other processes took CPU time (as ``reproduce`` says)."""
    if "loadavg_1m_before" not in metadata:
        return ""
    busy = "\nWARNING: the machine was busy during this run; figures may be noisy" if metadata.get("machine_busy") else ""
    return (f"; load {metadata['loadavg_1m_before']:.2f} -> {metadata['loadavg_1m_after']:.2f}, "
            f"other processes {metadata['other_cpu_cores']:.2f} cores{busy}")


def partial_note(metadata: dict[str, Any]) -> str:
    """A line for a run stopped by SIGINT or SIGTERM: the medians are of the runs that finished."""
    if not metadata.get("partial"):
        return ""
    return (f"\nPartial: interrupted ({metadata['interrupted_by']}) after {metadata['runs_finished']} of "
            f"{metadata['runs_planned']} configuration runs; the medians are of the finished runs")
