"""The plugin seam for what a recipe cannot say: a request driver registered under the ``wasmlab.drivers`` entry
points of an installed distribution (made here on disk, found by importlib.metadata as pip's would be)."""

import sys

import pytest
import wasmtime

from tests.workloads.recipe_guests import LIBRARY, serving, write_recipe
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.workloads import load_workload
from wasmlab.workloads.hostfuncs import drivers


def xor_driver(store: wasmtime.Store, instance: wasmtime.Instance, text: str) -> bytes:
    """A host's own protocol: the input into the guest's buffer, transform, the output back (XOR 0x5a undone)."""
    exports = instance.exports(store)
    memory = exports["memory"]
    buffer = exports["get_buffer"](store)
    memory.write(store, text.encode(), buffer)
    length = exports["transform"](store, len(text))
    out = exports["get_output"](store)
    return bytes(b ^ 0x5A for b in memory.read(store, out, out + length))


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "wasmlab_xor_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wasmlab-xor-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[wasmlab.drivers]\nxor = tests.workloads.test_drivers:xor_driver\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tmp_path


def recipe(folder, body: dict) -> str:
    return write_recipe(folder, LIBRARY, body, "library")


def test_an_installed_driver_serves_a_recipe_and_its_output_is_checked(installed_plugin):
    assert "xor" in drivers()
    workload = load_workload(recipe(installed_plugin, {"driver": "xor", "input": "hello wasm", "expect": {"stdout_match": "^hello wasm$"}}))
    with serving([workload], "api", "pooled+cached") as runtime:
        runtime.handle(0)
    wrong = load_workload(recipe(installed_plugin, {"driver": "xor", "input": "hello", "expect": {"stdout_match": "^bye"}}))
    with serving([wrong], "api", "cached") as runtime:
        with pytest.raises(ResultMismatch, match="output does not match '\\^bye'"):
            runtime.handle(0)


def test_a_driver_nobody_installed_is_one_line_naming_the_installed_ones(tmp_path):
    with pytest.raises(ConfigError, match="request driver 'nope' is not allowed; allowed: "):
        load_workload(recipe(tmp_path, {"driver": "nope"}))
    assert "tests.workloads" not in sys.modules.get("wasmlab.workloads.hostfuncs").__dict__
