"""``wasmlab serve``: a ``wasi:http`` proxy component under the real ``wasmtime serve``, loaded by wrk or hey over loopback."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from wasmlab.cli.options import RATES, format_option, out_option, run_folder
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
@click.option("--connections", default=None, help="The load generator's connection counts, one load each [default: 1,2, "
              "or none with --rate alone].")
@click.option("--load-generator", "generator", type=click.Choice(["wrk", "hey"]), default="wrk", show_default=True,
              help="Debian's wrk (checks every status and body) or hey (every status; bodies by the lab before and after).")
@click.option("--rate", "rates", default=None, type=RATES, help="Offered loads for the lab's open-loop generator, requests/s, one load "
              "each (e.g. 200,1000): latency from each request's intended send time.")
@click.option("--rate-connections", default=4, show_default=True, type=int,
              help="The open-loop generator's keep-alive connections.")
@click.option("--duration", default="3s", show_default=True, help="How long each load runs, in whole seconds (e.g. 3s).")
@click.option("-O", "--optimize", "optimize", multiple=True, metavar="KEY=VALUE",
              help="A wasmtime -O option for the server, repeatable (e.g. pooling-allocator=y; `wasmtime serve -O help`).")
@click.option("--pooling/--no-pooling", "pooling", default=None, help="wasmtime's pooling allocator on or off "
              "(-O pooling-allocator=y|n); default: wasmtime serve's own.")
@click.option("--from-advice", "advice_file", type=click.Path(path_type=Path), default=None,
              help="-O options from an advice file (`wasmlab advise --format json`); explicit -O and --pooling win over it.")
@click.option("--preset", "preset_name", default=None, metavar="NAME",
              help="-O options from one of the lab's presets (`wasmlab presets`), its slots as wasmtime serve's totals for "
                   "the component; explicit -O and --pooling win over it; not with --from-advice.")
@click.option("--beside-lab", is_flag=True, help="Also measure, before the server starts, the lab's own request of the proxy "
              "on the server's pool without the handler's call (new store, instantiate, drop) in C (the lean path's from Python beside "
              "it), beside serve's p50 at 1 connection.")
@click.option("--port", default=0, show_default=True, type=int, help="The port on 127.0.0.1 (0: a free one).")
@out_option("data/results/serve/RUN_ID: summary.parquet, metadata.json")
@click.option("--no-save", is_flag=True, help="Do not write result files.")
@format_option()
def serve(workload: str, connections: str | None, generator: str, rates: tuple[float, ...] | None,  # noqa: PLR0913 - click passes every flag
          rate_connections: int, duration: str, optimize: tuple[str, ...], pooling: bool | None,
          advice_file: Path | None, preset_name: str | None, beside_lab: bool, port: int, out: Path | None, no_save: bool, fmt: str) -> None:
    """Serve a wasi:http proxy component with the real `wasmtime serve` on 127.0.0.1 and load it with wrk or hey.

    The pinned wasmtime CLI serves the component; wrk (or hey) loads it at each connection count for --duration: p50/p99
    latency, requests/s, errors, every response's status and body checked, and the server's resident memory and
    address space after each load.  With --rate, the lab's own open-loop generator offers each rate for --duration:
    latency from each request's intended send time (p50/p99/p99.9), the rate achieved, late and failed requests.  The server is stopped by its PID on success, failure or Ctrl-C (an interrupted
    run keeps nothing)."""
    from wasmlab.experiments.serve import ServeSettings, run_serve

    if pooling is not None:
        optimize = (*optimize, f"pooling-allocator={'y' if pooling else 'n'}")
    advice, preset = sourced_options(tuple(optimize), advice_file, preset_name, workload)
    optimize = preset.merged if preset else advice.merged if advice else optimize
    counts = parse_connections(connections) if connections is not None else (() if rates is not None else (1, 2))
    settings = ServeSettings(workload, counts, parse_duration(duration), tuple(optimize), port, advice, generator,
                             tuple(rates or ()), rate_connections, preset, beside_lab)
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


def sourced_options(explicit: tuple[str, ...], advice_file: Path | None, preset_name: str | None,
                    workload: str) -> tuple[Any, Any]:
    """The advice's or the preset's -O options (AdvisedOptions, PresetOptions), with ``explicit`` winning over them.
    Both at once is refused: two sources of the same options, neither of which a user would expect to lose."""
    if advice_file is None and preset_name is None:
        return None, None
    if advice_file is not None and preset_name is not None:
        raise ConfigError(f"--preset {preset_name} and --from-advice {advice_file} both give the server's -O options; allowed: "
                          f"one of them (explicit -O and --pooling win over either)")
    from wasmlab.experiments.serve import TOOL
    from wasmlab.workloads.tools import installed

    if advice_file is not None:
        from wasmlab.experiments.serve_advice import advised_options

        return advised_options(advice_file, explicit, installed(TOOL)), None
    from wasmlab.config import get_preset
    from wasmlab.experiments.serve_preset import preset_options

    chosen = get_preset(str(preset_name))  # an unknown name: one line, before any tool is looked up
    return None, preset_options(chosen, explicit, workload, installed(TOOL))


def document(run: object) -> dict[str, object]:
    """The run as JSON: its metadata, a row per connection count, and the results format version."""
    from wasmlab.experiments.serve import ServeRun
    from wasmlab.measure.results import FORMAT_VERSION

    assert isinstance(run, ServeRun)
    return {"format_version": FORMAT_VERSION, **run.metadata, "checked": run.checked,
            "loads": run.table().to_dict(orient="records")}


def text(run: object) -> str:
    """The tables: a row per connection count (wrk or hey), then a row per offered rate (the open-loop generator)."""
    from wasmlab.experiments.serve import ServeRun

    assert isinstance(run, ServeRun)
    meta = run.metadata
    loads = f"; load: {meta['load_generator']['version']}" if meta.get("load_generator") else ""
    lines = [f"wasmtime serve ({meta['wasmtime_cli']['reports']}, {meta['wasmtime_cli']['package']} "
             f"{meta['wasmtime_cli']['version']}) of {run.proxy.name} ({run.proxy.size_bytes} B) on {meta['address']}, "
             f"-O {' '.join(run.settings.optimize) or '(defaults)'}{loads}",
             *([run.settings.advice.line()] if run.settings.advice else []),
             *(run.settings.preset.lines() if run.settings.preset else [])]
    if run.loads:
        lines += closed_loop_lines(run)
    if run.beside is not None:
        lines += run.beside.lines()
    if run.open_loads:
        lines += open_loop_lines(run)
    lines.append(f"The server (PID {meta.get('server_pid')}) is stopped.")
    return "\n".join(lines)


def _memory(memory: dict[str, int]) -> str:
    return f"{memory.get('rss_kib', 0) / 1024:>8.1f} {memory.get('address_space_kib', 0) / 2**20:>9.1f}"


def closed_loop_lines(run: Any) -> list[str]:
    """wrk's or hey's loads: a row per connection count, and how their responses were checked."""
    lines = [f"{'conn':>4} {'requests':>9} {'req/s':>9} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'errors':>6} {'bad':>5} "
             f"{'RSS MiB':>8} {'addr GiB':>9}  checked"]
    for load, memory in zip(run.loads, run.memory, strict=True):
        lines.append(f"{load.connections:>4} {load.requests:>9} {load.requests_per_s:>9.0f} {load.p50_us:>8.0f} "
                     f"{load.p90_us:>8.0f} {load.p99_us:>8.0f} {load.errors:>6} {load.bad:>5} {_memory(memory)}  "
                     f"{'yes' if load.checked else 'NO'}")
    if run.settings.load_generator == "hey":
        lines.append(f"Every response's status counted by hey ({run.proxy.status}; hey reads no body, latencies rounded to "
                     f"0.1 ms) and one response's status and {len(run.proxy.body)}-byte body checked by Python's http.client "
                     f"before the load and after each.")
    else:
        lines.append(f"Every response checked by wrk ({run.proxy.status}, {len(run.proxy.body)}-byte body) and one by "
                     f"Python's http.client before the load.")
    return lines


def open_loop_lines(run: Any) -> list[str]:
    """The open-loop loads: a row per offered rate, latency from each request's intended send time."""
    from wasmlab.measure.open_loop_http import LATE_S

    lines = [f"Open loop ({run.settings.rate_connections} keep-alive connection(s), {run.settings.duration_s:g} s each; "
             f"latency from each request's intended send time, p50 from actual send beside it):",
             f"{'offered':>8} {'achieved':>8} {'requests':>8} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'sent p50':>8} "
             f"{'late':>6} {'errors':>6} {'bad':>5} {'unsent':>6} {'RSS MiB':>8} {'addr GiB':>9}  checked"]
    for load, memory in zip(run.open_loads, run.open_memory, strict=True):
        lines.append(f"{load.offered_rate:>8g} {load.achieved_rate:>8.0f} {load.scheduled:>8} {load.p50_us:>8.0f} "
                     f"{load.p99_us:>8.0f} {load.p999_us:>9.0f} {load.p50_from_send_us:>8.0f} {load.late:>6} "
                     f"{load.errors:>6} {load.bad:>5} {load.unsent:>6} {_memory(memory)}  {'yes' if load.checked else 'NO'}")
    lines.append(f"Every response's status and {len(run.proxy.body)}-byte body checked by the lab's generator; late: sent more "
                 f"than {LATE_S * 1e3:g} ms after it was due (the generator's own delay or the queue behind a slow answer, "
                 f"counted in the latency either way).")
    return lines
