"""The seed's table and the figures around it, as text or JSON.

Every report names how its figures were measured: requests, repetitions, warm-up,
call path, percentiles, the harness's own overhead, the machine and library versions.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from wasmlab.measure.budget import in_words as describe_budget
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.stats import PAIRED_METHOD, geometric_mean, paired_by_repetition, per_repetition
from wasmlab.measure.warmup import WarmupDone
from wasmlab.measure.warmup import describe as describe_warmup
from wasmlab.report import variant_style
from wasmlab.report.reuse_text import reuse_json, reusing

REFERENCE = "baseline"
OPTIMIZED = "pooled+cached"
# A workload's check (Workload.check: JSON's checked_against) as the "Measured:" line says it.
CHECK_WORDS = {"expected": "every result checked against the workload's expected result",
               "first-result": "every result checked against the first request's result (no expectation given)",
               "none": "results NOT checked (--no-check)"}
# What the headline speedup is: exactly baseline_total_ms / optimized_total_ms of the JSON and the seed table.
SPEEDUP_STATISTIC = ("ratio of the geometric means over repetitions of each repetition's total time "
                     "(= geometric mean of the per-repetition speedups); " + PAIRED_METHOD)
# Said wherever a speedup is shown: each variant's is over the reference of its own call path (stats.own_references).
SPEEDUP_OVER = "each variant's speedup is over the baseline of its own call path (an @native row over baseline@native)"


def _pick(table: pd.DataFrame, variant: str) -> dict[str, Any] | None:
    if "variant" not in table:  # no variant finished
        return None
    rows = table[table["variant"] == variant]
    return None if rows.empty else rows.iloc[0].to_dict()


def headline(measurement: Measurement) -> dict[str, Any]:
    """The seed comparison as one flat JSON-ready dict (speedup, per-variant figures, metadata)."""
    table = measurement.variants(REFERENCE)
    base, best = _pick(table, REFERENCE), _pick(table, OPTIMIZED)
    meta = measurement.metadata
    out: dict[str, Any] = {
        "speedup": best["speedup"] if base and best else None,
        "speedup_ci95": [_clean(best["speedup_ci_low"]), _clean(best["speedup_ci_high"])] if base and best else None,
        "speedup_statistic": SPEEDUP_STATISTIC,
        "speedup_over": best["speedup_over"] if base and best else None,
        "speedup_repetitions": best["speedup_repetitions"] if base and best else None,
        "baseline_total_ms": base["total_ms_per_repetition"] if base else None,
        "optimized_total_ms": best["total_ms_per_repetition"] if best else None,
        "baseline_us_mean": base["latency_us_mean"] if base else None,
        "optimized_us_mean": best["latency_us_mean"] if best else None,
        "call_path": meta["parameters"].get("call_path"),
        "call_paths": sorted(set(measurement.summary["call_path"])),
        "requests": meta["requests"],
        "repeats": meta["repeats"],
        "warmup": meta["warmup"],
        "warmup_done": {name: {"requests": d.requests, "stopped": d.stopped} for name, d in warmups_done(measurement).items()},
        "time_budget": ({key: meta[key] for key in ("time_budget_s", "requests_asked", "budget_predicted_s")}
                        if meta.get("time_budget_s") is not None else None),
        "variants": {
            row["variant"]: {k: _clean(v) for k, v in row.items() if k != "variant"} for row in table.to_dict("records")
        },
        "checked_against": {variant: str(meta.get("workload_check", "expected"))
                            for variant in dict.fromkeys(measurement.summary["variant"])},
        "api_over_lean": api_over_lean(measurement),
        "native_over_lean": native_over_lean(measurement),
        "path_ratios": {name: {row["variant"]: {k: _clean(v) for k, v in row.items() if k != "variant"}
                               for row in table.to_dict("records")}
                        for name, table in path_ratios(measurement).items()} or None,
        "phases_us_p50": {variant: {phase: _clean(v) for phase, v in row.items() if phase not in ("sum", "unphased p50", "stamps add")}
                          for variant, row in phase_medians(measurement).iterrows()} or None,
        "steps_us_p50": {variant: {step: _clean(v) for step, v in row.items() if step not in ("sum", "call phase")}
                         for variant, row in step_medians(measurement).iterrows()} or None,
        "reuse": reuse_json(measurement),  # instance reuse: what the carried-over check sees (None: no variant reused)
        "errors": measurement.errors,
        "unexpected_outcomes": unexpected_outcomes(measurement),
        "harness": {k: meta[k] for k in ("timer_overhead_ns", "harness_overhead_ns", "crossing_ns")},
        "machine_busy": meta["machine_busy"],
        "metadata": {k: _clean(v) for k, v in meta.items()},
    }
    return out


BINDING_COLUMNS = ["variant", "lean_us_mean", "api_us_mean", "ratio", "ci95_low", "ci95_high",
                   "median_ratio", "median_ci95_low", "median_ci95_high"]


def binding_table(measurement: Measurement) -> pd.DataFrame:
    """Per variant served on both paths in this run: mean µs on each (geometric mean of the per-repetition
    means), and api/lean of the per-repetition means and of the per-repetition medians (the typical request;
    means move with the tails), paired by repetition with 95% intervals over repetitions."""
    return path_table(measurement, "api", "lean")


def path_table(measurement: Measurement, numerator: str, denominator: str) -> pd.DataFrame:
    """:func:`binding_table` for any two call paths: ``numerator``/``denominator`` per variant served on both
    (columns ``{path}_us_mean``, ``ratio``, ``ci95_*``, ``median_ratio``, ``median_ci95_*``)."""
    return measurement.derived(f"paths {numerator}/{denominator}", lambda: _path_table(measurement, numerator, denominator))


def _path_table(measurement: Measurement, numerator: str, denominator: str) -> pd.DataFrame:
    columns = ["variant", f"{denominator}_us_mean", f"{numerator}_us_mean", *BINDING_COLUMNS[3:]]
    summary = measurement.summary[measurement.summary["status"] == "ok"]
    rows = []
    if summary.empty:
        return pd.DataFrame(columns=columns)
    compositions = summary["variant"].str.split("@").str[0]
    for composition in dict.fromkeys(compositions):
        labels = {}
        for path in (denominator, numerator):
            rows_for = summary[(compositions == composition) & (summary["call_path"] == path)]
            if not rows_for.empty:
                labels[path] = rows_for["variant"].iloc[0]
        if len(labels) < 2:
            continue
        # Both paths are served in every repetition, interleaved: paired by repetition.
        top, bottom = labels[numerator], labels[denominator]
        point, low, high = paired_by_repetition(summary, top, bottom, "latency_us_mean").as_tuple()
        median, median_low, median_high = paired_by_repetition(summary, top, bottom, "latency_us_p50").as_tuple()
        rows.append({"variant": composition,
                     f"{denominator}_us_mean": geometric_mean(per_repetition(summary, bottom, "latency_us_mean")),
                     f"{numerator}_us_mean": geometric_mean(per_repetition(summary, top, "latency_us_mean")),
                     "ratio": point, "ci95_low": low, "ci95_high": high,
                     "median_ratio": median, "median_ci95_low": median_low, "median_ci95_high": median_high})
    return pd.DataFrame(rows, columns=columns)


def path_ratio(measurement: Measurement, numerator: str, denominator: str, composition: str = OPTIMIZED) -> dict[str, float] | None:
    """``numerator``/``denominator`` call paths for ``composition`` in this run (a :func:`path_table` row);
    ``None`` unless the run served it on both (with requests that succeeded: a path whose every request failed has no
    figure to compare)."""
    table = path_table(measurement, numerator, denominator)
    rows = table[table["variant"] == composition]
    if rows.empty:
        return None
    row = {k: _clean(v) for k, v in rows.iloc[0].to_dict().items()}
    return None if row["ratio"] is None or row["median_ratio"] is None else row


def path_ratios(measurement: Measurement) -> dict[str, pd.DataFrame]:
    """Every other call path of the run over the lean path (else over the run's first path), per composition served on
    both: ``{"native_over_lean": path_table(native, lean), "api_over_lean": ...}``; empty for a run of one path."""
    paths = list(dict.fromkeys(measurement.summary["call_path"])) if "call_path" in measurement.summary else []
    if len(paths) < 2:
        return {}
    under = "lean" if "lean" in paths else str(measurement.metadata.get("parameters", {}).get("call_path") or paths[0])
    tables = {f"{path}_over_{under}": path_table(measurement, path, under) for path in paths if path != under}
    return {name: table for name, table in tables.items() if not table.empty}


def api_over_lean(measurement: Measurement, composition: str = OPTIMIZED) -> dict[str, float] | None:
    """How much slower the api path is than the lean path for ``composition``, measured in the same run;
    ``None`` unless the run served it on both paths."""
    return path_ratio(measurement, "api", "lean", composition)


def native_over_lean(measurement: Measurement, composition: str = OPTIMIZED) -> dict[str, Any] | None:
    """native/lean for ``composition`` in the same run (below 1: the native path is faster); ``None`` unless both ran."""
    return path_ratio(measurement, "native", "lean", composition)


def unexpected_outcomes(measurement: Measurement) -> dict[str, str]:
    """Per variant whose timed requests did not all end as the workload is expected to (``ok`` for
    any ordinary workload, a trap or a timeout for a hostile guest): what they ended as instead.
    Such a variant's latencies time failed requests, so its figures say nothing about serving one."""
    from wasmlab.host.outcomes import KINDS

    expected = str(measurement.metadata.get("workload_expected_outcome") or "ok").split("(")[0]
    table = measurement.variants(REFERENCE)
    found = {}
    for row in table.to_dict("records"):
        requests = int(row["requests"])
        counts = {kind: int(row.get(f"outcome_{kind}", 0) or 0) for kind in KINDS}
        if f"outcome_{expected}" not in row or counts.get(expected, 0) == requests:
            continue
        others = ", ".join(f"{kind} x{n}" for kind, n in counts.items() if kind != expected and n)
        first = f"; first: {row['first_failure']}" if row.get("first_failure") else ""
        found[row["variant"]] = (f"{requests - counts.get(expected, 0)} of {requests} timed requests did not end "
                                 f"{expected} ({others}){first}")
    return found


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _dispatch(measurement: Measurement) -> str:
    """The C calls a request of each variant made (counted once per variant), and what they cost in ctypes:
    probed at each call's own arity and types when recorded, else at the one-argument probe's rate."""
    table = measurement.variants(REFERENCE)
    if "crossings_per_request" not in table:
        return ""
    crossing = float(measurement.metadata["crossing_ns"])
    records = table.to_dict("records")
    # The native path's requests make no ctypes call (its loop is in C): said once, not costed.
    native = [row["variant"] for row in records if row.get("call_path") == "native"]
    counted = [row for row in records if row["crossings_per_request"] == row["crossings_per_request"] and row["variant"] not in native]
    native_text = f"; native variants ({len(native)}) make no ctypes call per request (the loop is in C)" if native else ""
    if not counted:
        return native_text
    probed = all(row.get("dispatch_ns_per_request", float("nan")) == row.get("dispatch_ns_per_request", float("nan"))
                 for row in counted)
    def cost(row: dict[str, Any]) -> float:
        return float(row["dispatch_ns_per_request"] if probed else row["crossings_per_request"] * crossing)
    shown = ", ".join(f"{row['variant']} {int(row['crossings_per_request'])} (~{cost(row) / 1000:.2f} µs)" for row in counted)
    how = "each call probed at its own arity and types" if probed else "at the one-argument probe's cost"
    return f"; C calls per request, counted: {shown}, {how}{native_text}"


def _policy_of(measurement: Measurement, variant: str) -> str:
    rows = measurement.summary[measurement.summary["variant"] == variant]
    return str(rows["cache_policy"].iloc[0]) if "cache_policy" in rows and not rows.empty else "cache"


def _us(value: float) -> str:
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}"


