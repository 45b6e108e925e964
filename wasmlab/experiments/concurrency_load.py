"""``wasmlab concurrency``'s runs: every configuration of a :class:`Load` on one Scenario, repeated in rotation,
their medians and the run's metadata (one run is :func:`wasmlab.experiments.concurrency.concurrency`)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from wasmlab.config import check_samples_fit, check_threads
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


@dataclass
class ServedLoad:
    """Every run (one row per configuration and repetition), their medians per configuration, and the run's metadata."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    metadata: dict[str, Any]


def run_load(scenario: Scenario, load: Load, progress: Callable[[], None] | None = None) -> ServedLoad:
    """Every variant of ``scenario`` under every configuration of ``load``, ``scenario.repeats`` times in rotation
    (so that drift of the machine does not line up with one configuration); requests and warm-up are per worker."""
    from wasmlab.measure import metadata as md

    most = max(load.threads)
    # Each worker keeps a latency per request for the whole run.
    check_samples_fit("requests", scenario.requests, scenario.requests * most, f"{scenario.requests:,} requests x {most} threads")
    every, rows, run = configurations(scenario, load), [], md.new_run()
    for repetition in range(scenario.repeats):
        shift = repetition % len(every)
        seeded = dataclasses.replace(scenario, workload=dataclasses.replace(scenario.workload, seed=scenario.workload.seed + repetition))
        for path, name, count, rate in every[shift:] + every[:shift]:
            rows.append({**concurrency(seeded, count, load.pool_mode, path, rate, variant=name), "repetition": repetition})
            if progress is not None:
                progress()
    runs = pd.DataFrame(rows)
    metadata = {**run, **md.machine(), "parameters": load_parameters(scenario, load),
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
