"""``wasmlab serve --from-advice``: a real advice document from ``wasmlab advise --format json`` (smoke size, a target
any machine meets) becomes the server's ``-O`` options, explicit ``-O`` wins over it, and what the server cannot take is
one line, exit 2."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from tests.e2e.terminal import running
from tests.e2e.test_serve import _left_on, _wasmlab, server_tools  # noqa: F401 - the fixture skips without the server's tools
from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.snippets import ENGINE_SERVE_OPTIONS, SERVE_OPTIONS
from wasmlab.experiments.serve_advice import advised_options, serve_option_names
from wasmlab.workloads import tools

GiB = 1 << 30


@pytest.fixture(scope="module")
def advice(tmp_path_factory) -> Path:
    """Advice for the middleware component at 2 concurrent requests, against a 100 ms p99 every run meets."""
    folder = tmp_path_factory.mktemp("advice")
    done = _wasmlab(["advise", "--workload", "middleware", "--concurrency", "2", "--p99-us", "100000", "--budget-s", "4",
                     "--requests", "300", "--repeats", "2", "--format", "json", "--no-save"], folder)
    assert done.returncode == 0, done.stderr
    path = folder / "advice.json"
    path.write_text(done.stdout)
    return path


def _edited(advice: Path, folder: Path, **candidate: object) -> Path:
    data = json.loads(advice.read_text())
    data["recommended"]["candidate"].update(candidate)
    path = folder / "edited.json"
    path.write_text(json.dumps(data))
    return path


def test_the_advices_options_are_its_own_wasmtime_serve_snippet(advice):
    """The options the server gets from the advice are the advisor's own rendering, the allocator stated."""
    data = json.loads(advice.read_text())
    source = advised_options(advice, (), tools.installed("wasmtime-cli"))
    assert data["snippets"]["wasmtime_serve"] == "wasmtime serve " + " ".join(f"-O {o}" for o in source.advised) + " COMPONENT.wasm"


def test_the_advices_options_reach_the_server_and_explicit_o_wins(tmp_path, advice):
    """On-demand advice (whatever the advisor chose within its short budget: a pool sized for the middleware may not
    hold the proxy, a case of its own below): its options, with an explicit -O winning, are the server's."""
    on_demand = _edited(advice, tmp_path, allocator="on-demand")
    done = _wasmlab(["serve", "--from-advice", str(on_demand), "-O", "memory-init-cow=y", "--connections", "1", "--duration", "1s",
                     "--out", "run"], tmp_path)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("-O from advice "))
    assert "measured on middleware" in line
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    source = metadata["optimize_from_advice"]
    assert source["explicit"] == ["memory-init-cow=y"] and source["file"] == str(on_demand)
    assert metadata["optimize"] == [o for o in source["advised"] if o not in source["overridden"]] + ["memory-init-cow=y"]
    command = metadata["server_command"]
    assert all(["-O", o] == command[i:i + 2] for o in metadata["optimize"] for i in [command.index(o) - 1])
    if "memory-init-cow=n" in source["advised"]:
        assert source["overridden"] == ["memory-init-cow=n"] and "explicit -O wins over the advice's memory-init-cow=n" in line
    (load,) = metadata["loads"]
    assert load["checked"] and load["good"] == load["requests"] > 0 and not running(metadata["server_pid"])
    # wasmtime serve pools by default (GiB-to-TiB reservations): the advice's on-demand allocator must reach it.
    assert "pooling-allocator=n" in metadata["optimize"] and metadata["memory"][0]["address_space_kib"] < 64 * GiB // 1024


def test_a_pool_advised_for_a_smaller_component_is_one_line_exit_2_and_leaves_no_server(tmp_path, advice):
    """Advice measured on the middleware (one core instance) pools one core instance per component; the proxy has two,
    so wasmtime serve refuses to start: one line naming the advice and the limit, exit 2, no server left."""
    pooled = _edited(advice, tmp_path, allocator="pooling", slots=2)
    done = _wasmlab(["serve", "--from-advice", str(pooled), "--connections", "1", "--duration", "1s", "--no-save"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "its pool, sized for middleware, cannot hold proxy" in done.stderr and "exceeds the configured maximum" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_every_option_the_advisor_renders_is_one_the_pinned_wasmtime_serve_takes():
    names = serve_option_names(tools.installed("wasmtime-cli"))
    assert {"pooling-allocator", *SERVE_OPTIONS.values(), *ENGINE_SERVE_OPTIONS.values()} <= names


def test_a_pooled_recommendation_renders_its_pool(tmp_path, advice):
    pooled = advised_options(_edited(advice, tmp_path, allocator="pooling", slots=4), ("pooling-max-memory-size=131072",),
                             tools.installed("wasmtime-cli"))
    assert pooled.advised[0] == "pooling-allocator=y" and "pooling-total-component-instances=4" in pooled.advised
    assert pooled.merged[-1] == "pooling-max-memory-size=131072" and pooled.overridden == ("pooling-max-memory-size=65536",)


def _fake_cli(folder: Path, help_text: str) -> Path:
    """A stand-in CLI whose `serve -O help` lists only what it is given: an older or different wasmtime."""
    path = folder / "wasmtime"
    path.write_text(f"#!{sys.executable}\nprint({help_text!r})\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_settings_this_wasmtime_serve_does_not_list_are_refused(tmp_path, advice):
    older = _fake_cli(tmp_path, "  -O   opt-level=0|1|2|s -- Optimization level\n  -O memory-init-cow[=y|n] -- CoW\n")
    with pytest.raises(ConfigError, match=r"its settings pooling-allocator=[yn]\b.* are not options of this wasmtime serve"):
        advised_options(advice, (), older)
    # memory-init-cow is listed there, so it is not named.
    with pytest.raises(ConfigError) as refused:
        advised_options(_edited(advice, tmp_path, cow=False), (), older)
    assert "memory-init-cow" not in str(refused.value)


@pytest.mark.parametrize("change, message", [
    ({"reuse": 4}, "recommends reusing an instance for 4 requests, which wasmtime serve cannot"),
    ({"snapshot": True}, "recommends serving a Wizer snapshot, which is not a wasmtime serve -O option"),
    ({"no_such_knob": 1}, "its recommendation or serving needs are not the advisor's"),
])
def test_advice_wasmtime_serve_cannot_take_is_one_line_exit_2(tmp_path, advice, change, message):
    edited = _edited(advice, tmp_path, **change)
    done = _wasmlab(["serve", "--from-advice", str(edited), "--duration", "1s", "--no-save"], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines == [f"wasmlab: error: --from-advice {edited}: {message}" + lines[0].split(message)[1]]
    assert lines[0].endswith("allowed: the output of `wasmlab advise --format json` with a recommendation") and done.stdout == ""


@pytest.mark.parametrize("content, message", [
    ("not json", "is not JSON"),
    ('{"format_version": 1, "rows": []}', "is not an advice document"),
    ('[1, 2]', "is not an advice document"),
    ('{"format_version": 1, "feasible": false, "reason": "p99 target 1 µs not met", "recommended": null, "needs": {}, '
     '"snippets": {}}', "recommends nothing (p99 target 1 µs not met)"),
    ('{"format_version": 9, "feasible": true, "recommended": {}, "needs": {}, "snippets": {}}', "has advice format 9"),
])
def test_a_file_that_is_not_usable_advice_is_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "advice.json"
    path.write_text(content)
    done = _wasmlab(["serve", "--from-advice", str(path), "--duration", "1s", "--no-save"], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"wasmlab: error: --from-advice {path}: {message}")
    assert done.stdout == ""
