"""``wasmlab serve``: a ``wasi:http`` proxy component under the real ``wasmtime serve``, driven by ``wrk`` over loopback.

One server per run, started on 127.0.0.1 with the run's ``-O`` options and stopped by its PID whatever happens.  Before
the load, one response is fetched with Python's own HTTP client and compared with what the proxy must answer (so a
load generator that counted wrong would still be caught); during each load wrk checks every response itself.  After
each load the server's resident set and address space are read from ``/proc/PID/status``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from wasmlab.errors import ConfigError, ResultMismatch, WasmlabError
from wasmlab.experiments.serve_advice import AdvisedOptions
from wasmlab.experiments.serve_beside import BesideLab
from wasmlab.experiments.serve_preset import PresetOptions
from wasmlab.measure import hey_load, http_server, metadata, open_loop_http, wrk_load
from wasmlab.measure.results import write_metadata, write_parquet
from wasmlab.storage import check_writable
from wasmlab.workloads.proxy import Proxy, proxy
from wasmlab.workloads.tools import installed, tool

# Each load is bounded: at most this many seconds, and at most this many connections on a 2-core lab.
MAX_DURATION_S = 300.0
MAX_CONNECTIONS = 256
TOOL = "wasmtime-cli"
LOAD_GENERATORS = ("wrk", "hey")


@dataclass(frozen=True)
class ServeSettings:
    """What a serve run does: which proxy, the connection counts, each load's duration, the server's ``-O`` options."""

    workload: str = "proxy"
    connections: tuple[int, ...] = (1, 2)
    duration_s: float = 3.0
    optimize: tuple[str, ...] = ()
    port: int = 0
    advice: AdvisedOptions | None = None  # where the -O options came from, with --from-advice
    load_generator: str = "wrk"  # wrk or hey (Debian's), closed loop at each connection count
    rates: tuple[float, ...] = ()  # offered loads (requests/s) for the lab's open-loop generator, one load each
    rate_connections: int = 4  # the open-loop generator's keep-alive connections
    preset: PresetOptions | None = None  # where the -O options came from, with --preset
    beside_lab: bool = False  # the lab's instantiate-only request of the proxy, beside the 1-connection load

    def __post_init__(self) -> None:
        if not (self.connections or self.rates) or any(not 1 <= c <= MAX_CONNECTIONS for c in self.connections):
            raise ConfigError(f"--connections {','.join(map(str, self.connections))!r} is out of range; allowed: integers "
                              f"from 1 to {MAX_CONNECTIONS}")
        if not 1 <= self.duration_s <= MAX_DURATION_S or self.duration_s != int(self.duration_s):
            raise ConfigError(f"--duration {self.duration_s:g}s is out of range; allowed: whole seconds from 1s to {MAX_DURATION_S:g}s")
        for rate in self.rates:
            open_loop_http.check_rate(rate)
        if not 1 <= self.rate_connections <= open_loop_http.MAX_CONNECTIONS:
            raise ConfigError(f"--rate-connections {self.rate_connections} is out of range; allowed: integers from 1 to "
                              f"{open_loop_http.MAX_CONNECTIONS}")
        if self.load_generator not in LOAD_GENERATORS:
            raise ConfigError(f"--load-generator {self.load_generator!r} is not allowed; allowed: {', '.join(LOAD_GENERATORS)}")
        if self.beside_lab:
            from wasmlab.experiments.serve_beside import lab_engine

            if 1 not in self.connections:
                raise ConfigError(f"--beside-lab compares with the 1-connection load, but --connections is "
                                  f"{','.join(map(str, self.connections)) or '(none)'!r}; allowed: connection counts including 1")
            lab_engine(self.optimize)  # refused in one line before anything runs: no pool, or an option it cannot read
        for option in self.optimize:
            if not option or option.startswith("-") or any(c.isspace() for c in option):
                raise ConfigError(f"-O {option!r} is not allowed; allowed: wasmtime's KEY=VALUE options, e.g. "
                                  f"pooling-allocator=y (`wasmtime serve -O help` lists them)")


@dataclass
class ServeRun:
    """The loads of one run, the server's memory after each, and who measured them where."""

    settings: ServeSettings
    proxy: Proxy
    loads: list[wrk_load.Load] = field(default_factory=list)
    memory: list[dict[str, int]] = field(default_factory=list)
    open_loads: list[open_loop_http.OpenLoad] = field(default_factory=list)
    open_memory: list[dict[str, int]] = field(default_factory=list)
    beside: BesideLab | None = None  # with --beside-lab
    # The server's memory after its first request, before any load.
    idle_memory: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return bool(self.loads or self.open_loads) and all(load.checked for load in self.loads) and all(
            load.checked for load in self.open_loads)

    def table(self) -> pd.DataFrame:
        """A row per load: the closed-loop ones (wrk, hey) at a connection count, then the open-loop ones at a rate."""
        base = {"workload": self.proxy.name, "variant": "wasmtime-serve", "call_path": "http"}
        rows = [{**base, "generator": self.settings.load_generator, **load.as_dict(), **memory}
                for load, memory in zip(self.loads, self.memory, strict=True)]
        rows += [{**base, "generator": "open-loop", **load.as_dict(), **memory}
                 for load, memory in zip(self.open_loads, self.open_memory, strict=True)]
        return pd.DataFrame(rows)

    def save(self, folder: Path) -> Path:
        """``summary.parquet`` (a row per connection count) and ``metadata.json`` last, as ``reproduce`` saves."""
        check_writable(folder)
        write_parquet(self.table(), folder / "summary.parquet")
        write_metadata({**self.metadata, "loads": [load.as_dict() for load in self.loads], "memory": self.memory,
                        "open_loop": [load.as_dict() for load in self.open_loads], "open_loop_memory": self.open_memory,
                        "idle_memory": self.idle_memory, "checked": self.checked}, folder)
        return folder


