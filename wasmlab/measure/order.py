"""The order variants are served in within each repetition: a Williams design.

Rotating a fixed list puts each variant in each position equally often, but always behind the same
neighbour, so whatever one variant leaves behind (a warm cache line, a dirty TLB, a busy core) always
lands on the same next variant.  A Williams square (a Latin square balanced for first-order carry-over)
also makes every variant follow every other variant equally often: ``N`` rows for an even number of
variants, ``2N`` for an odd one.  The balance is exact when the repetitions are a multiple of the rows.
"""

from __future__ import annotations


def williams_rows(n: int) -> list[list[int]]:
    """The rows of a Williams design for ``n`` items (each row an order of ``range(n)``)."""
    if n < 1:
        return []
    first = [0]
    low, high = 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(item + shift) % n for item in first] for shift in range(n)]
    if n % 2:
        rows += [list(reversed(row)) for row in rows]
    return rows


def orders(names: list[str], repetitions: int) -> list[list[str]]:
    """The order of ``names`` in each of ``repetitions`` repetitions."""
    rows = williams_rows(len(names))
    return [[names[i] for i in rows[rep % len(rows)]] for rep in range(repetitions)]


def describe(count: int, repetitions: int) -> str:
    """How the order was chosen, for the results' metadata and the 'Measured:' line."""
    rows = len(williams_rows(count))
    if count < 2:
        return "one variant"
    if repetitions % rows == 0:
        balance = "balanced"
    elif repetitions >= rows:
        balance = f"balanced over the first {repetitions - repetitions % rows} repetitions"
    elif repetitions % count == 0:
        balance = f"positions balanced; predecessors balanced at {rows} repetitions"
    else:
        balance = f"partly balanced (a full design takes {rows} repetitions)"
    return f"in a Williams design per repetition (each position and each predecessor equally often; {balance})"
