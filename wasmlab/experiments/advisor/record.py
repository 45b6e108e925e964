"""What ``wasmlab advise --out DIR`` keeps: every trial measured, in order, and the run's provenance, on a finish or an
interrupt (then marked ``partial`` with the signal and the stage under way).

``DIR/trials.parquet`` holds one row per trial (its stage, the candidate's knobs, p50/p99, throughput, RSS, address
space, outcome); ``DIR/metadata.json`` (written last, as a run folder's is) the machine, versions, goal, effort and
the run's state; ``DIR/advice.json`` the whole answer when there was one.  Each file is written atomically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wasmlab.experiments.advisor.goal import Effort, Goal
from wasmlab.storage import check_writable, write_json

TRIALS = "trials.parquet"
ADVICE = "advice.json"
# The stages in the order they run; ``needs`` (what serving needs, found before any trial) first.
STAGES = ("needs", "screen", "confirm", "explain", "claim", "exhaustion")


@dataclass
class TrialLog:
    """The trials of one advisor run as they finish, the stage under way, and the run's provenance."""

    goal: Goal
    effort: Effort
    metadata: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    stage: str = "needs"

    def provenance(self, interrupted_by: str | None) -> dict[str, Any]:
        """The run's metadata with its goal, effort and state: ``partial`` (and the signal and stage) or finished."""
        state: dict[str, Any] = {"partial": interrupted_by is not None, "trials": len(self.rows)}
        if interrupted_by is not None:
            state.update({"interrupted_by": interrupted_by, "stage": self.stage})
        return {**self.metadata, "kind": "advise", "goal": asdict(self.goal), "effort": asdict(self.effort),
                "stages": list(STAGES), **state}

    def save(self, folder: Path, interrupted_by: str | None = None, advice: dict[str, Any] | None = None) -> Path:
        """Write the trials, the answer (if any) and the metadata, last, into ``folder``."""
        import pandas as pd

        from wasmlab.measure.results import write_metadata, write_parquet

        folder = check_writable(Path(folder))
        write_parquet(pd.DataFrame(self.rows), folder / TRIALS)
        if advice is not None:
            write_json(advice, folder / ADVICE)
        write_metadata(self.provenance(interrupted_by), folder)
        return folder