def _ms(value: float) -> str:
    """A total in ms to four significant digits below 10 ms: at 2 decimals, a native run's 0.15 ms total was 3% off
    the speedup printed beside it (0.145-0.155)."""
    return f"{value:.2f}" if value >= 10 else f"{value:.4g}"


def seed_table(measurement: Measurement, brief: bool = False) -> str:
    """The seed PR's three-row table, measured side by side in this run; ``brief``: the rows alone (the short printout
    says how they are made in fewer words, and shows the native path in its own table)."""
    table = measurement.variants(REFERENCE)
    base, best = _pick(table, REFERENCE), _pick(table, OPTIMIZED)
    if not base or not best:
        return f"(the seed table needs both '{REFERENCE}' and '{OPTIMIZED}' among the variants)"
    requests = measurement.metadata["requests"]
    ci = (f"(95% CI {best['speedup_ci_low']:.1f}-{best['speedup_ci_high']:.1f})" if not math.isnan(best["speedup_ci_low"])
          else "(one repetition: no interval)")
    rows = [
        ("Metric", "Standard (baseline)", "Pooled + Cached", "Speedup"),
        (
            "Total time",
            f"{_ms(base['total_ms_per_repetition'])} ms",
            f"{_ms(best['total_ms_per_repetition'])} ms",
            f"{best['speedup']:.1f}x {ci}",
        ),
        ("Avg latency", f"{_us(base['latency_us_mean'])} µs", f"{_us(best['latency_us_mean'])} µs", ""),
        (
            "p50 / p99",
            f"{_us(base['latency_us_p50'])} / {_us(base['latency_us_p99'])} µs",
            f"{_us(best['latency_us_p50'])} / {_us(best['latency_us_p99'])} µs",
            "",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    if brief:
        return "\n".join(lines)
    repetitions = int(best["speedup_repetitions"])
    path = best.get("call_path") or measurement.metadata["parameters"].get("call_path")
    lines.append(f"(total time: geometric mean over {repetitions} repetitions of {requests} requests each; speedup: {OPTIMIZED} over "
                 f"{best['speedup_over']}, both on the {path} path, the ratio of those totals, 95% CI from the spread of the "
                 f"{repetitions} per-repetition ratios (Student t); latency: over every timed request)")
    native = native_over_lean(measurement)
    if native:
        interval = (f"95% CI {native['ci95_low']:.2f}-{native['ci95_high']:.2f}" if native["ci95_low"] is not None
                    else "one repetition: no interval")
        lines.append(f"Native path: {OPTIMIZED}@native {native['native_us_mean']:.2f} µs per request against {native['lean_us_mean']:.2f} µs "
                     f"on the lean path above: native_over_lean {native['ratio']:.2f} ({interval}), paired by repetition"
                     + _speedup_words(_pick(table, f"{OPTIMIZED}@native")))
    return "\n".join(lines)


def _speedup_words(row: dict[str, Any] | None) -> str:
    """'; its speedup over baseline@native 120.3x (95% CI ...)', or why it has none."""
    if not row or "speedup" not in row:
        return ""
    if not row["speedup_over"]:
        return f"; no speedup: {row['speedup_note']}"
    ci = (f"95% CI {row['speedup_ci_low']:.1f}-{row['speedup_ci_high']:.1f}" if not math.isnan(row["speedup_ci_low"])
          else "one repetition: no interval")
    return f"; its speedup over {row['speedup_over']} {row['speedup']:.1f}x ({ci})"


def variants_table(measurement: Measurement) -> str:
    """Every variant: mean and percentiles in µs, spread across repetitions, throughput, speedup."""
    table = measurement.variants(REFERENCE)
    if table.empty:
        return "(no variant finished)"
    table = variant_style.in_order(table)  # the lab's one order, not the run's
    columns = {
        "variant": "variant",
        "latency_us_mean": "mean µs",
        "latency_us_p50": "p50",
        "latency_us_p90": "p90",
        "latency_us_p99": "p99",
        "latency_us_min": "min",
        "latency_us_max": "max",
        "mean_us_rep_min": "rep-mean lo",
        "mean_us_rep_max": "rep-mean hi",
        "throughput_rps": "req/s",
        "minor_faults_per_request": "faults/req",
        "cache_hit_rate": "hit rate",
    }
    if "speedup" in table:
        columns["speedup"] = "speedup"
        columns["speedup_over"] = "over"
    shown = table[list(columns)].rename(columns=columns)
    if "over" in shown:
        shown["over"] = shown["over"].replace("", "-")
    lines = [str(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}"))]
    if "speedup" in table:
        lines.append(f"(speedup: {SPEEDUP_OVER}, the ratio of geometric-mean total times paired by repetition)")
        lines += [f"No speedup for {row['variant']}: {row['speedup_note']}" for row in table.to_dict("records") if row["speedup_note"]]
    lines += [_path_ratio_lines(name, ratios) for name, ratios in path_ratios(measurement).items()]
    return "\n".join(lines)


def _path_ratio_lines(name: str, ratios: pd.DataFrame) -> str:
    """A path ratio per composition, by per-repetition means and medians with their intervals."""
    def interval(low: float, high: float) -> str:
        return f"{low:.2f}-{high:.2f}" if low == low and high == high else "one repetition: no interval"
    numerator, denominator = name.split("_over_")
    rows = [f"  {row['variant']}: {row[f'{numerator}_us_mean']:.2f} / {row[f'{denominator}_us_mean']:.2f} µs, {row['ratio']:.2f} "
            f"({interval(row['ci95_low'], row['ci95_high'])}) by means, {row['median_ratio']:.2f} "
            f"({interval(row['median_ci95_low'], row['median_ci95_high'])}) by medians"
            for row in variant_style.in_order(ratios).to_dict("records")]
    return (f"{name} per composition ({numerator}/{denominator} of the per-repetition mean and median latency, same run, paired by "
            f"repetition, 95% Student-t CI):\n" + "\n".join(rows))


def warmups_done(measurement: Measurement) -> dict[str, WarmupDone]:
    """Each variant's warm-up (how many requests, why it stopped), from its summary rows; empty for older results."""
    summary = measurement.summary
    if "warmup_requests" not in summary:
        return {}
    rows = summary[summary["warmup_requests"].notna()].drop_duplicates("variant")
    return {row["variant"]: WarmupDone(int(row["warmup_requests"]), str(row["warmup_stopped"])) for row in rows.to_dict("records")}


def provenance(measurement: Measurement) -> str:
    """How the figures were measured, in three lines."""
    m = measurement.metadata
    lines = [
        f"Measured: workload {m.get('workload', '?')} ({m.get('workload_bytes', '?')} B), {m['requests']} requests x "
        f"{m['repeats']} repetitions{describe_budget(measurement)} after {describe_warmup(m['warmup'], warmups_done(measurement))} per variant, "
        f"variants {m['variant_order']}, "
        f"call path {' and '.join(dict.fromkeys(measurement.summary['call_path']))}, cyclic GC off in timed loops, "
        f"preset {m.get('preset')}; {CHECK_WORDS[str(m.get('workload_check', 'expected'))]}"
        + ("; a reused instance's result compared with a fresh instance's and counted, not failed" if reusing(measurement) else ""),
        f"Harness: a perf_counter_ns pair {m['timer_overhead_ns']:.0f} ns; timed loop around a no-op "
        f"{m['harness_overhead_ns']:.0f} ns/request; one C call {m['crossing_ns']:.0f} ns{_dispatch(measurement)}",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} cores, Python {m['python_version']}, wasmtime "
        f"{m['wasmtime_version']}, commit {m['git_commit'][:12]}; load {m['loadavg_1m_before']:.2f} -> "
        f"{m['loadavg_1m_after']:.2f}, other processes {m['other_cpu_cores']:.2f} cores"
        + (f", pinned to CPU {m['cpu_pinned']}" if m["cpu_pinned"] >= 0 else ""),
    ]
    best = _pick(measurement.variants(REFERENCE), OPTIMIZED)
    if best and best.get("cache_lookup_ns") == best.get("cache_lookup_ns") and best.get("cache_lookup_ns") is not None:
        lookup = best["cache_lookup_ns"] / 1000
        lines.append(f"Cache: of {OPTIMIZED}'s {best['latency_us_mean']:.2f} µs per request, {lookup:.2f} µs "
                     f"({lookup / best['latency_us_mean']:.0%}) is the lab's own compiled-module lookup (a "
                     f"{_policy_of(measurement, OPTIMIZED)} hit, "
                     f"timed on its own after warm-up)")
    checked = [row for row in measurement.variants(REFERENCE).to_dict("records")
               if not math.isnan(float(row.get("output_check_ns_per_request", math.nan)))]
    if checked:  # a WASI command's outputs: read back and compared after each request's recorded time, not in it
        shown = ", ".join(f"{row['variant']} {row['output_check_ns_per_request'] / 1000:.2f} µs" for row in checked)
        lines.append(f"Output check: reading back and comparing each request's stdout, stderr and files, per request: {shown}; "
                     "timed on its own after each request, not in its latency")
    ratio = api_over_lean(measurement)
    if ratio:
        def interval(low: float | None, high: float | None) -> str:
            return f"95% CI {low:.2f}-{high:.2f}" if low is not None and high is not None else "one repetition: no interval"
        lines.append(
            f"Binding: {ratio['variant']} through the api path is {ratio['median_ratio']:.2f}x slower than through the lean path "
            f"by per-repetition medians ({interval(ratio['median_ci95_low'], ratio['median_ci95_high'])}), {ratio['ratio']:.2f}x by "
            f"per-repetition means ({interval(ratio['ci95_low'], ratio['ci95_high'])}), same run, paired by repetition (api_over_lean)"
        )
    native = native_over_lean(measurement)
    if native:
        # Its ratio with interval is the "Native path:" line's and the per-composition block's: this line adds the share.
        lean_us, native_us = native["lean_us_mean"], native["native_us_mean"]
        lookup = (best or {}).get("cache_lookup_ns")
        lookup_text = (f", of which the lab's Python cache lookup is {lookup / 1000:.2f} µs" if lookup is not None and lookup == lookup
                       and native["variant"] == OPTIMIZED else "")
        lines.append(f"Native: the binding's share of {native['variant']}'s lean figure is {lean_us - native_us:.2f} µs "
                     f"({(lean_us - native_us) / lean_us:.0%}: lean {lean_us:.2f} minus native {native_us:.2f} µs, native_over_lean "
                     f"{native['ratio']:.2f}){lookup_text}")
    if m["machine_busy"]:
        lines.append("WARNING: the machine was busy during this run; figures may be noisy")
    for variant, error in measurement.errors.items():
        lines.append(f"FAILED {variant}: {error}")
    for variant, what in unexpected_outcomes(measurement).items():
        lines.append(f"FAILED REQUESTS {variant}: {what}; its latencies time failed requests")
    return "\n".join(lines)


def phase_medians(measurement: Measurement) -> pd.DataFrame:
    """Median µs per phase (columns, in request order) and variant (rows), phased mode only; plus the sum of
    the medians, the unphased p50 of the same variant in the same run, and what the stamps added."""
    rows = measurement.phase_rows()
    if rows.empty:
        return pd.DataFrame()
    phases = list(dict.fromkeys(rows["phase"]))
    medians = rows.groupby(["variant", "phase"], sort=False)["duration_ns"].median().unstack()[phases] / 1000
    table = measurement.variants(REFERENCE).set_index("variant")
    medians["sum"] = medians[phases].sum(axis=1)
    medians["unphased p50"] = table["latency_us_p50"].reindex(medians.index)
    medians["stamps add"] = medians["sum"] / medians["unphased p50"] - 1
    return medians


def step_medians(measurement: Measurement) -> pd.DataFrame:
    """A recipe's steps in phased mode: median µs per step (columns, in step order) and variant (rows), their sum,
    and the call phase's median they subdivide (the difference is the step interpreter's own work)."""
    rows = measurement.step_rows()
    if rows.empty:
        return pd.DataFrame()
    steps = list(dict.fromkeys(rows["step"]))
    medians = rows.groupby(["variant", "step"], sort=False)["duration_ns"].median().unstack()[steps] / 1000
    medians["sum"] = medians[steps].sum(axis=1)
    phases = phase_medians(measurement)
    medians["call phase"] = phases["call"].reindex(medians.index) if "call" in phases else float("nan")
    return medians


def phases_table(measurement: Measurement) -> str:
    """Median µs per phase and variant, their sum beside the unphased median (phased mode only); then a recipe's
    steps, each timed inside the call phase."""
    medians = phase_medians(measurement)
    if medians.empty:
        return ""
    shown = medians.copy()
    shown["stamps add"] = [f"{v:+.0%}" for v in shown["stamps add"]]
    text: str = ("Median µs per phase (the phased requests run the same code as the timed ones, with a timer stamp at each "
            "boundary; 'sum' is the sum of the phase medians, beside the unphased p50 of the same variant):\n"
            + shown.to_string(float_format=lambda v: f"{v:.2f}"))
    steps = step_medians(measurement)
    if not steps.empty:
        text += ("\nMedian µs per recipe step (stamped inside the call phase; 'sum' beside the call phase's median: the "
                 "rest is the work around the steps, the step interpreter's and, on the api path, wasmtime-py building "
                 "the new instance's exports):\n" + str(steps.T.to_string(float_format=lambda v: f"{v:.2f}")))
    return text
