"""The driver's core runs from C alone: tests/native/core_main.c, compiled with the core files of wasmlab/native/ and no
Python.h, serves real requests on a pooling engine of wasmtime-py's own libwasmtime and checks every result."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import wasmtime._ffi

from tests.native.test_shape import GLUE

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "wasmlab" / "native"
PROGRAM = Path(__file__).with_name("core_main.c")
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-cast-function-type"]


def core_sources() -> list[str]:
    return [str(p) for p in sorted(FOLDER.glob("*.c")) if p.name not in GLUE]


def build(out: Path, *flags: str) -> Path:
    """core_main.c and the core, compiled and linked (no Python: its headers are not on the include path)."""
    subprocess.run(["cc", "-O2", *WARNINGS, *flags, f"-I{FOLDER}", "-o", str(out), str(PROGRAM), *core_sources(), "-ldl"],
                   check=True, capture_output=True, text=True)
    return out


def library() -> str:
    """wasmtime-py's own libwasmtime: the file its ctypes loaded."""
    return str(wasmtime._ffi.dll._name)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_the_core_serves_and_checks_requests_from_c_alone(tmp_path):
    program = build(tmp_path / "core_main")
    done = subprocess.run([str(program), library(), "2000"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "core: 2000 requests served on a pooling engine through the C core alone, every result checked"


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_the_core_program_fails_when_a_result_is_wrong(tmp_path):
    wrong = tmp_path / "core_main.c"
    text = PROGRAM.read_text()
    assert "{42, 1001, 0, 5, 8}" in text
    wrong.write_text(text.replace("{42, 1001, 0, 5, 8}", "{42, 1001, 0, 6, 8}"))
    subprocess.run(["cc", "-O2", f"-I{FOLDER}", "-o", str(tmp_path / "wrong"), str(wrong), *core_sources(), "-ldl"], check=True)
    done = subprocess.run([str(tmp_path / "wrong"), library(), "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout.startswith("core: result: got 5, expected 6"), done.stdout
