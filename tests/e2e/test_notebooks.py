"""Smoke runs of every notebook through papermill, at tiny sizes, checking what each writes."""

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Tiny runs outside the smoke sweep: (notebook, parameters, files it must write with their required columns).  The
# explorer's widgets need the interactive mode, which a sweep does not run; every other run is a point of smoke.yaml.
SMOKE = [
    ("00_explore.ipynb", {"interactive": True}, {}),
]


def test_every_notebook_has_a_smoke_run():
    """Each notebook runs at tiny sizes here, in notebooks/sweeps/smoke.yaml (tests/test_sweep.py),
    or, for 99_summary, through `wasmlab report` (tests/test_sweep.py)."""
    import yaml

    in_smoke_yaml = {d["notebook"] for d in yaml.safe_load_all((ROOT / "notebooks" / "sweeps" / "smoke.yaml").read_text())}
    covered = {name for name, _, _ in SMOKE} | in_smoke_yaml | {"99_summary.ipynb"}
    assert {p.name for p in NOTEBOOKS} <= covered, "add a tiny run of the new notebook to smoke.yaml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(path):
    import nbformat  # imported where used: nbformat's import costs seconds in every pytest worker's collection

    nb = nbformat.read(path, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.notebook
@pytest.mark.parametrize("name, parameters, expected", SMOKE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SMOKE)])
def test_notebook_runs_under_papermill_and_writes_its_results(name, parameters, expected, tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "results"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(tmp_path / name),
        parameters={**parameters, "output_dir": str(out)},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    for file, columns in expected.items():
        target = out / file
        assert target.is_file() and target.stat().st_size > 0, file
        if columns:
            frame = pd.read_parquet(target)
            assert len(frame) > 0, file
            assert set(columns) <= set(frame.columns), (file, set(columns) - set(frame.columns))
    executed = nbformat.read(tmp_path / name, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
