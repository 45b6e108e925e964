"""The package's imports run one way: CLI and notebooks -> experiments, reports -> measurement -> host -> workloads -> foundation.

Every import in ``wasmlab/`` is read with ``ast`` (function-level imports included: a circle hidden in
a function is still a circle), resolved to the module it names, and checked against the layers; the
graph is then searched for circles.  A failure names both modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wasmlab"
# Guest sources compiled into WebAssembly by componentize-py, not modules of the lab.
GUESTS = PACKAGE / "workloads" / "guests"

# Lowest first.  A module may import its own layer and any layer below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("wasmlab", "wasmlab.errors", "wasmlab.config", "wasmlab.storage", "wasmlab.capi", "wasmlab._native", "wasmlab.jupyter_kernels")),
    ("workloads", ("wasmlab.workloads",)),
    ("host", ("wasmlab.host",)),
    ("measure", ("wasmlab.measure",)),
    ("analysis", ("wasmlab.experiments", "wasmlab.report")),
    ("app", ("wasmlab.sweep_spec", "wasmlab.sweep", "wasmlab.explore", "wasmlab.cli")),
]
# Packages of one layer that are peers: neither may import the other.
PEERS = [("wasmlab.experiments", "wasmlab.report")]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if GUESTS not in p.parents}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The lab's modules that ``path`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "wasmlab" or t.startswith("wasmlab."))
    found.discard(name)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"module {name} belongs to no layer: add it to LAYERS in {Path(__file__).name}")
    return rank


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(source):
                bad.append(f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
            for a, b in PEERS:
                for one, other in ((a, b), (b, a)):
                    if (source == one or source.startswith(one + ".")) and (target == other or target.startswith(other + ".")):
                        bad.append(f"{source} imports its peer {target}")
    return bad


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a list of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def describe_circle(component: list[str], edges: dict[str, set[str]]) -> str:
    pairs = [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]
    return "import circle: " + "; ".join(pairs)


def test_no_module_imports_a_layer_above_its_own_or_its_peer():
    assert upward_imports(graph()) == []


def test_no_import_circles():
    edges = graph()
    assert [describe_circle(c, edges) for c in circles(edges)] == []


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_only_capi_touches_the_raw_bindings():
    """``wasmtime._bindings`` and ``wasmtime._ffi`` are declared in one place, so a wasmtime upgrade fails one test."""
    offenders = []
    for name, path in modules().items():
        if name == "wasmlab.capi":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            if any(n.startswith(("wasmtime._bindings", "wasmtime._ffi")) for n in names):
                offenders.append(name)
    assert offenders == []


# The checker itself, on graphs of known shape: it must find what is there and nothing else.

def test_the_circle_search_finds_a_circle_and_names_its_modules():
    edges = {"wasmlab.host.a": {"wasmlab.host.b"}, "wasmlab.host.b": {"wasmlab.host.c"}, "wasmlab.host.c": {"wasmlab.host.a"},
             "wasmlab.host.d": {"wasmlab.host.a"}}
    assert circles(edges) == [["wasmlab.host.a", "wasmlab.host.b", "wasmlab.host.c"]]
    assert "wasmlab.host.c -> wasmlab.host.a" in describe_circle(circles(edges)[0], edges)
    assert circles({"wasmlab.host.a": {"wasmlab.host.b"}, "wasmlab.host.b": set()}) == []


def test_the_layer_check_names_an_upward_import_and_a_peer_import():
    bad = upward_imports({"wasmlab.host.runtime": {"wasmlab.measure.harness", "wasmlab.config"},
                          "wasmlab.report.text": {"wasmlab.experiments.pool_fit"}})
    assert bad == ["wasmlab.host.runtime (host) imports wasmlab.measure.harness (measure)",
                   "wasmlab.report.text imports its peer wasmlab.experiments.pool_fit"]


@pytest.mark.parametrize("source,expected", [
    ("from wasmlab.host import runtime", {"wasmlab.host.runtime"}),
    ("from wasmlab.host.runtime import Runtime", {"wasmlab.host.runtime"}),
    ("def f():\n    from wasmlab import sweep", {"wasmlab.sweep"}),
    ("from . import outcomes", {"wasmlab.host.outcomes"}),
    ("import wasmlab.measure.harness as h", {"wasmlab.measure.harness"}),
])
def test_imports_are_resolved_to_modules(tmp_path, source, expected):
    path = tmp_path / "runtime.py"
    path.write_text(source)
    known = {"wasmlab.host.runtime", "wasmlab.sweep", "wasmlab.host.outcomes", "wasmlab.measure.harness"}
    assert imports_of("wasmlab.host.probe", path, known) == expected
