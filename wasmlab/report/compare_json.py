"""``wasmlab compare --format json``: a comparison as one JSON document, for CI and dashboards.

Every matched row is one object: the point's parameters, the variant and call path, each side's figure and
repetitions, the B/A ratio with its 95% interval and the method that made it, and the gate's verdict.  A figure that
does not exist (no interval with one repetition) is ``null``, never ``NaN`` (which is not JSON).
"""

from __future__ import annotations

import json
import math
from typing import Any

from wasmlab.measure.stats import CONFIDENCE, UNPAIRED_METHOD
from wasmlab.report.compare import Comparison, metadata_differences, partial_note

# Bump when a key changes meaning or goes away; adding a key keeps the version.
FORMAT_VERSION = 1
PARAMETER_PREFIX = "param_"


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python numbers, NaN and infinities as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _row(row: dict[str, Any], gated: bool) -> dict[str, Any]:
    return {
        "workload": _plain(row.get("workload")),
        "variant": _plain(row["variant"]),
        "call_path": _plain(row.get("call_path")) or "",
        "point": {key.removeprefix(PARAMETER_PREFIX): _plain(value) for key, value in row.items() if key.startswith(PARAMETER_PREFIX)},
        "A": {"latency_us_geomean": _plain(row["A_us_geomean"]), "repetitions": _plain(row["repetitions_A"])},
        "B": {"latency_us_geomean": _plain(row["B_us_geomean"]), "repetitions": _plain(row["repetitions_B"])},
        "ratio_B_over_A": _plain(row["ratio_B_over_A"]),
        "ci95": [_plain(row["ci95_low"]), _plain(row["ci95_high"])],
        "method": UNPAIRED_METHOD,
        "significance": row["verdict"],
        "gate": row["gate"] if gated else None,
    }


def document(result: Comparison) -> dict[str, Any]:
    """The comparison as a JSON-ready dict."""
    gate = result.gate
    verdict = ("failed" if result.failed else "passed") if gate.active else None
    return {
        "format_version": FORMAT_VERSION,
        "A": {"path": result.a_path, "partial": partial_note(result.a).strip() or None},
        "B": {"path": result.b_path, "partial": partial_note(result.b).strip() or None},
        "matched": result.matched or None,  # which sweep point a run matched, when a sweep was cut to one
        "only_in_A": list(result.only_in_a),
        "only_in_B": list(result.only_in_b),
        "confidence": CONFIDENCE,
        "method": UNPAIRED_METHOD,
        "metadata_differences": metadata_differences(result.a, result.b).to_dict(orient="records"),
        "gate": {"fail_above": gate.fail_above, "fail_below": gate.fail_below, "verdict": verdict},
        "rows": [_row(row, gate.active) for row in result.table.to_dict(orient="records")],
    }


def render_json(result: Comparison) -> str:
    return json.dumps(document(result), indent=2, allow_nan=False)
