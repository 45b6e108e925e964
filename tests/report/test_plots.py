"""Plots that must say what they cannot show."""

import math

import pandas as pd

from wasmlab.report import plots


def test_an_operation_the_engine_refused_is_labelled_not_left_as_a_missing_bar():
    rows = pd.DataFrame([
        {"workload": "big", "operation": "compile", "setting": "cranelift/speed", "median_us": 3.3e7},
        {"workload": "big", "operation": "compile", "setting": "winch", "median_us": math.nan},
        {"workload": "big", "operation": "cache hit", "setting": "lru", "median_us": 0.2},
    ])
    figure = plots.breakdown(rows)
    labels = [text.get_text().strip() for ax in figure.axes for text in ax.texts]
    assert labels == ["not supported"]
    ax = figure.axes[0]
    assert ax.texts[0].get_position()[1] == 1  # on the winch row
