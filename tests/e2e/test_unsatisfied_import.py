"""An import the lab cannot satisfy is one sentence (``wasmlab.workloads.unsatisfied_import``), whichever command or
call path meets it: the same guest gives the same line through ``reproduce`` on the lean, api and native paths (a
component's found at the lean and api paths' first compilation by wasmtime, before the native loop by its function
imports against its stubs; a core module's when it is loaded) and through ``inspect`` (wasmtime's refusal to
instantiate it once)."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from wasmlab.cli import main

GUESTS = {
    # A core module importing a function from a module that is neither WASI nor an installed host-function set.
    "core.wasm": ('(module (import "env" "clock" (func)) (func (export "run") (result i32) i32.const 1))',
                  "module 'core.wasm' has an import the lab cannot satisfy: module imports `env::clock`, which nothing defines; "
                  "allowed: wasi_snapshot_preview1 imports and the host-function sets "),
    # A component importing a function no recipe stubs.
    "component.wasm": ('(component (import "host-log" (func (param "msg" u32))) (core module $m (func (export "f") (param i32) '
                       '(result i32) local.get 0)) (core instance $i (instantiate $m)) (func (export "run") (param "x" u32) '
                       '(result u32) (canon lift (core func $i "f"))))',
                       "component 'component.wasm' has an import the lab cannot satisfy: component imports function `host-log`, "
                       "which nothing defines; allowed: WASI p2 imports, or a recipe's imports: stubbing its function imports "
                       "(host-log) with WAVE constants"),
}
REPRODUCE = ["reproduce", "--requests", "4", "--repeats", "1", "--warmup", "1", "--variants", "cached", "--no-save"]


def one_line(arguments: list[str]) -> str:
    done = CliRunner().invoke(main, arguments, catch_exceptions=True)
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and "Traceback" not in done.stderr, (arguments, done.stderr)
    return lines[0]


@pytest.mark.parametrize("guest", sorted(GUESTS))
def test_the_same_unsatisfiable_import_is_the_same_line_on_every_path_and_in_inspect(tmp_path: Path, guest: str) -> None:
    wat, sentence = GUESTS[guest]
    path = tmp_path / guest
    path.write_bytes(bytes(wasmtime.wat2wasm(wat)))
    lines = {f"reproduce --call-path {call_path}": one_line([*REPRODUCE, "--workload", str(path), "--call-path", call_path])
             for call_path in ("lean", "api", "native")}
    lines["inspect"] = one_line(["inspect", str(path)])
    assert len(set(lines.values())) == 1, lines
    assert next(iter(lines.values())).startswith(f"wasmlab: error: {sentence}"), lines
