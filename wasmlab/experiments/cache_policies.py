"""Notebook 03: cache policies and sizes over request traces of many distinct modules, from a cold cache:
hit rate, tail latency, compile share and latency over the trace."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from wasmlab.measure.scenario import Scenario, run


def cache_policy_grid(
    policies: Sequence[str],
    cache_sizes: Sequence[int],
    distributions: Sequence[str],
    modules: int = 50,
    requests: int = 2000,
    zipf_s: float = 1.1,
    seed: int = 0,
    workload: str = "seed",
    ttl_seconds: float = 0.05,
    variant: str = "pooled+cached",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (distribution, policy, size) over one request trace of ``modules`` distinct modules,
    cold (no warm-up), so the cost of misses and of clearing a full cache is in the figures.
    Returns the summary rows and the per-request samples (for latency over time)."""
    summaries, samples = [], []
    for distribution in distributions:
        for policy in policies:
            for size in cache_sizes:
                scenario = Scenario(
                    workload=workload, variants=(variant,), modules=modules, trace=distribution, zipf_s=zipf_s, seed=seed,
                    requests=requests, repeats=1, warmup=0, cache_policy=policy, cache_size=size, ttl_seconds=ttl_seconds,
                    slots=4,
                )
                m = run(scenario)
                labels = {"distribution": distribution, "policy": policy, "cache_size": size}
                summary = m.summary.assign(**labels)
                summary["compile_share"] = summary["compile_ms_total"] / summary["total_ms"]
                summaries.append(summary)
                samples.append(m.samples.assign(**labels))
    return pd.concat(summaries, ignore_index=True), pd.concat(samples, ignore_index=True)


def timeline(samples: pd.DataFrame, cache_size: int) -> pd.DataFrame:
    """The samples of one cache size for the latency-over-time figure: ``cache_size`` if it was measured,
    else the smallest size measured."""
    sizes = set(samples["cache_size"])
    return samples[samples["cache_size"] == (cache_size if cache_size in sizes else min(sizes))]
