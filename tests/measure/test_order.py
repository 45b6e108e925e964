"""The variants' order per repetition is a Williams design: each position and each predecessor equally often."""

from __future__ import annotations

from collections import Counter

import pytest

from wasmlab.measure.order import describe, orders, williams_rows


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_every_item_takes_every_position_and_follows_every_other_equally_often(n):
    rows = williams_rows(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    assert all(sorted(row) == list(range(n)) for row in rows)
    positions = Counter((item, position) for row in rows for position, item in enumerate(row))
    assert set(positions.values()) == {len(rows) // n}
    pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) == 1


def test_orders_cycle_through_the_design_and_say_whether_they_are_balanced():
    names = ["baseline", "cached", "pooled", "pooled+cached", "pooled+cached+pre"]
    schedule = orders(names, 10)
    assert [row[0] for row in schedule].count("baseline") == 2
    assert "balanced)" in describe(5, 10) and "first 10" in describe(5, 12) and "partly" in describe(5, 3)
    assert "positions balanced; predecessors balanced at 10" in describe(5, 5)
    positions = {(name, i) for row in orders(names, 5) for i, name in enumerate(row)}
    assert len(positions) == 25  # five repetitions of five variants: each variant once in each position
