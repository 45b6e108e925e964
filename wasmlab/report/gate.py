"""``wasmlab compare --fail-above / --fail-below``: two runs' B/A ratios as a regression gate for CI.

A row fails only when its whole 95% interval is past the threshold (the lower bound above ``--fail-above``, the
upper bound below ``--fail-below``): a ratio whose interval reaches back across the threshold is within noise, so a
noisy machine does not fail a build.  A row with no interval (fewer than 2 repetitions on a side) cannot be
decided; it does not fail the gate, and the verdict line counts it, so a CI that measures one repetition sees
that its gate decided nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wasmlab.errors import ConfigError

PASS = "pass"
UNDECIDED = "undecided (no interval: fewer than 2 repetitions on a side)"
ALLOWED = "allowed: a finite ratio B/A > 0, e.g. 1.2"


def parse_ratio(value: object, flag: str) -> float:
    """``--fail-above 1.2`` -> 1.2; anything else (not a number, <= 0, nan, inf) is refused in one line."""
    try:
        ratio = float(str(value))
    except ValueError:
        raise ConfigError(f"{flag} {str(value)!r} is not a number; {ALLOWED}") from None
    if not math.isfinite(ratio) or ratio <= 0:
        raise ConfigError(f"{flag} {str(value)!r} is out of range; {ALLOWED}")
    return ratio


@dataclass(frozen=True)
class Gate:
    """The thresholds a comparison is held to; with neither, there is no gate (every row passes, nothing printed)."""

    fail_above: float | None = None
    fail_below: float | None = None

    @property
    def active(self) -> bool:
        return self.fail_above is not None or self.fail_below is not None

    def describe(self) -> str:
        parts = [f"--fail-above {self.fail_above:g}" if self.fail_above is not None else "",
                 f"--fail-below {self.fail_below:g}" if self.fail_below is not None else ""]
        return " ".join(p for p in parts if p)

    def row_verdict(self, low: float, high: float) -> str:
        """``pass``, ``FAIL: ...`` naming the bound and threshold crossed, or :data:`UNDECIDED`."""
        if not self.active:
            return PASS
        if not (math.isfinite(low) and math.isfinite(high)):
            return UNDECIDED
        if self.fail_above is not None and low > self.fail_above:
            return f"FAIL: CI low {low:.3f} > {self.fail_above:g}"
        if self.fail_below is not None and high < self.fail_below:
            return f"FAIL: CI high {high:.3f} < {self.fail_below:g}"
        return PASS

    def verdict_line(self, verdicts: list[str]) -> str:
        """The last line of the text output: passed or failed, with how many rows failed and how many were undecided."""
        failed = sum(1 for v in verdicts if v.startswith("FAIL"))
        undecided = sum(1 for v in verdicts if v == UNDECIDED)
        tail = f"; {undecided} undecided (no interval)" if undecided else ""
        if failed:
            return f"Gate {self.describe()}: FAILED, {failed} of {len(verdicts)} rows outside the threshold{tail} (exit 1)"
        return f"Gate {self.describe()}: passed, {len(verdicts) - undecided} of {len(verdicts)} rows within the threshold{tail}"

    @staticmethod
    def failed(verdicts: list[str]) -> bool:
        return any(v.startswith("FAIL") for v in verdicts)
