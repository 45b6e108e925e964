"""Every notebook is committed clean and has a smoke run (smoke.yaml, or here for the interactive explorer)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Every notebook's tiny run is a point of smoke.yaml, but the explorer's widgets need its interactive mode, which a
# sweep does not run: that one runs here.
INTERACTIVE = "00_explore.ipynb"


def test_every_notebook_has_a_smoke_run():
    """Each notebook runs at tiny sizes here, in notebooks/sweeps/smoke.yaml (tests/test_sweep.py),
    or, for 99_summary, through `wasmlab report` (tests/test_sweep.py)."""
    import yaml

    in_smoke_yaml = {d["notebook"] for d in yaml.safe_load_all((ROOT / "notebooks" / "sweeps" / "smoke.yaml").read_text())}
    covered = {INTERACTIVE} | in_smoke_yaml | {"99_summary.ipynb"}
    assert {p.name for p in NOTEBOOKS} <= covered, "add a tiny run of the new notebook to smoke.yaml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(path):
    import nbformat  # imported where used: nbformat's import costs seconds in every pytest worker's collection

    nb = nbformat.read(path, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.notebook
def test_the_explorer_runs_interactively_under_papermill_without_an_error(tmp_path):
    import nbformat
    import papermill

    papermill.execute_notebook(
        str(ROOT / "notebooks" / INTERACTIVE),
        str(tmp_path / INTERACTIVE),
        parameters={"interactive": True, "output_dir": str(tmp_path / "results")},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    executed = nbformat.read(tmp_path / INTERACTIVE, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
