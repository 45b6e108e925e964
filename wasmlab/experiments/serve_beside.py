"""``wasmlab serve --beside-lab``: the lab's own per-request cost for the served proxy, beside serve's at one connection.

The lab cannot call ``wasi:http/incoming-handler#handle`` (wasmtime's C API cannot make its request and response
resources), so what it measures is a request without the handler's call: a new store with the WASI and wasi-http
contexts, the proxy instantiated with wasmtime's own WASI preview 2 and wasi:http imports, the handler looked up, the
store dropped, on an engine with the server's pool (its ``-O`` options read back into the lab's settings) and the
component compiled once, as serve compiles it.  The lab's figure is the native path's (the request loop in C,
:mod:`wasmlab.host.native_proxy`): serve's own loop is Rust, so C against it leaves no interpreter in the comparison.
Beside wrk's p50 at one connection, the difference is what the HTTP stack, the handler's call and its wasi:http
calls, loopback TCP and the load generator add, give or take the two releases: the lab runs wasmtime-py's library, the
server the pinned CLI's.  The same request from Python (the lean path, :mod:`wasmlab.host.proxy_instances`) is measured
after it and shown in one line: it costs a fraction of a second, and lean minus native is what the Python binding
added to the figure ``--beside-lab`` reported before the native one existed.

The lab's figure is measured before the server starts, so the two never share the machine's two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from wasmlab.config import EngineConfig, PoolConfig
from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.snippets import ENGINE_SERVE_OPTIONS, SERVE_OPTIONS
from wasmlab.experiments.serve_advice import key_of
from wasmlab.experiments.serve_preset import ALLOCATOR, OFF
from wasmlab.host.native_proxy import NativeProxyInstances
from wasmlab.host.proxy_instances import ProxyInstances
from wasmlab.measure.instantiate_only import InstantiateOnly, time_blocks, time_requests

# wasmtime's own pool totals (PoolingAllocationConfig's defaults), for a total the server's -O options leave unset.
WASMTIME_DEFAULT_TOTAL = 1000
REPETITIONS = 5
REQUESTS = 2000
WARMUP = 200
POOL_KNOBS = {option: knob for knob, option in SERVE_OPTIONS.items()}
ENGINE_KNOBS = {option: knob for knob, option in ENGINE_SERVE_OPTIONS.items()}
ON = ("y", "yes", "true")


@dataclass(frozen=True)
class LabEngine:
    """The server's ``-O`` options read back into the lab's engine settings, and which of them the lab cannot take."""

    config: EngineConfig
    applied: tuple[str, ...]
    left_out: tuple[str, ...]


def _number(option: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--beside-lab: -O {option} is not a whole number the lab can read back; allowed: a byte count or "
                          f"a count like pooling-total-memories=16") from None


def lab_engine(optimize: tuple[str, ...]) -> LabEngine:
    """The lab's engine for the server's ``optimize`` options (the last of a key winning, as wasmtime's parser does):
    pooling must be on (the comparison is of pooled requests), each pool total it leaves unset is wasmtime's default."""
    last = {key_of(option): option.partition("=")[2] for option in optimize}
    if last.get(ALLOCATOR, "").lower() not in ON:
        raise ConfigError("--beside-lab compares pooled requests, but the server's options do not turn the pool on; allowed: "
                          "--pooling, --preset NAME, --from-advice FILE or -O pooling-allocator=y")
    pool: dict[str, int] = {}
    engine: dict[str, Any] = {}
    applied, left_out = [f"{ALLOCATOR}=y"], []
    for key, value in last.items():
        option = f"{key}={value}"
        if key in POOL_KNOBS:
            pool[POOL_KNOBS[key]] = _number(option, value)
        elif key in ENGINE_KNOBS:
            name = ENGINE_KNOBS[key]
            engine[name] = value.lower() not in OFF if name == "memory_init_cow" else _number(option, value)
        elif key != ALLOCATOR:
            left_out.append(option)
            continue
        else:
            continue
        applied.append(option)
    config = EngineConfig(allocator="pooling", pool=PoolConfig(slots=WASMTIME_DEFAULT_TOTAL, **pool), **engine)
    return LabEngine(config, tuple(applied), tuple(left_out))


@dataclass(frozen=True)
class BesideLab:
    """The lab's instantiate-only request for the served proxy (native path; the lean path's beside it), and serve's p50
    at one connection beside them."""

    lab: InstantiateOnly
    engine: LabEngine
    lean: InstantiateOnly | None = None
    serve_p50_us: float | None = None  # filled after the 1-connection load
    serve_release: str = ""  # what the server's binary reports: "wasmtime 49.0.3"
    load_generator: str = "wrk"

    @property
    def lab_release(self) -> str:
        return f"wasmtime {version('wasmtime')} (wasmtime-py's library)"

    @property
    def releases_differ(self) -> bool:
        return self.serve_release != f"wasmtime {version('wasmtime')}"

    @property
    def difference_us(self) -> float | None:
        return None if self.serve_p50_us is None else self.serve_p50_us - self.lab.p50_us.point

    def as_dict(self) -> dict[str, Any]:
        return {"lab": {**self.lab.as_dict(), "release": self.lab_release, "call_path": "native",
                        "request": "new store + WASI and wasi-http contexts + instantiate (add_wasip2 + add_wasi_http "
                                   "linker) + handler looked up + store dropped; no handler call",
                        "engine": self.engine.config.to_dict(),
                        "pool_totals": self.engine.config.pool.totals(), "options_applied": list(self.engine.applied),
                        "options_left_out": list(self.engine.left_out),
                        "lean": None if self.lean is None else {**self.lean.as_dict(), "call_path": "lean"}},
                "serve_p50_us_at_1_connection": self.serve_p50_us, "serve_release": self.serve_release,
                "difference_us": self.difference_us, "load_generator": self.load_generator, "releases_differ": self.releases_differ,
                "difference_is": "what the HTTP stack, the handler's call and its wasi:http calls, loopback TCP and the "
                                 "load generator add (and the releases' difference)"}

    def lines(self) -> list[str]:
        lab = self.lab
        p50, mean = lab.p50_us, lab.mean_us
        lines = [f"Beside the 1-connection load, the lab ({self.lab_release}, native path, pooled+cached, the server's pool): "
                 f"a request without the handler's call (new store with WASI and wasi-http contexts, instantiate, handler "
                 f"looked up, store dropped) p50 {p50.point:.1f} µs [{p50.low:.1f}, {p50.high:.1f}], mean {mean.point:.1f} µs "
                 f"[{mean.low:.1f}, {mean.high:.1f}] (95% intervals over {p50.repetitions} repetitions of {lab.requests} "
                 f"requests, {lab.instances} instances made)"]
        if self.lean is not None:
            lean = self.lean.p50_us
            # The binding's share is said only where the two intervals are apart; otherwise it is within the noise.
            share = (f"{lean.point - p50.point:.1f} µs of it the binding's" if lean.low > p50.high else
                     "the binding's share within the noise (the intervals overlap)" if lean.high >= p50.low else
                     "below the native figure, beyond its interval: the two runs saw the machine in different states")
            lines.append(f"The same request from Python (lean path, one ctypes call a step): p50 {lean.point:.1f} µs "
                         f"[{lean.low:.1f}, {lean.high:.1f}], {share}")
        if self.serve_p50_us is not None and self.difference_us is not None:
            lines.append(f"wasmtime serve ({self.serve_release}) p50 at 1 connection {self.serve_p50_us:.0f} µs: "
                         f"{self.difference_us:.0f} µs more, what the HTTP stack, the handler's call and its wasi:http calls, "
                         f"loopback TCP and {self.load_generator} add per request")
        lines.append(f"The releases differ (lab wasmtime {version('wasmtime')}, serve {self.serve_release}): the difference "
                     f"includes theirs" if self.releases_differ else f"Both sides run {self.serve_release}.")
        if self.engine.left_out:
            lines.append(f"Server options the lab's engine does not take: {' '.join(self.engine.left_out)}")
        return lines


def measure_lab(wasm: bytes, engine: LabEngine, repetitions: int = REPETITIONS, requests: int = REQUESTS,
                warmup: int = WARMUP) -> BesideLab:
    """The lab's instantiate-only requests of the proxy ``wasm`` on ``engine``: the native path's, then the lean path's
    (each on an engine of its own with the server's pool)."""
    native = NativeProxyInstances(engine.config, wasm)
    try:
        figures = time_blocks(native.block, lambda: native.made, repetitions, requests, warmup)
    finally:
        native.close()
    lean = ProxyInstances(engine.config, wasm)
    lean_figures = time_requests(lean.bind(), lambda: lean.made, repetitions, requests, warmup)
    return BesideLab(figures, engine, lean_figures)
