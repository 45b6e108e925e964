"""The text report names the lab's own check of a WASI command's outputs as its own figure, apart from the latency."""

import pytest
from click.testing import CliRunner

from wasmlab.cli import main


@pytest.mark.parametrize("call_path", ["lean", "native"])
def test_a_wasi_commands_output_check_is_its_own_line_and_a_plain_export_has_none(call_path):
    def report(workload: str) -> str:
        result = CliRunner().invoke(main, ["reproduce", "--workload", workload, "--call-path", call_path, "--variants",
                                           "baseline,pooled+cached", "--requests", "50", "--repeats", "1", "--warmup", "5", "--no-save"])
        assert result.exit_code == 0, result.output
        return result.output

    lines = [line for line in report("hello").splitlines() if line.startswith("Output check:")]
    assert len(lines) == 1 and "not in its latency" in lines[0]
    figures = [float(part.split()[-2]) for part in lines[0].split(": ", 2)[2].split("; ")[0].split(", ")]
    assert len(figures) == 2 and all(f > 0 for f in figures)
    assert "Output check:" not in report("seed")
