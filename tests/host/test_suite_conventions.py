"""Standard-suite conventions (issue 30, Sightglass): a preopen at guest ``.``, outputs compared with expected files byte
for byte, file patterns matched on bytes, on the lean, api and native paths, with real wasmtime.

- ``.``: the guest prints its preopen's name (``.``) on stderr and copies ``./x.input`` (opened relative to that
  preopen) to stdout; both must equal the expected files, on every request, on every path, from a recipe and from the
  command line's flags alike.
- Exact comparison: an expected file one byte off (at its end, one byte shorter, one byte longer) fails every path
  with a message that says where; a check of only a prefix of the file would pass the first two.
- Bytes: a file pattern ``^\\x89PNG`` matches a PNG signature written by the guest (decoded as text it never matches),
  and a pattern of text still matches text.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import wasmtime
import yaml

from tests.conftest import small_pool_engine
from tests.host.suite_guests import INPUT, suite_folder
from tests.host.test_component_commands import POOL, write_command
from tests.workloads.recipe_guests import WRITER
from wasmlab.config import CacheConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.engine import EnginePool
from wasmlab.host.runtime import build_runtimes
from wasmlab.measure.settings import WorkloadSettings
from wasmlab.workloads import load_workload
from wasmlab.workloads.model import Workload

PATHS = ("lean", "api", "native")
VARIANTS = ("cached", "pooled+cached")
REQUESTS = 6
# The writer writing a PNG signature and a byte that is not UTF-8 (9 bytes, as "rendered\n").
PNG_WRITER = WRITER.replace('"rendered\\n"', '"\\89PNG\\0d\\0a\\1a\\0a\\ff"')


def serve(path: str, workload: Workload, variants: tuple[str, ...] = VARIANTS) -> None:
    """``REQUESTS`` requests of ``workload`` in one timed block on each variant of ``path``; a failure raises."""
    runtimes = build_runtimes(list(variants), small_pool_engine(2), CacheConfig(), [workload], call_path=path, engines=EnginePool())
    try:
        for name, runtime in runtimes.items():
            assert runtime.block is not None
            failures: list = []
            out = [0] * REQUESTS
            runtime.block([0] * REQUESTS, out, failures)
            assert not failures, (name, failures[:1])
            assert all(ns > 0 for ns in out), (name, out)
    finally:
        for runtime in runtimes.values():
            runtime.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_a_guest_reads_its_input_through_a_preopen_at_dot_and_its_outputs_equal_the_expected_files(tmp_path, path):
    workload = load_workload(str(suite_folder(tmp_path / "bench")))
    assert workload.preopens == ((str(tmp_path / "bench"), "."),)
    assert workload.expectation.stdout_bytes.data == INPUT and workload.expectation.stderr_bytes.data == b".\n"
    serve(path, workload)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", PATHS)
def test_the_command_line_preopens_at_dot_and_compares_with_expected_files(tmp_path, path):
    folder = tmp_path / "bench"
    suite_folder(folder)
    workload, = WorkloadSettings(spec=str(folder / "plain.wat"), dirs=(f"{folder}::.",), stdout_file=str(folder / "reader.stdout.expected"),
                                 stderr_file=str(folder / "reader.stderr.expected")).build()
    assert workload.preopens == ((str(folder), "."),) and workload.expectation.stdout_bytes.data == INPUT
    serve(path, workload)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("stream", "wrong", "where"), [
    ("stdout", INPUT[:-2] + b"X\n", "at byte 198 (line 5, column 39): got b'.\\n', expected b'X\\n'"),
    ("stdout", INPUT[:-1], "goes on with b'\\n' past the expected 199 bytes"),
    ("stdout", INPUT + b"more\n", "the output ends (200 bytes) where the expected goes on with b'more\\n'"),
    ("stderr", b"/\n", "at byte 0 (line 1, column 1): got b'.\\n', expected b'/\\n'"),
])
def test_an_expected_file_one_byte_off_fails_every_path_saying_where(tmp_path, path, stream, wrong, where):
    """One byte changed near the end, one dropped, one stream longer: a check of only a prefix passes the first two."""
    recipe = suite_folder(tmp_path / "bench", **{stream: wrong})
    with pytest.raises(ResultMismatch, match=f"{stream} differs from reader.{stream}.expected") as caught:
        serve(path, load_workload(str(recipe)), ("pooled+cached",))
    assert where in str(caught.value)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", PATHS)
def test_a_component_command_is_compared_with_its_expected_stdout_with_a_preopen_at_dot(tmp_path, path):
    """The component command prints hello, its arguments, its environment and its preopens' names (here ``.``)."""
    recipe_path = write_command(tmp_path)
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe["wasi"]["dirs"] = [{"host": ".", "guest": "."}]
    expected = b"hello\na1\nb2\nK=v\n.\n"
    (tmp_path / "run.stdout.expected").write_bytes(expected)
    recipe["expect"] = {"stdout_file": "run.stdout.expected"}
    recipe_path.write_text(yaml.safe_dump(recipe))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [load_workload(str(recipe_path))], path)["pooled+cached"]
    try:
        out: list[int] = [0] * REQUESTS
        failures: list = []
        runtime.block([0] * REQUESTS, out, failures)
        assert not failures and all(out)
    finally:
        runtime.close()
    (tmp_path / "run.stdout.expected").write_bytes(expected.replace(b".\n", b"/\n"))
    runtime = build_runtimes(["pooled+cached"], POOL, CacheConfig(), [load_workload(str(recipe_path))], path)["pooled+cached"]
    try:
        with pytest.raises(ResultMismatch, match=r"stdout differs from run.stdout.expected at byte 16 \(line 5, column 1\)"):
            runtime.block([0] * REQUESTS, [0] * REQUESTS, [])
    finally:
        runtime.close()


