"""The data model of one run: tidy tables (summary, samples, phases) plus the metadata needed to trust them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmlab.measure.results import FORMAT_VERSION, check_format, load_run
from wasmlab.measure.stats import variant_table

if TYPE_CHECKING:  # pandas (~0.6 s to import) is loaded where tables are built, not by every command that imports this
    import pandas as pd


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses every change: still a dict to JSON, ``**`` and ``dict()``, so a record's metadata is
    written and read as before, but nothing can alter a measurement after the fact."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a Measurement is immutable; make a new one with Measurement.annotated")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadOnlyDict, (dict(self),))


@dataclass(frozen=True, eq=False)
class Measurement:
    """The outcome of one run, immutable once measured (as pyperf's results are): tidy tables plus what is needed
    to trust them, and the results format they are in.  To add to it, :meth:`annotated` makes a new record."""

    summary: pd.DataFrame
    samples: pd.DataFrame
    phases: pd.DataFrame
    metadata: Mapping[str, Any]
    errors: Mapping[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # Derived tables (the per-variant table, the binding table), computed once per measurement.
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read-only views of copies: no caller's dict can change the record after the fact.
        object.__setattr__(self, "metadata", ReadOnlyDict(self.metadata))
        object.__setattr__(self, "errors", ReadOnlyDict(self.errors))

    @property
    def busy(self) -> bool:
        return bool(self.metadata.get("machine_busy"))

    @classmethod
    def load(cls, folder: str | Path) -> Measurement:
        """A measurement saved by :func:`wasmlab.measure.results.save_measurement` (its format version checked)."""
        run = load_run(Path(folder))
        metadata = dict(run["metadata"])
        errors = metadata.pop("errors", {}) or {}
        version = check_format(metadata, repr(str(folder)))
        metadata.pop("format_version", None)
        return cls(run["summary"], run["samples"], run["phases"], metadata, errors, version)

    def annotated(self, metadata: Mapping[str, Any], columns: Mapping[str, Any] | None = None) -> Measurement:
        """A new record with ``metadata`` added to its metadata and ``columns`` (by default the same) to every row of
        its summary."""
        summary = self.summary.assign(**dict(metadata if columns is None else columns))
        return dataclasses.replace(self, summary=summary, metadata={**self.metadata, **metadata}, _derived={})

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
