"""The lab's notebook kernels talk over IPC, so nothing prints jupyter's plain-TCP warning on every kernel start."""

from __future__ import annotations

import pytest

from wasmlab.jupyter_kernels import execute_notebook

WARNING = "Kernel is running over TCP without encryption"


@pytest.fixture
def tiny(tmp_path):
    import nbformat  # imported where used: nbformat's import costs seconds in every pytest worker's collection

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell("print(x * 2)")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_a_notebook_runs_with_its_parameters_and_no_tcp_warning(tiny, tmp_path, capfd):
    executed = execute_notebook(tiny, tmp_path / "out.ipynb", {"x": 21}, tmp_path)
    assert executed.cells[-1].outputs[0]["text"] == "42\n"
    assert WARNING not in capfd.readouterr().err


@pytest.mark.notebook
def test_the_check_sees_the_warning_of_a_default_tcp_kernel(tiny, tmp_path, capfd):
    import papermill

    papermill.execute_notebook(str(tiny), str(tmp_path / "tcp.ipynb"), parameters={"x": 1}, progress_bar=False)
    assert WARNING in capfd.readouterr().err
