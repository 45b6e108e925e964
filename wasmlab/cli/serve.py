"""``wasmlab serve``: a ``wasi:http`` proxy component under the real ``wasmtime serve``, loaded by wrk or hey over loopback."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from wasmlab.cli.options import format_option, out_option, run_folder
from wasmlab.errors import ConfigError

# wrk takes whole seconds (or minutes, hours): so does --duration.
DURATION = re.compile(r"^(?P<value>\d+)(?P<unit>s|m)?$")


def parse_duration(text: str) -> float:
    """``3s``, ``2m`` or a whole number of seconds, in seconds; one line for anything else."""
    found = DURATION.match(text.strip())
    if found is None:
        raise ConfigError(f"--duration {text!r} is not a duration; allowed: whole seconds like 3s or 3, or minutes like 2m")
    value = float(found.group("value"))
    return value * 60 if found.group("unit") == "m" else value


def parse_connections(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise ConfigError(f"--connections {text!r} is not a list of integers; allowed: e.g. 1,2,8") from None


@click.command("serve")
@click.option("--workload", default="proxy", show_default=True, help="The wasi:http proxy component (the catalog's: proxy).")
@click.option("--connections", default="1,2", show_default=True, help="The load generator's connection counts, one load each.")
@click.option("--load-generator", "generator", type=click.Choice(["wrk", "hey"]), default="wrk", show_default=True,
              help="Debian's wrk (checks every status and body) or hey (every status; bodies by the lab before and after).")
@click.option("--duration", default="3s", show_default=True, help="How long each load runs, in whole seconds (e.g. 3s).")
@click.option("-O", "--optimize", "optimize", multiple=True, metavar="KEY=VALUE",
              help="A wasmtime -O option for the server, repeatable (e.g. pooling-allocator=y; `wasmtime serve -O help`).")
@click.option("--pooling/--no-pooling", "pooling", default=None, help="wasmtime's pooling allocator on or off "
              "(-O pooling-allocator=y|n); default: wasmtime serve's own.")
@click.option("--from-advice", "advice_file", type=click.Path(path_type=Path), default=None,
              help="-O options from an advice file (`wasmlab advise --format json`); explicit -O and --pooling win over it.")
@click.option("--port", default=0, show_default=True, type=int, help="The port on 127.0.0.1 (0: a free one).")
@out_option("data/results/serve/RUN_ID: summary.parquet, metadata.json")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
@format_option()
def serve(workload: str, connections: str, generator: str, duration: str, optimize: tuple[str, ...], pooling: bool | None,  # noqa: PLR0913 - click passes every flag
          advice_file: Path | None, port: int, out: Path | None, no_save: bool, fmt: str) -> None:
    """Serve a wasi:http proxy component with the real `wasmtime serve` on 127.0.0.1 and load it with wrk or hey.

    The pinned wasmtime CLI serves the component; wrk (or hey) loads it at each connection count for --duration: p50/p99
    latency, requests/s, errors, every response's status and body checked, and the server's resident memory and
    address space after each load.  The server is stopped by its PID on success, failure or Ctrl-C (an interrupted
    run keeps nothing)."""
    from wasmlab.experiments.serve import ServeSettings, run_serve

    if pooling is not None:
        optimize = (*optimize, f"pooling-allocator={'y' if pooling else 'n'}")
    advice = None
    if advice_file is not None:
        from wasmlab.experiments.serve import TOOL
        from wasmlab.experiments.serve_advice import advised_options
        from wasmlab.workloads.tools import installed

        advice = advised_options(advice_file, tuple(optimize), installed(TOOL))
        optimize = advice.merged
    settings = ServeSettings(workload, parse_connections(connections), parse_duration(duration), tuple(optimize), port,
                             advice, generator)
    if out is not None and not no_save:
        from wasmlab.storage import check_writable

        check_writable(out)
    run = run_serve(settings, lambda run_id: run_folder(out, no_save, "serve", run_id),
                    lambda line: click.echo(f"serve: {line}", err=True))
    click.echo(json.dumps(document(run), indent=2, default=str) if fmt == "json" else text(run))
    if not no_save and fmt != "json":
        click.echo(f"Results: {run_folder(out, no_save, 'serve', run.metadata['run_id'])}/ (summary.parquet, metadata.json)")
    if not run.checked:
        click.echo("wasmlab: error: some responses were not the proxy's (see bad and errors above)", err=True)
        sys.exit(1)


def document(run: object) -> dict[str, object]:
    """The run as JSON: its metadata, a row per connection count, and the results format version."""
    from wasmlab.experiments.serve import ServeRun
    from wasmlab.measure.results import FORMAT_VERSION

    assert isinstance(run, ServeRun)
    return {"format_version": FORMAT_VERSION, **run.metadata, "checked": run.checked,
            "loads": run.table().to_dict(orient="records")}


def text(run: object) -> str:
    """The table: one row per connection count."""
    from wasmlab.experiments.serve import ServeRun

    assert isinstance(run, ServeRun)
    meta = run.metadata
    lines = [f"wasmtime serve ({meta['wasmtime_cli']['reports']}, {meta['wasmtime_cli']['package']} "
             f"{meta['wasmtime_cli']['version']}) of {run.proxy.name} ({run.proxy.size_bytes} B) on {meta['address']}, "
             f"-O {' '.join(run.settings.optimize) or '(defaults)'}; load: {meta['load_generator']['version']}",
             *([run.settings.advice.line()] if run.settings.advice else []),
             f"{'conn':>4} {'requests':>9} {'req/s':>9} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'errors':>6} {'bad':>5} "
             f"{'RSS MiB':>8} {'addr GiB':>9}  checked"]
    for load, memory in zip(run.loads, run.memory, strict=True):
        lines.append(f"{load.connections:>4} {load.requests:>9} {load.requests_per_s:>9.0f} {load.p50_us:>8.0f} "
                     f"{load.p90_us:>8.0f} {load.p99_us:>8.0f} {load.errors:>6} {load.bad:>5} "
                     f"{memory.get('rss_kib', 0) / 1024:>8.1f} {memory.get('address_space_kib', 0) / 2**20:>9.1f}  "
                     f"{'yes' if load.checked else 'NO'}")
    if run.settings.load_generator == "hey":
        checked = (f"Every response's status counted by hey ({run.proxy.status}; hey reads no body, latencies rounded to 0.1 ms) "
                   f"and one response's status and {len(run.proxy.body)}-byte body checked by Python's http.client before "
                   f"the load and after each")
    else:
        checked = (f"Every response checked by wrk ({run.proxy.status}, {len(run.proxy.body)}-byte body) and one by "
                   f"Python's http.client before the load")
    lines.append(f"{checked}; the server (PID {meta.get('server_pid')}) is stopped.")
    return "\n".join(lines)
