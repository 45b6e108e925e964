"""How figures read on the report page: intervals as "6.3 µs (6.1-6.5)", speedups as "113x (110-117)", HTML tables
with named columns and no index.  Everything that reaches the page is escaped here or in the page's own builders."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float | None, digits: int | None = None) -> str:
    """Three significant figures at most (``328``, ``6.30``, ``0.974``); very large or small values in exponent form
    (``1.2e+10``, the bound of a two-repetition interval); a dash for a missing value."""
    if _missing(value):
        return "–"
    assert value is not None
    size = abs(value)
    if size >= 1e5 or 0 < size < 0.01:
        return f"{value:.3g}"
    return f"{value:.{_digits_for(size) if digits is None else digits}f}"


def interval(point: float | None, low: float | None, high: float | None, unit: str = "") -> str:
    """``6.3 µs (6.1-6.5)``, or ``6.3 µs (one repetition: no interval)`` when the bounds are missing."""
    if _missing(point):
        return "–"
    shown = f"{number(point)}{unit}"
    if _missing(low) or _missing(high):
        return f"{shown} (no interval)"
    assert point is not None and low is not None and high is not None
    digits = _digits_for(abs(point))
    return f"{shown} ({number(low, digits)}-{number(high, digits)})"


def _digits_for(size: float) -> int:
    return 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 3


def speedup(point: float | None, low: float | None, high: float | None) -> str:
    """``113x (110-117)``."""
    return interval(point, low, high, "x")


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] | None = None,
          groups: Sequence[str | None] | None = None, caption: str = "",
          spans: Sequence[tuple[str, int]] = ()) -> str:
    """An HTML table in its own scrolling box: ``columns`` as headers (under ``spans``, (label, columns covered)
    headers, when given), ``rows`` of already formatted cells (escaped here), numeric columns right-aligned; a row
    whose ``groups`` entry is a string starts a group headed by it."""
    numeric = numeric or [False] * len(columns)
    head = "".join(f'<th scope="col"{_align(n)}>{escape(c)}</th>' for c, n in zip(columns, numeric, strict=True))
    if spans:
        head = ("".join(f'<th colspan="{n}" scope="colgroup" class="span">{escape(label)}</th>' for label, n in spans)
                + f"</tr><tr>{head}")
    body = []
    for i, row in enumerate(rows):
        group = groups[i] if groups else None
        if group is not None:
            body.append(f'<tr class="group"><th colspan="{len(columns)}" scope="rowgroup">{escape(group)}</th></tr>')
        body.append("<tr>" + "".join(f"<td{_align(n)}>{escape(str(cell))}</td>" for cell, n in zip(row, numeric, strict=True))
                    + "</tr>")
    title = f'<p class="caption">{escape(caption)}</p>' if caption else ""
    return f'{title}<div class="box"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _align(numeric: bool) -> str:
    return ' class="num"' if numeric else ""


def facts(items: Sequence[tuple[str, str]]) -> str:
    """A definition list of (what, value) pairs; long values wrap inside the page."""
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


STYLE = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5f6368; --line: #e3e3e3; --accent: #029e73; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 24px 64px; }
h1 { font-size: 1.35rem; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p, li, dd { overflow-wrap: anywhere; }
.sub { color: var(--muted); margin: 0 0 16px; }
#headline { border-left: 4px solid var(--accent); background: #f3faf7; padding: 12px 16px; margin: 12px 0 8px; }
#headline p { margin: 0; font-size: 1.15rem; }
#headline .also { font-size: 0.95rem; color: var(--muted); margin-top: 6px; }
.warn { border-left: 4px solid #d55e00; background: #fff6ef; padding: 6px 12px; margin: 6px 0; }
.box { max-width: 100%; overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.9rem; }
.caption { color: var(--muted); margin: 4px 0; max-width: 80ch; }
th, td { padding: 4px 12px 4px 0; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; }
thead th { white-space: normal; vertical-align: bottom; }
thead th.span { text-align: center; border-bottom: 1px solid #bbb; padding-right: 0; }
thead th.span + th.span, td.num + td.num { padding-left: 12px; }
tr.group th { padding-top: 12px; border-bottom: 1px solid #bbb; font-weight: 600; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.9rem; max-width: 80ch; }
details { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
details > summary { cursor: pointer; font-weight: 600; }
details > summary span { font-weight: normal; color: var(--muted); }
dl { display: grid; grid-template-columns: minmax(8em, 14em) minmax(0, 1fr); gap: 4px 16px; margin: 12px 0; }
dt { font-weight: 600; }
dd { margin: 0; }
code { overflow-wrap: anywhere; }
"""
