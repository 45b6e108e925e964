"""``wasmlab reproduce --runtime ...,extism`` as the real command (issue 28): the runtimes table with the ratios to
wasmtime native pooled+cached in one run (V8 beside it when node is on PATH), every result checked; bad extism input is
one line with exit status 2; a wrong result on extism fails the run (exit 1); no Extism cache folder is left behind."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.e2e.test_runtimes_cli import QUICK, one_line, wasmlab
from wasmlab.workloads import load_workload

BAD = [
    ("pooled on extism", ["--variants", "pooled@extism"],
     "variant 'pooled@extism': pooled is not served on extism: Extism's SDK exposes no pooling allocator knob"),
    ("pre on extism", ["--runtime", "extism", "--variants", "cached+pre"], "pre is not served on extism: Extism's SDK exposes no InstancePre"),
    ("a WASI guest on extism", ["--workload", "wasi-exit", "--runtime", "extism", "--variants", "cached"],
     "is a WASI guest (Extism's WASI takes no argv or stdin and sends a command's stdout to the host's or nowhere, so its output could not be checked); the extism runtime serves core modules without imports"),
    ("no variant extism serves", ["--runtime", "extism", "--variants", "pooled+cached"],
     "no variant runs on extism: variant 'pooled+cached@extism': pooled is not served on extism"),
    ("a limit on extism", ["--runtime", "extism", "--variants", "cached", "--fuel", "100000"],
     "per-request limits (fuel, deadline, memory, stack) are wasmtime's; allowed on extism: no limits"),
]


def cache_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("wasmlab-extism-cache-*")}


@pytest.mark.timeout(200)
@pytest.mark.parametrize("what, arguments, message", BAD, ids=[row[0] for row in BAD])
def test_bad_extism_input_is_one_line_exit_2(tmp_path, what, arguments, message):
    one_line(wasmlab([*arguments, *QUICK], tmp_path), 2, message)


@pytest.mark.timeout(200)
def test_a_run_prints_the_runtimes_side_by_side_with_ratios_and_a_wrong_result_fails_it(tmp_path):
    runtimes = "wasmtime,v8,extism" if shutil.which("node") else "wasmtime,extism"
    before = cache_folders()
    # No --call-path: reproduce's default is native unless it would refuse a variant; disk@extism is Extism's disk
    # cache, not the lab's artifacts, and must not send the wasmtime variants to the lean path (no ratio then).
    done = wasmlab(["--runtime", runtimes, "--variants", "baseline,cached,pooled+cached,disk@extism", *QUICK], tmp_path)
    assert done.returncode == 0, done.stderr[-800:]
    out = done.stdout
    assert "Runtimes side by side" in out and "over wasmtime native pooled+cached (pooled+cached)" in out
    table = out[out.index("Runtimes side by side"):].splitlines()
    for variant in ("baseline@extism", "cached@extism", "disk@extism", *(("cached@v8",) if "v8" in runtimes else ())):
        row = next(line for line in table if line.strip().startswith(variant + " "))
        assert "by means" in row and "by medians" in row, row
    assert "with Extism's compilation cache off" in out and "'pooled+cached@extism': pooled is not served" in out
    assert "extism 1." in out and "(wasmtime 49." in out  # the wasmtime Extism embeds, beside the lab's
    assert "every result checked" in out
    assert cache_folders() <= before  # disk@extism's folder removed with its run
    module = tmp_path / "seed.wasm"
    module.write_bytes(load_workload("seed").wasm)
    failed = wasmlab(["--workload", str(module), "--entry", "run", "--args", "1", "--expect", "3", "--runtime", "extism",
                      "--variants", "baseline,cached+reuse4", *QUICK], tmp_path)
    assert failed.returncode == 1 and "returned 2, expected 3" in failed.stdout + failed.stderr, failed.stderr[-800:]


@pytest.mark.timeout(200)
def test_isolate_runs_each_variant_on_its_own_runtime_once(tmp_path):
    """--isolate gives each variant a child; the child must not expand a wasmtime variant onto extism again (the merged
    run then held cached@extism twice per repetition and its ratio failed), and the run's notes survive the merge."""
    done = wasmlab(["--runtime", "wasmtime,extism", "--variants", "cached,pooled+cached", "--isolate", "--requests", "30",
                    "--repeats", "2", "--warmup", "2", "--no-save"], tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-800:]
    table = done.stdout[done.stdout.index("Runtimes side by side"):].splitlines()
    rows = [line for line in table if line.strip().startswith("cached@extism ")]
    assert len(rows) == 1 and "by means" in rows[0], table
    assert "'pooled+cached@extism': pooled is not served on extism" in done.stdout
