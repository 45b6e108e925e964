"""The data model of one run: tidy tables (summary, samples, phases) plus the metadata needed to trust them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmlab.measure.results import load_run
from wasmlab.measure.stats import variant_table

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built, not by every command that imports this
    import pandas as pd


@dataclass
class Measurement:
    """The outcome of one run: tidy tables plus what is needed to trust them."""

    summary: pd.DataFrame
    samples: pd.DataFrame
    phases: pd.DataFrame
    metadata: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    # Derived tables (the per-variant table, the binding table), computed once per measurement.
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def busy(self) -> bool:
        return bool(self.metadata.get("machine_busy"))

    @classmethod
    def load(cls, folder: str | Path) -> Measurement:
        """A measurement saved by :func:`wasmlab.measure.results.save_measurement` (its format version checked)."""
        run = load_run(Path(folder))
        metadata = dict(run["metadata"])
        errors = metadata.pop("errors", {}) or {}
        return cls(run["summary"], run["samples"], run["phases"], metadata, errors)

    def phase_rows(self) -> pd.DataFrame:
        """The phase table's rows of the seven request phases (without a recipe's steps, which subdivide ``call``)."""
        return self.phases[self.phases["step"].fillna("") == ""] if "step" in self.phases else self.phases

    def step_rows(self) -> pd.DataFrame:
        """The phase table's rows of a recipe's steps (phased mode on the lean and api paths): one per request and step."""
        return self.phases[self.phases["step"].fillna("") != ""] if "step" in self.phases else self.phases.iloc[0:0]

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result, computed once: the tables are read-only once measured."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def variants(self, reference: str | None = "baseline") -> pd.DataFrame:
        """One row per variant with pooled percentiles and the speedup over ``reference``."""
        return self.derived(("variants", reference), lambda: variant_table(
            self.summary, self.samples if not self.samples.empty else None, reference))