def writer_recipe(folder: Path, wat: str, guest: str, pattern: str) -> Workload:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "writer.wat").write_text(wat)
    inside = f"{guest.rstrip('/')}/result.txt"
    (folder / "writer.yaml").write_text(yaml.safe_dump({
        "module": "writer.wat", "wasi": {"dirs": [{"guest": guest, "writable": True}]},
        "expect": {"files": {inside: {"regex": pattern}}}}))
    return load_workload(str(folder / "writer.yaml"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("guest", ["/out", "."])
def test_a_file_pattern_matches_bytes_a_png_signature_and_text_alike(tmp_path, path, guest):
    serve(path, writer_recipe(tmp_path / "png", PNG_WRITER, guest, r"^\x89PNG\r\n\x1a\n\xff$"), ("pooled+cached",))
    serve(path, writer_recipe(tmp_path / "text", WRITER, guest, r"^rendered\n$"), ("pooled+cached",))
    with pytest.raises(ResultMismatch, match=r"result.txt does not match '\^\\\\x89PNX': begins b'\\x89PNG"):
        serve(path, writer_recipe(tmp_path / "wrong", PNG_WRITER, guest, r"^\x89PNX"), ("pooled+cached",))


@pytest.mark.parametrize(("guest", "ok"), [(".", True), ("./", True), ("data", True), ("/in", True), ("", False), ("../up", False),
                                           ("a/../b", False)])
def test_guest_paths_relative_ones_accepted_and_dot_dot_refused(tmp_path, guest, ok):
    from wasmlab.workloads.recipe import parse

    data = {"module": "m.wat", "wasi": {"dirs": [{"host": ".", "guest": guest}]}}
    if ok:
        assert parse(data, base=tmp_path).dirs[0].guest == (guest.rstrip("/") or "/")
    else:
        with pytest.raises(ConfigError, match="is not a guest path; allowed: an absolute path such as /out, or a relative one"):
            parse(data, base=tmp_path)


def test_a_missing_expected_file_and_a_pattern_that_bytes_refuse_are_one_line(tmp_path):
    from wasmlab.workloads.recipe import parse

    with pytest.raises(ConfigError, match=r"recipe expect.stdout_file: '.*nope.stdout.expected' cannot be read \(No such file"):
        parse({"module": "m.wat", "expect": {"stdout_file": "nope.stdout.expected"}}, base=tmp_path)
    with pytest.raises(ConfigError, match="recipe expect.files./out/a.regex: .* is not a regular expression"):
        parse({"module": "m.wat", "wasi": {"dirs": [{"guest": "/out", "writable": True}]},
               "expect": {"files": {"/out/a": {"regex": "(?u)x"}}}}, base=tmp_path)
    with pytest.raises(ConfigError, match="--stdout-file '.*nope' is not a readable file"):
        WorkloadSettings(spec=str(tmp_path / "m.wat"), stdout_file=str(tmp_path / "nope")).build()


def test_a_workload_copy_keeps_its_expected_bytes(tmp_path):
    workload = load_workload(str(suite_folder(tmp_path / "bench")))
    assert dataclasses.replace(workload, name="other").expectation.stdout_bytes == workload.expectation.stdout_bytes
    assert bytes(wasmtime.wat2wasm(PNG_WRITER)).startswith(b"\0asm")


@pytest.mark.timeout(120)
def test_the_recipes_page_s_sightglass_example_runs_as_written(tmp_path):
    """docs/recipes.md's example recipe, beside a Sightglass-shaped folder (its module, inputs and expected files)."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    example = page[page.index("# benchmarks/blake3-scalar/benchmark.yaml"):]
    example = example[:example.index("```")]
    folder = tmp_path / "blake3-scalar"
    suite_folder(folder)
    (folder / "benchmark.wasm").write_bytes(wasmtime.wat2wasm((folder / "reader.wat").read_text()))
    for stream in ("stdout", "stderr"):
        (folder / f"benchmark.{stream}.expected").write_bytes((folder / f"reader.{stream}.expected").read_bytes())
    (folder / "benchmark.yaml").write_text(example)
    serve("native", load_workload(str(folder / "benchmark.yaml")), ("pooled+cached",))


# A WASI command printing a PNG signature and a byte that is not UTF-8 on stdout.
PNG_PRINTER = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\\89PNG\\0d\\0a\\1a\\0a\\ff")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
PNG_BYTES = b"\x89PNG\r\n\x1a\n\xff"


def printer_recipe(folder: Path, expect: dict) -> Workload:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "printer.wat").write_text(PNG_PRINTER)
    (folder / "printer.yaml").write_text(yaml.safe_dump({"module": "printer.wat", "expect": expect}))
    return load_workload(str(folder / "printer.yaml"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", PATHS)
def test_a_stream_pattern_and_digest_are_checked_on_the_stream_s_bytes(tmp_path, path):
    """stdout's pattern is matched on its bytes, as a file's is (decoded as text, ``^\\x89PNG`` never matches), and its
    ``stdout_sha256`` is compared on every path; one wrong digit of the digest fails."""
    digest = hashlib.sha256(PNG_BYTES).hexdigest()
    serve(path, printer_recipe(tmp_path / "ok", {"stdout_match": r"^\x89PNG\r\n\x1a\n\xff$", "stdout_sha256": digest.upper()}),
          ("pooled+cached",))
    with pytest.raises(ResultMismatch, match=r"stdout does not match '\^\\\\x89PNX': begins b'\\x89PNG"):
        serve(path, printer_recipe(tmp_path / "pattern", {"stdout_match": r"^\x89PNX"}), ("pooled+cached",))
    wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    with pytest.raises(ResultMismatch, match=f"stdout has sha256 {digest}, expected {wrong}"):
        serve(path, printer_recipe(tmp_path / "digest", {"stdout_sha256": wrong}), ("pooled+cached",))


def test_a_stream_digest_that_is_not_a_sha256_is_one_line(tmp_path):
    from wasmlab.workloads.recipe import parse

    with pytest.raises(ConfigError, match="recipe expect.stderr_sha256: 'abc' is not a SHA-256; allowed: 64 hexadecimal digits"):
        parse({"module": "m.wat", "expect": {"stderr_sha256": "abc"}}, base=tmp_path)
