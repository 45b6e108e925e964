"""The notebooks' one set-up call: parameters read from the notebook's own parameters cell, a results folder, figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from wasmlab.errors import ConfigError  # noqa: E402
from wasmlab.experiments import notebook  # noqa: E402
from wasmlab.experiments.concurrency import sharing_modes  # noqa: E402


def test_start_takes_exactly_the_declared_parameters_from_the_namespace(tmp_path):
    declared = notebook.declared_parameters("06_concurrency")
    namespace = {name: f"value of {name}" for name in declared} | {"output_dir": str(tmp_path / "out"), "np": object(), "x": 1}
    run = notebook.start("06_concurrency", namespace)
    assert set(run.parameters) == set(declared) and "np" not in run.parameters and "x" not in run.parameters
    assert run.folder == tmp_path / "out" and run.folder.is_dir()
    assert run.run["run_id"] and str(run) == f"Results: {tmp_path / 'out'}"


def test_a_run_saves_tables_with_its_metadata_and_figures_as_png(tmp_path):
    run = notebook.start("06_concurrency", {"output_dir": str(tmp_path), "threads_list": [1, 2]})
    table = run.tidy([{"threads": 1, "throughput_rps": 10.0}])
    assert table["run_id"].iloc[0] == run.run["run_id"] and '"threads_list": [1, 2]' in table["parameters_json"].iloc[0]
    run.save(table, "summary.parquet")
    assert pd.read_parquet(tmp_path / "summary.parquet")["threads"].tolist() == [1]
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    image = run.figure(fig, "figure.png")
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.filename == str(tmp_path / "figure.png")


def test_an_unknown_notebook_is_named_with_the_ones_that_exist():
    with pytest.raises(ConfigError, match="notebook 'nope' is not in .*01_seed_reproduction"):
        notebook.start("nope", {})


def test_sharing_modes_parse_and_refuse_a_bad_mode():
    assert sharing_modes(["shared/per-worker", "per-worker/per-worker"]) == [("shared", "per-worker"), ("per-worker", "per-worker")]
    with pytest.raises(ConfigError, match="pool/cache mode 'shared' is not allowed"):
        sharing_modes(["shared"])


@pytest.mark.parametrize("path", sorted(notebook.notebooks_folder().glob("*.ipynb")), ids=lambda p: p.stem)
def test_the_parameters_a_kernel_reads_are_the_ones_papermill_reads(path):
    """The kernel reads its parameters cell with ast, the sweep runner with papermill: they must agree, name for name
    and in order.  This is also the check that papermill sees every parameter: it silently drops a line it cannot
    parse (e.g. '=' inside a value), which ast reads."""
    assert notebook.declared_parameters(path.stem) == list(notebook.notebook_parameters(path))
