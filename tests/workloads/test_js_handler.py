"""The JavaScript guest (js-handler: componentize-js, ~12 MB, SpiderMonkey inside): built from the repository's sources by
the locked toolchain, served on every call path (lean, api, native) with every result checked, a wrong answer caught."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from wasmlab.config import CacheConfig, EngineConfig, PoolConfig
from wasmlab.errors import ConfigError, ResultMismatch
from wasmlab.host.runtime import build_runtimes
from wasmlab.workloads import introspect, js_handler, load_workload
from wasmlab.workloads.catalog import sha256_of

PATHS = ("lean", "api", "native")


def test_the_python_digest_is_fnv1a_by_its_published_vectors():
    # The expected responses' digest is computed in Python; a wrong FNV-1a here would make every check wrong alike.
    assert js_handler._fnv1a("") == 0x811C9DC5
    assert js_handler._fnv1a("a") == 0xE40C292C
    assert js_handler._fnv1a("foobar") == 0xBF9CF968


def test_the_expected_response_of_a_one_item_checkout_by_hand():
    body = js_handler.request_body("checkout", items=1)
    assert body["items"] == [{"sku": "sku-00000", "price": 100, "quantity": 1}]
    digest = js_handler._fnv1a("sku-00000")
    assert js_handler.expected_response(body) == (
        f'{{"id":7,"status":200,"lines":1,"quantity":1,"total":90,"discount":10,"digest":{digest}}}')
    assert js_handler.expected_response(js_handler.request_body("not-found")) == '{"id":7,"status":404}'
    assert js_handler.expected_response(js_handler.request_body("empty")) == '{"id":7,"status":400,"error":"no items"}'


def test_a_bad_request_or_item_count_is_refused_with_what_is_allowed():
    with pytest.raises(ConfigError, match="'refund'.*allowed: checkout, empty, not-found"):
        js_handler.request_body("refund")
    with pytest.raises(ConfigError, match="items=0 is out of range; allowed: 1..100000"):
        js_handler.request_body("checkout", items=0)


def test_the_committed_lock_pins_componentize_js_and_every_package_by_an_integrity_hash():
    package = json.loads((js_handler.GUEST_DIR / "package.json").read_text())
    assert package["dependencies"][js_handler.PACKAGE] == js_handler.toolchain_version() == "0.23.0"
    lock = json.loads((js_handler.GUEST_DIR / "package-lock.json").read_text())
    installed = {path: entry for path, entry in lock["packages"].items() if path}
    assert len(installed) > 100
    assert all(entry["integrity"].startswith("sha512-") for entry in installed.values())
    assert not any("resolved" in entry or entry.get("extraneous") for entry in installed.values())  # npm ci skips extraneous


def test_every_input_of_the_build_is_in_its_cache_key(tmp_path, monkeypatch):
    copy = tmp_path / "js_handler"
    shutil.copytree(js_handler.GUEST_DIR, copy)
    monkeypatch.setattr(js_handler, "GUEST_DIR", copy)
    seen = {js_handler.source_hash()}
    for name in js_handler.SOURCES:
        with open(copy / name, "a") as source:
            source.write("\n")
        seen.add(js_handler.source_hash())
    monkeypatch.setattr(js_handler, "DISABLED", js_handler.DISABLED[:-1])
    seen.add(js_handler.source_hash())
    assert len(seen) == len(js_handler.SOURCES) + 2


def test_a_missing_or_changed_build_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(js_handler, "cache_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match="js-handler is not built yet .*wasmlab workloads fetch js-handler"):
        js_handler.js_handler()
    built = js_handler.component_path()
    built.parent.mkdir(parents=True)
    built.write_bytes(b"\0asm\x0d\0\x01\0")
    (built.parent / f"{built.name}.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(ConfigError, match=f"has SHA-256 {sha256_of(built)}, but its build recorded 0{{64}}; refusing"):
        js_handler.js_handler()


@pytest.fixture(scope="module")
def built():
    return js_handler.build()  # `wasmlab workloads fetch` builds it; here only when missing (npm ci, then ~20 s)


@pytest.mark.slow  # the 12 MB componentize-js guest
def test_the_build_imports_nothing_and_an_unchanged_tree_reuses_it(built):
    before = built.stat().st_mtime_ns
    assert js_handler.build() == built and built.stat().st_mtime_ns == before
    types = introspect.component_types(built.read_bytes())
    # Every WASI feature disabled: no import at all, so no call path needs a linker definition or a WASI context.
    assert dict(types.imports) == {} and not types.imports_wasi
    assert list(types.functions) == [js_handler.ENTRY]
    assert built.stat().st_size > 10 << 20 and (built.parent / f"{built.name}.sha256").read_text().strip() == sha256_of(built)


@pytest.mark.slow  # three compiles of the 12 MB guest (one per call path), ~20 s each
@pytest.mark.parametrize("path", PATHS)
def test_every_request_is_checked_and_a_wrong_answer_is_caught(built, path):
    shapes = [load_workload(spec) for spec in ("js-handler:request=not-found", "js-handler:request=empty",
                                               "js-handler:request=checkout,items=300")]
    right = shapes[-1].expected
    wrong = dataclasses.replace(shapes[-1], expected=right.replace('"status":200', '"status":201'))
    engine = EngineConfig(pool=PoolConfig(slots=2))
    runtime = build_runtimes(["pooled+cached"], engine, CacheConfig(), [*shapes, wrong], path)["pooled+cached"]
    for index in range(len(shapes)):
        runtime.handle(index)  # each compared with the Python twin's response; a difference raises
    with pytest.raises(ResultMismatch, match='"status":201'):
        runtime.handle(len(shapes))


@pytest.mark.slow  # needs the 12 MB build
def test_workloads_fetch_names_the_build_and_reuses_it(built):
    from click.testing import CliRunner

    from wasmlab.cli import main

    result = CliRunner().invoke(main, ["workloads", "fetch", "js-handler"])
    assert result.exit_code == 0, result.output
    assert result.output == (f"js-handler: {built} (already built by {js_handler.PACKAGE} 0.23.0, "
                             f"sha256 {sha256_of(built)[:12]}...)\n")
