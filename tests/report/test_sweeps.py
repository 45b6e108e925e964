"""A sweep's heatmap does not make noise look like an effect: its colour range spans the points' own intervals."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from wasmlab.report.sweeps import heatmap_figure, mean_half_width  # noqa: E402


def table(spread: float, noise: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i, slots in enumerate((4, 20)):
        for j, size in enumerate((1, 16)):
            for rep in range(5):
                rows.append({"param_slots": slots, "param_cache_size": size, "variant": "pooled+cached", "status": "ok",
                             "repetition": rep, "latency_us_p50": 4.6 + spread * (i + j) / 2 + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_noise_within_the_intervals_gets_a_colour_range_as_wide_as_them():
    data = table(spread=0.02, noise=0.2)
    fig = heatmap_figure(data, "param_slots", "param_cache_size")
    norm = fig.axes[0].collections[0].norm
    half = max(mean_half_width(g["latency_us_p50"]) for _, g in data.groupby(["param_slots", "param_cache_size"]))
    assert norm.vmax - norm.vmin >= 2 * half - 1e-9
    # Noise never spans more than half the colour scale: within-interval differences stay within a shade or two.
    values = data.groupby(["param_slots", "param_cache_size"])["latency_us_p50"].median()
    assert (values.max() - values.min()) / (norm.vmax - norm.vmin) <= 0.5
    assert "not significant" in fig.axes[0].get_title()


def test_a_real_effect_keeps_its_own_range():
    data = table(spread=2.0, noise=0.01)
    fig = heatmap_figure(data, "param_slots", "param_cache_size")
    assert "some differences exceed it" in fig.axes[0].get_title()
    norm = fig.axes[0].collections[0].norm
    values = data.groupby(["param_slots", "param_cache_size"])["latency_us_p50"].median()
    assert norm.vmin <= values.min() and norm.vmax >= values.max() and norm.vmax - norm.vmin < 2 * (values.max() - values.min())