def binary_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "unknown"


def check_one_response(port: int, expected: Proxy) -> None:
    """One ``GET /`` by Python's HTTP client: the status and the exact body the proxy must give."""
    answer = http_server.fetch(port)
    if answer.status != expected.status or answer.body != expected.body:
        raise ResultMismatch(f"wasmtime serve answered {answer.status} {answer.body[:80]!r}; {expected.name} must answer "
                             f"{expected.status} {expected.body!r}")


def run_serve(settings: ServeSettings, folder: Callable[[str], Path | None],
              progress: Callable[[str], None] = lambda line: None) -> ServeRun:
    """Serve ``settings.workload`` and load it at each connection count; ``folder(run_id)`` is where the component and the
    results go (None: a temporary folder, nothing kept).  The server is stopped by PID on every way out."""
    import tempfile

    made = proxy(settings.workload)
    binary = installed(TOOL)
    generator, version = load_generator(settings.load_generator) if settings.connections else (None, None)
    port = http_server.check_port_free(settings.port) if settings.port else http_server.free_port()
    run = ServeRun(settings, made, metadata=metadata.new_run())
    run.metadata.update(_provenance(settings, made, binary, version, port))
    if settings.beside_lab:  # before the server starts: the two never share the cores
        progress("the lab: instantiate-only requests of the proxy (native path, then lean; pooled+cached, the server's pool)")
        run.beside = measure_beside(settings, made)
    with tempfile.TemporaryDirectory(prefix="wasmlab-serve-") as scratch:
        component = Path(scratch) / f"{made.name}.wasm"
        component.write_bytes(made.wasm)
        with _advice_fits(settings, made), http_server.ServerProcess(binary, component, port, settings.optimize) as server:
            run.metadata["server_pid"] = server.pid
            progress(f"serving {made.name} on {http_server.HOST}:{port} (wasmtime serve, PID {server.pid})")
            run.metadata["server_command"] = server.command[:-1] + [f"{made.name}.wasm"]
            check_one_response(port, made)
            run.idle_memory = http_server.memory_of(server.pid)
            for connections in settings.connections:
                progress(f"{settings.load_generator}: {connections} connection(s) for {settings.duration_s:g} s")
                assert generator is not None
                run.loads.append(generator(f"http://{http_server.HOST}:{port}/", connections, settings.duration_s, made))
                if connections == 1 and run.beside is not None and run.beside.serve_p50_us is None:
                    run.beside = replace(run.beside, serve_p50_us=float(run.loads[-1].p50_us),
                                         serve_release=" ".join(run.metadata["wasmtime_cli"]["reports"].split()[:2]),
                                         load_generator=settings.load_generator)
                run.memory.append(http_server.memory_of(server.pid))
                if settings.load_generator == "hey":
                    check_one_response(port, made)  # hey reads no body: the lab's own request checks one after each load
            for rate in settings.rates:
                run.open_loads.append(open_loop_http.run_open_loop(port, rate, settings.duration_s, settings.rate_connections,
                                                                   made.status, made.body, progress=progress))
                run.open_memory.append(http_server.memory_of(server.pid))
    if run.beside is not None:
        run.metadata["beside_lab"] = run.beside.as_dict()
    saved = folder(run.metadata["run_id"])
    if saved is not None:
        run.save(saved)
    return run


