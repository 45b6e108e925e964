"""Every notebook's set-up in one call: its parameters as papermill set them, its results folder, its run.

A notebook's first code cell after ``parameters`` is ``run = notebook.start("02_pool_slots", globals())``:
the parameter names come from the notebook's own ``parameters`` cell (read by papermill, as the sweep
runner reads them), so no notebook keeps a copy of its parameter list.  Results go to
``output_dir`` when the notebook was given one, else ``data/results/<notebook>/<run id>``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Image
from matplotlib.figure import Figure

from wasmlab.errors import ConfigError
from wasmlab.experiments import tidy
from wasmlab.measure import metadata as md
from wasmlab.measure.measurement import Measurement
from wasmlab.measure.results import save_measurement, write_metadata, write_parquet
from wasmlab.storage import project_root, results_dir, save_figure


def notebooks_folder() -> Path:
    """The repository's ``notebooks/`` folder."""
    return project_root(Path(__file__).resolve().parent) / "notebooks"


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """A notebook's ``parameters`` cell as papermill reads it: name -> type and default."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def declared_parameters(name: str) -> list[str]:
    """The names in notebook ``name``'s ``parameters`` cell (a notebook of the repository's ``notebooks/``).

    Read with ``json`` and ``ast``, not papermill: this runs in every notebook's kernel, and importing papermill
    there (through nbformat, jsonschema and rfc3987-syntax, which builds ~40 lark grammars on import) cost ~3 s of
    each point's time on a two-core machine.  A test keeps the names equal to papermill's for every notebook.
    """
    path = notebooks_folder() / f"{name}.ipynb"
    if not path.is_file():
        raise ConfigError(f"notebook {name!r} is not in {notebooks_folder()}; allowed: "
                          + ", ".join(sorted(p.stem for p in notebooks_folder().glob("*.ipynb"))))
    cells = json.loads(path.read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return []
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    names: list[str] = []
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        else:
            continue
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


@dataclass
class NotebookRun:
    """One execution of a notebook: its parameters, its results folder and its run's metadata."""

    name: str
    parameters: dict[str, Any]
    folder: Path
    run: dict[str, Any] = field(default_factory=md.new_run)

    def tidy(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """``rows`` as a table with this run's metadata and parameters in every row."""
        return tidy(rows, self.parameters, self.run)

    def figure(self, fig: Figure, filename: str) -> Image:
        """Save ``fig`` as a PNG in the results folder and return it for ``display``."""
        return Image(filename=str(save_figure(fig, self.folder / filename)))

    def save(self, frame: pd.DataFrame, filename: str) -> Path:
        """Write ``frame`` as Parquet in the results folder."""
        return write_parquet(frame, self.folder / filename)

    def save_measurement(self, measurement: Measurement, subfolder: str = "") -> Path:
        """A measurement's run folder (summary, samples, phases, metadata) inside the results folder."""
        return save_measurement(measurement, self.folder / subfolder if subfolder else self.folder)

    def save_metadata(self, extra: Mapping[str, Any] | None = None) -> Path:
        """``metadata.json`` with the run, its parameters and ``extra``, for notebooks whose tables are not one measurement."""
        return write_metadata({**dict(extra or {}), "parameters": self.parameters, **self.run}, self.folder)

    def __str__(self) -> str:
        return f"Results: {self.folder}"


def start(name: str, namespace: Mapping[str, Any]) -> NotebookRun:
    """The run of notebook ``name``, with its declared parameters read from ``namespace`` (the notebook's globals)."""
    parameters = {key: namespace[key] for key in declared_parameters(name) if key in namespace}
    run = md.new_run()
    output = parameters.get("output_dir") or ""
    folder = Path(output) if output else results_dir(name, run["run_id"])
    folder.mkdir(parents=True, exist_ok=True)
    return NotebookRun(name, parameters, folder, run)
