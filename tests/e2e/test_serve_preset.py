"""``wasmlab serve --preset NAME``: each of the lab's presets becomes the server's ``-O`` options, its slots turned into
the pool totals one instance of the proxy takes, explicit ``-O`` winning, what the server cannot take said; one real run
under the pinned ``wasmtime serve`` shows the preset's pool reached the server and that the server is gone afterwards.

The expected options are computed here from the preset's own fields and the proxy's component text, not by the code
under test: the ``-O`` key of a knob is its name spelled the CLI's way (checked against what ``wasmtime serve -O help``
lists), and a total left to ``slots`` is ``slots`` times the core instances (memories, tables) one proxy instance holds."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest

from tests.e2e.terminal import running
from tests.e2e.test_serve import SERVING, _left_on, _wasmlab, server_tools  # noqa: F401 - the fixture skips without the server's tools
from tests.e2e.test_serve_advice import _fake_cli
from wasmlab.config import PRESETS, SLOT_TOTALS, CacheConfig, PoolConfig, Preset
from wasmlab.experiments.serve_advice import serve_option_names
from wasmlab.experiments.serve_preset import preset_options
from wasmlab.workloads import tools
from wasmlab.workloads.proxy import GUEST_DIR

GiB = 1 << 30
# wasmtime's CLI calls linear memories "memory" in this one option's name; every other knob is its name with dashes.
CLI_SPELLING = {"linear_memory_keep_resident": "memory_keep_resident"}


def _per_proxy_instance() -> dict[str, int]:
    """What one instance of the proxy takes from each total, counted in its component text (at least one each)."""
    wat = (GUEST_DIR / "proxy.wat").read_text()
    counts = {"total_core_instances": len(re.findall(r"\(core instance \$\S+ \(instantiate", wat)),
              "total_memories": len(re.findall(r"\(memory \(export", wat)), "total_tables": len(re.findall(r"\(table\b", wat))}
    assert counts["total_core_instances"] == 2, counts  # the proxy's libc and main: the count the conversion multiplies by
    return {name: max(1, counts.get(name, 1)) for name in SLOT_TOTALS}


def _expected(preset: Preset, cli_names: set[str]) -> set[str]:
    per_instance = _per_proxy_instance()
    pool = preset.pool
    expected = {"pooling-allocator=y"}
    for f in fields(PoolConfig):
        value = getattr(pool, f.name)
        if f.name == "slots" or (value is None and f.name not in SLOT_TOTALS):
            continue
        if f.name in SLOT_TOTALS and value is None:
            value = pool.slots * per_instance[f.name]
        expected.add(f"pooling-{CLI_SPELLING.get(f.name, f.name).replace('_', '-')}={value}")
    expected |= {f"{name.replace('_', '-')}={value}" for name, value in preset.engine.items()}
    assert {o.split("=")[0] for o in expected} <= cli_names  # every key is one the pinned CLI lists
    return expected


@pytest.fixture(scope="module")
def binary():
    return tools.installed("wasmtime-cli")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_field_becomes_its_wasmtime_serve_option_with_slots_as_totals(name, binary):
    preset = PRESETS[name]
    source = preset_options(preset, (), "proxy", binary)
    assert source.options[0] == "pooling-allocator=y"
    assert set(source.options) == _expected(preset, serve_option_names(binary)) and source.merged == source.options
    # The conversion is said: a total left to slots names its multiplier.
    (header, not_taken) = source.lines()
    if preset.pool.total_core_instances is None:
        assert f"core instances {preset.pool.slots} x 2 per instance = {2 * preset.pool.slots}" in header
    assert header.startswith(f"-O from preset {name}: {' '.join(source.options)}")
    assert f"cache {preset.cache.policy} of {preset.cache.size} compiled modules" in not_taken


def test_explicit_options_win_over_the_presets_and_no_pooling_drops_its_pool(binary):
    seed = PRESETS["seed"]
    source = preset_options(seed, ("pooling-total-stacks=8",), "proxy", binary)
    assert source.overridden == ("pooling-total-stacks=20",) and source.merged[-1] == "pooling-total-stacks=8"
    assert "pooling-total-stacks=20" not in source.merged and len(source.merged) == len(source.options)
    assert "explicit -O wins over the preset's pooling-total-stacks=20" in source.lines()[0]
    off = preset_options(seed, ("pooling-allocator=n",), "proxy", binary)
    assert off.merged == ("pooling-allocator=n",) and "its 5 pool options are left out" in off.lines()[0]


def test_what_wasmtime_serve_cannot_take_is_said_not_dropped(tmp_path, binary):
    winch = Preset("winch", "a preset with a knob wasmtime serve has no -O for", PoolConfig(slots=3), CacheConfig(policy="none"),
                   engine={"compiler": "winch", "memory_guard_size": 65536})
    source = preset_options(winch, (), "proxy", binary)
    assert "memory-guard-size=65536" in source.options and not any("winch" in o for o in source.options)
    assert source.not_taken[0] == "engine compiler=winch" and "cache none" in source.not_taken[-1]
    # A CLI whose `serve -O help` lists no pool option: the pool's options are named as left out, not passed on.
    older = _fake_cli(tmp_path, "  -O   pooling-allocator[=y|n] -- Pooling\n  -O memory-guard-size=N -- Guard\n")
    left = preset_options(winch, (), "proxy", older)
    assert left.options == ("pooling-allocator=y", "memory-guard-size=65536")
    assert "pooling-total-core-instances=6 (not an option of this wasmtime serve)" in left.not_taken


def test_serve_with_a_preset_runs_its_pool_and_stops_the_server(tmp_path):
    done = _wasmlab(["serve", "--preset", "seed", "--connections", "1", "--duration", "1s", "--out", "run"], tmp_path)
    assert done.returncode == 0, done.stderr
    port, pid = (int(v) for v in SERVING.search(done.stderr.encode()).groups())
    assert not running(pid) and _left_on(port) == []
    header = done.stdout.splitlines()
    assert header[1].startswith("-O from preset seed: pooling-allocator=y pooling-total-core-instances=40 ")
    assert header[2].startswith("Preset seed settings wasmtime serve cannot take (left out): cache lru of 16")
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["optimize"] == metadata["optimize_from_preset"]["options"]
    assert "pooling-total-core-instances=40" in metadata["optimize"]
    command = metadata["server_command"]
    assert all(["-O", o] == command[i:i + 2] for o in metadata["optimize"] for i in [command.index(o) - 1])
    (load,) = metadata["loads"]
    assert load["checked"] and load["good"] == load["requests"] > 0
    # The preset's 20 memories reached the server: ~80 GiB of reservation, not wasmtime serve's default ~4 TiB.
    assert metadata["memory"][0]["address_space_kib"] < 256 * GiB // 1024
