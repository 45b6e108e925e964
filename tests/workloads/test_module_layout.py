"""What a module's bytes declare (memories, data segments) and wasmtime's copy-on-write rule, on modules of known truth
written here, then through ``wasmlab inspect``."""

import json

import pytest
import wasmtime

from wasmlab.workloads import module_layout
from wasmlab.workloads.module_layout import Memory, Segment, layouts


def layout_of(wat: str) -> module_layout.ModuleLayout:
    found = layouts(wasmtime.wat2wasm(wat))
    assert len(found) == 1
    return found[0]


def test_memories_are_read_with_their_limits_index_type_sharing_and_whether_imported():
    found = layout_of("""(module
        (import "env" "shared" (memory 1 4 shared))
        (memory 3)
        (memory i64 2 70000))""")
    assert found.memories == (Memory(1, 4, shared=True, imported=True), Memory(3, None), Memory(2, 70000, memory64=True))
    assert [m.to_dict()["maximum_bytes"] for m in found.memories] == [4 << 16, None, 70000 << 16]


def test_data_segments_are_counted_with_their_bytes_offsets_and_passive_ones_apart():
    found = layout_of("""(module (memory 2)
        (data (i32.const 16) "hello")
        (data "passive bytes")
        (data (i32.const 70000) "\\01\\02\\03"))""")
    assert found.segments == (Segment(0, 16, 5), Segment(None, None, 13), Segment(0, 70000, 3))
    assert found.data_bytes == 21 and found.to_dict()["passive_data_bytes"] == 13
    assert found.cow_image


@pytest.mark.parametrize("wat, reason", [
    ('(module (global $g (import "env" "base") i32) (memory 1) (data (global.get $g) "x"))', "computed"),
    ('(module (import "env" "m" (memory 1)) (data (i32.const 0) "x"))', "imported memory"),
    ('(module (memory 1) (data (i32.const 65535) "xy"))', "beyond its memory's minimum"),
    # 2 bytes spread over 32 MiB: over half empty and over the 16 MiB always allowed.
    ('(module (memory 1024) (data (i32.const 0) "a") (data (i32.const 33554431) "b"))', "sparse"),
])
def test_a_module_wasmtime_gives_no_image_is_named_with_its_reason(wat, reason):
    found = layout_of(wat)
    assert not found.cow_image and reason in found.cow_reason


def test_a_sparse_image_under_the_size_always_allowed_still_gets_one():
    # The same two bytes 8 MiB apart: sparse, but under memory_guaranteed_dense_image_size.
    assert layout_of('(module (memory 1024) (data (i32.const 0) "a") (data (i32.const 8388607) "b"))').cow_image


def test_a_component_is_read_core_module_by_core_module():
    from wasmlab.workloads import load_workload

    component = load_workload("component-seed")
    found = layouts(component.wasm)
    assert len(found) >= 1 and all(layout.memories for layout in found[:1])


def test_bytes_that_are_not_a_module_are_one_line():
    from wasmlab.errors import ConfigError

    with pytest.raises(ConfigError, match="could not be read"):
        layouts(b"\0asm\x01\x00\x00\x00\x05\x09\x01", "broken.wasm")


def test_inspect_sizes_a_library_module_and_prints_json_with_its_layout_and_compile_cost(tmp_path):
    from click.testing import CliRunner

    from wasmlab.cli import main

    library = tmp_path / "lib.wat"
    library.write_text('(module (memory 2 10) (data (i32.const 16) "hello") (func (export "add") (param i32 i32) (result i32)'
                       ' local.get 0 local.get 1 i32.add))')
    done = CliRunner().invoke(main, ["inspect", "--format", "json", str(library)])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["workload"]["kind"] == "library" and data["workload"]["entry"] is None
    assert data["core_modules"][0]["memories"][0] == {"minimum_bytes": 2 << 16, "maximum_bytes": 10 << 16, "memory64": False,
                                                      "shared": False, "imported": False, "page_size": 1 << 16}
    assert data["core_modules"][0]["data_bytes"] == 5 and data["core_modules"][0]["copy_on_write_image"] is True
    assert data["compile"]["compiles"] >= 1 and data["compile"]["artifact_bytes"] > len(library.read_bytes())
    assert data["requirements"]["max_memory_size"] == 2 << 16 and data["request_memory_bytes"] is None
    assert data["presets"]["seed"]["fits"] is True
