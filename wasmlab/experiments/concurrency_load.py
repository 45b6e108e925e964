"""``wasmlab concurrency``'s runs: every configuration of a :class:`Load` on one Scenario, repeated in rotation,
their medians and the run's metadata (one run is :func:`wasmlab.experiments.concurrency.concurrency`)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.config import check_samples_fit, check_threads
from wasmlab.errors import Interrupted, signal_name
from wasmlab.experiments.concurrency import check_rate, concurrency
from wasmlab.host.variant import parse_variant
from wasmlab.measure.scenario import Scenario


@dataclass(frozen=True)
class Load:
    """What ``wasmlab concurrency`` varies on top of a Scenario: worker counts, pool sharing, call paths, and offered
    rates (``None``: closed loop)."""

    threads: tuple[int, ...] = (1, 2)
    pool_mode: str = "shared"
    call_paths: tuple[str, ...] = ("native",)
    rates: tuple[float | None, ...] = (None,)

    def __post_init__(self) -> None:
        # Checked before any engine, pool or sample list is made for the first configuration.
        for count in self.threads:
            check_threads(count)
        for rate in self.rates:
            check_rate(rate)


def configurations(scenario: Scenario, load: Load) -> list[tuple[str, str, int, float | None]]:
    """(call path, variant, threads, offered rate) of every run of one repetition."""
    names = [parse_variant(v).name for v in scenario.variants]
    return list(itertools.product(load.call_paths, names, load.threads, load.rates))


UNIT = "configuration runs"  # what an interrupted run counts: one thread count x call path x variant x rate x repetition
METHOD = ("throughput: served requests over the wall of the same requests (the earliest worker's first request start to the "
          "latest worker's last request end, each worker stamping its own); latency: each request's, timed by its worker "
          "(in C on the native path); kernel counters read once every worker is warm and after all ended")


@dataclass
class ServedLoad:
    """Every run (one row per configuration and repetition), their medians per configuration, and the run's metadata."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    metadata: dict[str, Any]

    def save(self, folder: Path) -> Path:
        """``folder/summary.parquet`` (every run, the run's metadata in columns, as ``reproduce``'s summary: what
        ``wasmlab compare`` reads) and ``folder/metadata.json`` last, both written atomically; the folder."""
        from wasmlab.measure.results import SUMMARY, write_metadata, write_parquet

        flat = {k: v for k, v in self.metadata.items() if k != "parameters" and k not in self.runs}
        # What tells one configuration from another, as compare's parameters; closed loop, the offered rate is the
        # measured throughput, not a knob.
        knobs = ("threads", "pool_mode", "offered_rps") if bool(self.runs["open_loop"].any()) else ("threads", "pool_mode")
        params = {f"param_{k}": self.runs[k] for k in knobs}
        table = self.runs.assign(**flat, **params, parameters_json=json.dumps(self.metadata["parameters"], sort_keys=True, default=str))
        write_parquet(table, Path(folder) / SUMMARY)
        write_metadata(self.metadata, Path(folder))
        return Path(folder)


def run_load(scenario: Scenario, load: Load, progress: Callable[[], None] | None = None) -> ServedLoad:
    """Every variant of ``scenario`` under every configuration of ``load``, ``scenario.repeats`` times in rotation
    (so that drift of the machine does not line up with one configuration); requests and warm-up are per worker.

    On SIGINT or SIGTERM the finished runs are kept: :class:`Interrupted` carries them (marked partial) or ``None``."""
    from wasmlab.measure import metadata as md
    from wasmlab.measure.hygiene import Hygiene

    most = max(load.threads)
    # Each worker keeps a latency per request for the whole run.
    check_samples_fit("requests", scenario.requests, scenario.requests * most, f"{scenario.requests:,} requests x {most} threads")
    every, rows = configurations(scenario, load), []
    planned = len(every) * scenario.repeats
    try:
        run, hygiene = md.new_run(), Hygiene()
        for repetition in range(scenario.repeats):
            shift = repetition % len(every)
            seeded = dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, seed=scenario.workload.seed + repetition))
            for path, name, count, rate in every[shift:] + every[:shift]:
                rows.append({**concurrency(seeded, count, load.pool_mode, path, rate, variant=name), "repetition": repetition})
                if progress is not None:
                    progress()
    except KeyboardInterrupt as exc:
        # The run under way is dropped whole (a worker's block cannot stop half-way; serve waited for it).
        stopped_by = signal_name(exc)
        if not rows:
            raise Interrupted(stopped_by, None, 0, planned, UNIT) from None
        partial = {"partial": True, "runs_finished": len(rows), "runs_planned": planned, "interrupted_by": stopped_by}
        raise Interrupted(stopped_by, served_load(rows, scenario, load, {**run, **hygiene.finish(), **partial}),
                          len(rows), planned, UNIT) from None
    return served_load(rows, scenario, load, {**run, **hygiene.finish(), "runs_finished": len(rows), "runs_planned": planned})


def served_load(rows: list[dict[str, Any]], scenario: Scenario, load: Load, run: dict[str, Any]) -> ServedLoad:
    """The runs as a table, their medians, and the metadata saying how they were measured."""
    runs = pd.DataFrame(rows)
    metadata = {**run, "parameters": load_parameters(scenario, load), "workload": ",".join(scenario.workload.specs()),
                "requests": scenario.requests, "warmup": scenario.measurement.warmup, "repeats": scenario.repeats,
                "preset": scenario.preset or "none", "method": METHOD,
                "statistic": f"median over {scenario.repeats} runs of each configuration (min and max beside throughput and p99)"}
    return ServedLoad(runs, medians(runs, load.rates != (None,)), metadata)


def load_parameters(scenario: Scenario, load: Load) -> dict[str, Any]:
    chosen, m = scenario.workload, scenario.measurement
    trace = f"zipf:s={chosen.zipf_s:g}" if chosen.trace == "zipf" and chosen.zipf_s != 1.1 else chosen.trace
    return {"threads": list(load.threads), "pool_mode": load.pool_mode, "call_paths": list(load.call_paths),
            "workload": ",".join(chosen.specs()), "trace": trace, "variants": [parse_variant(v).name for v in scenario.variants],
            "requests_per_thread": m.requests, "warmup": m.warmup, "repeats": m.repeats, "preset": scenario.preset or "none",
            "pool": scenario.engine_config().pool.to_dict(), "exhaustion": scenario.limits_config().exhaustion,
            "rates": list(load.rates), "seed": chosen.seed}


def medians(runs: pd.DataFrame, open_loop: bool) -> pd.DataFrame:
    """The median of each numeric column per configuration, with min and max beside throughput and p99."""
    keys = ["call_path", "variant", "threads", "offered_rps"] if open_loop else ["call_path", "variant", "threads"]
    numeric = [c for c in runs.columns if c not in keys and c != "repetition" and pd.api.types.is_numeric_dtype(runs[c])]
    summary = runs.groupby(keys, sort=False)[numeric].median().reset_index()
    for column in ("throughput_rps", "latency_us_p99"):
        spread = runs.groupby(keys, sort=False)[column].agg(["min", "max"]).reset_index(drop=True)
        summary[f"{column}_min"], summary[f"{column}_max"] = spread["min"], spread["max"]
    return summary