def measure_beside(settings: ServeSettings, made: Proxy) -> BesideLab:
    """The lab's instantiate-only requests of ``made`` on the server's pool (``--beside-lab``)."""
    from wasmlab.experiments.serve_beside import lab_engine, measure_lab

    return measure_lab(made.wasm, lab_engine(settings.optimize))


def load_generator(name: str) -> tuple[Callable[[str, int, float, Proxy], wrk_load.Load], str]:
    """The load generator ``name`` as a call (url, connections, seconds, proxy) -> Load, and its version; one line,
    before any server starts, when it is not installed."""
    if name == "hey":
        hey = hey_load.hey_binary()
        return (lambda url, connections, seconds, made: hey_load.run_hey(hey, url, connections, seconds, made.status),
                hey_load.hey_version(hey))
    wrk = wrk_load.wrk_binary()
    return (lambda url, connections, seconds, made: wrk_load.run_wrk(wrk, url, connections, seconds, made.status, made.body),
            wrk_load.wrk_version(wrk))


@contextlib.contextmanager
def _advice_fits(settings: ServeSettings, made: Proxy) -> Iterator[None]:
    """A server refused at start because the advice's pool, sized for the workload the advice was measured on, cannot
    hold the served component (wasmtime's "exceeds the configured maximum") is a mistake of input: one line, exit 2."""
    try:
        yield
    except WasmlabError as exc:
        if settings.advice is None or "exceeds the configured maximum" not in str(exc):
            raise
        words = str(exc).split("Error: ", 1)[-1]
        raise ConfigError(f"--from-advice {settings.advice.source}: its pool, sized for {', '.join(settings.advice.workloads)}, "
                          f"cannot hold {made.name} ({words}); allowed: advice measured on a component of this shape, or an "
                          f"explicit -O raising that limit (explicit -O wins)") from None


def _provenance(settings: ServeSettings, made: Proxy, binary: Path, version: str | None, port: int) -> dict[str, Any]:
    pinned = tool(TOOL)
    return {
        "experiment": "serve", "workload": made.name, "component_bytes": made.size_bytes, "component_provenance": made.provenance,
        "expected_status": made.status, "expected_body": made.body.decode(errors="replace"),
        "connections": list(settings.connections), "duration_s": settings.duration_s, "optimize": list(settings.optimize),
        "optimize_from_advice": settings.advice.as_dict() if settings.advice else None,
        "optimize_from_preset": settings.preset.as_dict() if settings.preset else None,
        "address": f"{http_server.HOST}:{port}",
        "wasmtime_cli": {"package": pinned.package, "version": pinned.version, "binary_sha256": pinned.sha256,
                         "archive_sha256": pinned.archive_sha256, "reports": binary_version(binary)},
        "load_generator": {"name": settings.load_generator, "version": version} if settings.connections else None,
        "open_loop_settings": {"rates": list(settings.rates), "connections": settings.rate_connections, "late_after_s": open_loop_http.LATE_S,
                      "drain_s": open_loop_http.DRAIN_S} if settings.rates else None,
    }
