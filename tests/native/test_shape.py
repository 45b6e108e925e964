"""The C driver's folder keeps its shape: no file over 600 lines, no function over 100, and the core (everything but the
Python glue) free of Python.h, so it builds and runs from C alone (test_core.py does that)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[2] / "wasmlab" / "native"
GLUE = {"glue.h", "module.c", "library_type.c", "driver_type.c", "driver_inputs.c", "component_inputs.c"}
SOURCES = sorted(FOLDER.glob("*.[ch]"))
# A definition starts at column 0 with a name and its parameters (perhaps over several lines) and opens its body with a
# "{" ending a line; a declaration ends with ";" instead.  Its body ends at a "}" in column 0.
START = re.compile(r"^(?!typedef|struct|enum|#|static const)[A-Za-z_][^;=]*?\b(\w+)\(")


def function_lengths(text: str) -> dict[str, int]:
    """Each function defined in C source ``text`` -> its lines, from its signature to its closing brace."""
    lengths: dict[str, int] = {}
    pending, inside, start = None, None, 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.rstrip()
        if inside is None and pending is None and (match := START.match(line)):
            pending, start = match.group(1), number
        if pending is not None and stripped.endswith(";"):
            pending = None
        elif pending is not None and stripped.endswith("{"):
            inside, pending = pending, None
        elif inside is not None and line.startswith("}"):
            lengths[inside] = number - start + 1
            inside = None
    return lengths


def test_the_folder_holds_the_concepts_and_the_old_single_file_is_gone():
    names = {p.name for p in SOURCES}
    assert {"wasmtime_api.h", "library.c", "engine.c", "module_cache.c", "wasi.c", "directories.c", "program.c",
            "request_loop.c", "component_loop.c", "component_values.c"} <= names
    assert not (FOLDER.parent / "_native.c").exists()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_c_file_over_600_lines_and_no_function_over_100(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 600
    assert {name: n for name, n in function_lengths(text).items() if n > 100} == {}


@pytest.mark.parametrize("path", [p for p in SOURCES if p.name not in GLUE], ids=lambda p: p.name)
def test_the_core_does_not_include_python(path):
    includes = re.findall(r'^#include [<"]([^>"]+)[>"]', path.read_text(), re.MULTILINE)
    assert "Python.h" not in includes and "glue.h" not in includes


def test_the_length_check_sees_a_long_function():
    body = "\n".join(f"    x += {i};" for i in range(120))
    source = f"int declared(int x);\nstatic int long_one(int x,\n                    int y) {{\n{body}\n    return x;\n}}\n"
    assert function_lengths(source) == {"long_one": 124}
