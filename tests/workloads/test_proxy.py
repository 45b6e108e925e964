"""The catalog's wasi:http proxy: a real component that compiles, exports the incoming handler and imports only the
interfaces it calls (served by ``wasmlab serve``; tests/e2e/test_serve.py checks what it answers)."""

from __future__ import annotations

import pytest
import wasmtime

from wasmlab.errors import ConfigError
from wasmlab.workloads.introspect import engine
from wasmlab.workloads.proxy import proxy


def test_the_proxy_compiles_and_exports_only_the_incoming_handler_importing_only_what_it_calls():
    made = proxy("proxy")
    component = wasmtime.component.Component(engine(), made.wasm)
    kind = component.type
    assert list(kind.exports(engine())) == ["wasi:http/incoming-handler@0.2.0"]
    assert sorted(kind.imports(engine())) == ["wasi:http/types@0.2.0", "wasi:io/error@0.2.0", "wasi:io/streams@0.2.0"]
    assert (made.status, made.body) == (200, b"hello from wasmlab\n") and made.size_bytes < 4096


def test_an_unknown_proxy_is_one_line_naming_the_known_ones():
    with pytest.raises(ConfigError, match="proxy component \\(--workload\\) 'seed' is not allowed; allowed: proxy"):
        proxy("seed")
