"""One order and one colour per variant composition, whatever order a run measured them in.

A variant's composition is its name without ``@path`` (``pooled+cached@native`` is ``pooled+cached``): the same
composition keeps its colour on every call path, so a reader matches the lean panel's dots with the native panel's.
The colours are the colour-blind-safe palette of seaborn ("colorblind"), fixed here so no plot picks them by run order.
"""

from __future__ import annotations

import pandas as pd

# Cheapest idea first: what each step adds to the seed's baseline.
COMPOSITIONS = ("baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre")
COLOURS = {"baseline": "#949494", "cached": "#0173b2", "pooled": "#de8f05", "pooled+cached": "#029e73",
           "pooled+cached+pre": "#cc78bc"}
# Compositions outside the list (a future variant) take these in name order: never a run-order shade.
SPARE_COLOURS = ("#ca9161", "#fbafe4", "#56b4e9", "#ece133", "#d55e00")


def composition(variant: str) -> str:
    """``pooled+cached@native`` -> ``pooled+cached``."""
    return variant.partition("@")[0]


def call_path(variant: str, default: str = "") -> str:
    """``pooled+cached@native`` -> ``native``; a name without ``@`` is on ``default``."""
    return variant.partition("@")[2] or default


def order_key(variant: str) -> tuple[int, str, str]:
    """Sort key: known compositions in :data:`COMPOSITIONS` order, then others by name; the path breaks ties."""
    name = composition(variant)
    rank = COMPOSITIONS.index(name) if name in COMPOSITIONS else len(COMPOSITIONS)
    return rank, name, call_path(variant)


def ordered(variants: list[str]) -> list[str]:
    """``variants`` without repeats, in :func:`order_key` order."""
    return sorted(dict.fromkeys(variants), key=order_key)


def in_order(table: pd.DataFrame) -> pd.DataFrame:
    """``table``'s rows in :func:`order_key` order of their ``variant`` (a stable sort: rows of one variant keep theirs)."""
    return table.iloc[sorted(range(len(table)), key=lambda i: order_key(str(table["variant"].iloc[i])))]


def colour(variant: str) -> str:
    """The composition's fixed colour (hex)."""
    name = composition(variant)
    if name in COLOURS:
        return COLOURS[name]
    return SPARE_COLOURS[sum(name.encode()) % len(SPARE_COLOURS)]
