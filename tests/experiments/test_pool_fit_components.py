"""``wasmlab inspect`` on a component: what one instance holds (confirmed by instantiation), the memory a request grows
to, what it imports and the functions it exports, inside exported interfaces too."""

from __future__ import annotations

import wasmtime
from click.testing import CliRunner

from tests.host.test_component_pools import TWO_INSTANCES
from wasmlab.cli import main
from wasmlab.experiments.pool_fit import inspect
from wasmlab.workloads import load_workload
from wasmlab.workloads.components import component_workload

# Imports a WASI p2 interface and exports its function at the top (the entry) and inside an interface: `my:pkg/api#run`.
WASI_INTERFACE = """(component
  (import "wasi:cli/environment@0.2.0" (instance))
  (core module $m (memory (export "memory") 1) (func (export "f") (param i32) (result i32) local.get 0))
  (core instance $i (instantiate $m))
  (func $run (param "x" u32) (result u32) (canon lift (core func $i "f")))
  (export "run" (func $run))
  (instance $api (export "run" (func $run)))
  (export "my:pkg/api" (instance $api)))"""


def test_inspect_lists_a_components_instance_needs_its_imports_and_its_interface_functions():
    two = component_workload("two", bytes(wasmtime.wat2wasm(TWO_INSTANCES)), "run", (41,), 42)
    result = inspect(two)
    assert result.confirmed and result.requirements["max_core_instances_per_component"] == 2
    assert result.surface is not None and dict(result.surface.functions) == {"run": "func(x: u32) -> u32", "boom": "func(x: u32) -> u32"}
    text = result.render()
    assert "exports boom: func(x: u32) -> u32" in text and "imports none" in text
    assert "2 core instances, 1 memories, 0 tables and 1 component instance in the pool's totals" in text


def test_inspect_names_wasi_imports_and_functions_inside_exported_interfaces(tmp_path):
    (tmp_path / "api.wat").write_text(WASI_INTERFACE)
    done = CliRunner().invoke(main, ["inspect", str(tmp_path / "api.wat")])
    assert done.exit_code == 0, done.output
    assert "imports WASI preview 2 (1 interface(s) of cli, version 0.2.0): each store gets a WASI context" in done.output
    assert "exports run: func(x: u32) -> u32" in done.output and "exports my:pkg/api#run: func(x: u32) -> u32" in done.output


def test_inspect_gives_a_component_the_memory_its_request_grows_to():
    result = inspect(load_workload("middleware:request=auth-ok,headers=4,body=65536"))
    assert result.requirements["max_memory_size"] == 64 * 1024 and result.request_memory == 128 * 1024
    # A preset whose max_memory_size is below it is told to raise it to what serving needs.
    assert ">= 131072 B (2 pages) to serve a request; 65536 B (1 pages) to instantiate" in result.render()


def test_a_component_import_the_lab_cannot_satisfy_is_one_line_for_inspect_and_advise(tmp_path):
    wat = ('(component (import "host-log" (func (param "msg" u32))) (core module $m (func (export "f") (param i32) (result i32)'
           ' local.get 0)) (core instance $i (instantiate $m)) (func (export "run") (param "x" u32) (result u32)'
           ' (canon lift (core func $i "f"))))')
    (tmp_path / "imports.wat").write_text(wat)
    for command in (["inspect", str(tmp_path / "imports.wat")],
                    ["advise", "--workload", str(tmp_path / "imports.wat"), "--concurrency", "2", "--p99-us", "100"]):
        done = CliRunner().invoke(main, command)
        lines = done.stderr.strip().splitlines()
        assert done.exit_code == 2 and len(lines) == 1, done.output
        assert "component 'imports.wat' has an import the lab cannot satisfy: component imports function `host-log`" in lines[0]


def test_inspect_lists_the_functions_of_an_interface_inside_an_interface(tmp_path):
    from tests.host.test_interface_exports import write_component

    workload = component_workload("interfaces", write_component(tmp_path).read_bytes(), "seven", (), 7)
    assert "exports pkg:ns/outer@1.0.0#inner#deep: func() -> u32" in inspect(workload).render()
