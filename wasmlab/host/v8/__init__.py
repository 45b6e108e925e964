"""The V8 runtime: requests served by the machine's Node.js through the WebAssembly JS API, timed inside node.

One node process (``driver.mjs``, a long-lived child) serves every ``@v8`` variant of a run: it is fed blocks of
request indices as JSON lines and answers each block with its requests' ns (``process.hrtime.bigint()``), after
checking every request's result against the workload's expectation (a wrong one stops the block, as the lab's own
paths stop).  ``baseline@v8`` compiles each request's bytes with ``new WebAssembly.Module``, the bytes made unique per
request by a custom section, because V8 caches the code of identical bytes within a process (a plain recompile would
be a cache hit); ``cached@v8`` compiles once; ``+reuseN`` lets one instance serve N requests.  Served: core modules
whose entry takes and returns i32/i64 (BigInt for i64) with no imports, and WASI preview 1 commands through
``node:wasi`` (argv, environment, stdin, read-only preopens; a fresh ``WASI`` object and instance per request, its exit
status checked, stdout and stderr captured to files: the first request's checked here as every path checks them,
each later one's compared byte for byte with the first's in node, as the native path does in C), and guests a
recipe's steps drive, core or WASI (calls, writes, reads: :mod:`.steps`, interpreted in ``steps.mjs`` inside each
request's time, the first outcome checked here by the lab's own checker), their imports the recipe's stubs.  Other
host imports, components (a recipe's ``invoke`` steps are calls in WAVE through the component model, which V8's JS
API has not), writable directories and reuse of a WASI guest (``node:wasi`` starts an instance once) are refused in
one line.  The child is stopped by its PID when the last variant closes, and stops by itself when the lab dies (its
stdin ends).  It runs in a session of its own, so a Ctrl-C at the terminal reaches the lab alone, which keeps its
finished repetitions and then stops the child, rather than the child dying under a block first.
"""

from __future__ import annotations

import atexit
import base64
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from wasmlab.config import CacheConfig, EngineConfig, Limits
from wasmlab.errors import ConfigError, NativeFailure, RecipeError, ResultMismatch, WasmlabError
from wasmlab.host.cache import ModuleCache
from wasmlab.host.callpaths.reuse import ReuseLedger
from wasmlab.host.engine import EnginePool
from wasmlab.host.hosted import HostedParts, HostedRuntime, expected_of, refuse_limits, unserved_kind
from wasmlab.host.output_check import OutputCheck
from wasmlab.host.v8 import steps as recipe_steps
from wasmlab.host.variant import Variant
from wasmlab.workloads.model import Workload

NAME = "v8"
# What a ``@v8`` result's call_path column says: requests go through the WebAssembly JS API inside node.
CALL_PATH = "js-api"
ALLOWED = ("core modules without imports (but a recipe's stubs) whose entry takes and returns i32/i64 or that recipe steps drive "
           "(calls, writes, reads), and WASI commands or recipe steps with read-only directories")
UNIQUE_BYTES = ("baseline@v8 compiles bytes made unique per request (a custom section with a counter): V8 caches the "
                "code of identical bytes within a process")


def refusal(workload: Workload, reuse: int = 1) -> str | None:
    """Why the V8 runtime cannot serve ``workload`` (with instances reused ``reuse`` times: one line naming what is
    allowed), or ``None``: a core guest as every other runtime of the axis (:func:`~wasmlab.host.hosted.unserved_kind`),
    and a WASI command when node:wasi can run it."""
    if workload.wasi and reuse > 1:
        return (f"workload {workload.name!r} is a WASI command, which node:wasi starts once per instance; allowed on v8: "
                f"baseline or cached without +reuseN")
    kind = (_wasi_unserved_kind(workload) if workload.wasi else
            recipe_steps.unserved_kind(workload) if workload.recipe is not None and not workload.component else unserved_kind(workload))
    return None if kind is None else f"workload {workload.name!r} is {kind}; the v8 runtime serves {ALLOWED}"


def _wasi_unserved_kind(workload: Workload) -> str | None:
    """What a WASI command is when node:wasi here cannot serve it, or ``None``."""
    recipe = workload.recipe
    return ("library-style" if workload.driver else
            "a module importing host functions" if workload.host_imports else
            "a WASI guest with a writable directory (node:wasi here serves read-only ones)"
            if recipe is not None and any(d.writable for d in recipe.dirs) else
            "a WASI guest whose written files are checked" if workload.expectation.files else
            f"a guest expected to end in {workload.expected_outcome!r} (what needs wasmtime's limits)"
            if workload.expected_outcome not in ("ok", "trap") else None)


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise ConfigError("node is not on PATH; the v8 runtime runs the machine's Node.js (allowed: --runtime wasmtime, or put node on PATH)")
    return found


def _described(workload: Workload) -> dict[str, Any]:
    i64 = workload.results[:1] == ("i64",)
    expected = expected_of(workload)
    described: dict[str, Any] = {
        "name": workload.name, "wasm": base64.b64encode(workload.wasm).decode(), "entry": workload.entry,
        "params": list(workload.params), "results": list(workload.results),
        "args": [str(a) if kind == "i64" else int(a) for a, kind in zip(workload.args, workload.params, strict=False)],
        "expected": str(expected) if i64 and expected is not None else expected, "check": workload.check, "wasi": workload.wasi}
    if workload.wasi:  # what node:wasi is given per request; the exit status the request must end with (None: any)
        recipe = workload.recipe
        described.update(argv=list(workload.argv or (workload.name,)), env=dict(recipe.env) if recipe is not None else {},
                         stdin=base64.b64encode(workload.stdin).decode() if workload.stdin is not None else None,
                         # a recipe's steps check the exit status themselves (an exit ends the steps, not _start)
                         preopens={guest: host for host, guest in workload.preopens}, exit=None if workload.steps else workload.expectation.exit)
    described["recipe"] = recipe_steps.described(workload) if workload.steps else None
    described["stubs"] = recipe_steps.stubs(workload)
    return described


class NodeProcess:
    """The long-lived node child of one run: loaded with the workloads once, then fed blocks; its versions read."""

    def __init__(self, workloads: Sequence[Workload]) -> None:
        driver = resources.files(__package__).joinpath("driver.mjs")
        # --no-warnings: node:wasi's ExperimentalWarning would otherwise be the first line of every run's stderr.
        self.process = subprocess.Popen([_node(), "--no-warnings", str(driver)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, bufsize=1, start_new_session=True)
        self.pid = self.process.pid
        self.users = 0
        atexit.register(self.close)
        try:
            reply = self.ask({"op": "load", "workloads": [_described(w) for w in workloads]})
        except BaseException:
            self.close()
            raise
        self.v8_version, self.node_version = reply["v8"], reply["node"]

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """One request line out, one reply line back; a dead or failing driver is a WasmlabError with its words."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
            line = stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.close()
            raise WasmlabError(f"the v8 driver (node, PID {self.pid}) exited: {self.stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise WasmlabError(f"the v8 driver failed: {reply['error']}")
        return reply

    def stderr_tail(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "no message"
        lines = self.process.stderr.read().strip().splitlines()
        return lines[-1] if lines else f"exit status {self.process.returncode}"

    def close(self) -> None:
        """Stop the child by its PID: its stdin closed (it ends its loop), killed if it lingers, always waited for."""
        if self.process.poll() is not None:
            return
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        atexit.unregister(self.close)


V8Parts = HostedParts


class V8Runtime(HostedRuntime):
    """One ``@v8`` variant: serves blocks of requests through the run's node child (shared by the run's v8 variants)."""

    runtime_name = NAME
    call_path = CALL_PATH

    def __init__(self, variant: Variant, node: NodeProcess, workloads: Sequence[Workload], cache: CacheConfig, engine: Any) -> None:
        for workload in workloads:
            reason = refusal(workload, variant.reuse)
            if reason:
                raise ConfigError(reason)
        self.variant, self.node, self.workloads = variant, node, list(workloads)
        self.engine = engine  # a wasmtime engine for the harness's timer calibration only: no request touches it
        self.memory_limit = None
        # The driver keeps every workload's compiled module (no eviction): the lab's cache policy is not applied on v8.
        self.cache: ModuleCache[object] = ModuleCache(CacheConfig(policy="lru", size=len(self.workloads)) if variant.cached
                                                      else CacheConfig(policy="none"))
        self.parts = V8Parts(ReuseLedger(variant.reuse) if variant.reuse > 1 else None)
        node.users += 1
        self.closed = False

    @property
    def runtime_version(self) -> str:
        return str(self.node.v8_version)

    @property
    def node_version(self) -> str:
        return str(self.node.node_version)

    wasmtime_version = ""  # V8 embeds no wasmtime

    def handle(self, index: int) -> None:
        """One request, as a block of one (warm-up): a trap raises as the lab's paths raise it."""
        failures: list[tuple[int, BaseException]] = []
        self.block([index], [0], failures)
        if failures:
            raise failures[0][1]

    def block(self, indices: Sequence[int], out: list[int], failures: list[tuple[int, BaseException]] | None = None) -> int:
        """Serve ``indices`` in node; each request's ns into ``out``, traps into ``failures``; the block's wall ns.
        A wrong result raises ResultMismatch, as on the lab's own paths."""
        reply = self.node.ask({"op": "block", "variant": self.variant.name, "cached": self.variant.cached, "reuse": self.variant.reuse,
                               "indices": list(indices)})
        if "recipe_error" in reply:  # a step that cannot run as written (past the memory's end, a call without a value)
            raise RecipeError(f"{reply['recipe_error']} (request {reply['at'] + 1} of a block of {len(indices)}, {self.variant.name})")
        if not reply["ok"]:
            raise ResultMismatch(f"{reply['mismatch']} (request {reply['at'] + 1} of a block of {len(indices)}, {self.variant.name})")
        out[:len(indices)] = reply["ns"]
        for index, outputs in reply.get("first_outputs", {}).items():  # the first request's outputs, checked once
            workload = self.workloads[int(index)]
            decoded = {stream: base64.b64decode(data) for stream, data in outputs.items()}
            OutputCheck(workload.name, workload.expectation).streams(decoded.__getitem__)
        for index, outcome in reply.get("first_outcomes", {}).items():  # a recipe's first outcome, checked once per variant
            recipe_steps.check_first(self.workloads[int(index)], outcome)
        if any(w.wasi for w in self.workloads):  # every request's outputs: the first here, the rest against it in node
            self.parts.output_checks += len(indices)
            self.parts.output_check_ns += int(reply.get("check_ns", 0))
        stats = self.cache.stats
        fresh = [bool(f) for f in reply["fresh"]]
        if self.variant.cached:
            stats.misses += reply["compiles"]
            stats.hits += sum(fresh) - reply["compiles"]
        if self.parts.ledger is not None:
            self.parts.ledger.extend(fresh, [False] * len(fresh))
        for k, message in reply["failures"]:
            failure = NativeFailure("trap", f"{self.variant.name}: {message}")
            if failures is None:
                raise failure
            failures.append((k, failure))
        return int(reply["wall_ns"])

    def close(self) -> None:
        """This variant is done; the last one of the run stops the node child."""
        if not self.closed:
            self.closed = True
            self.node.users -= 1
            if self.node.users <= 0:
                self.node.close()


def build(v: Variant, workloads: Sequence[Workload], cache: CacheConfig, limits: Limits, engines: EnginePool, engine: EngineConfig,
          built: Mapping[str, Any]) -> V8Runtime:
    """The runtime of ``@v8`` variant ``v``, its node child shared with the run's v8 runtimes already ``built``; a
    refused workload or limit is one line before any child starts, and a child no runtime holds yet is stopped on failure."""
    for reason in filter(None, (refusal(w, v.reuse) for w in workloads)):
        raise ConfigError(reason)
    refuse_limits(v.name, NAME, limits)
    shared = next((r.node for r in built.values() if isinstance(r, V8Runtime)), None)
    node = shared or NodeProcess(workloads)
    try:
        return V8Runtime(v, node, workloads, cache, engines.get(engine.replace(allocator="on-demand")))
    except BaseException:
        if shared is None:  # a child no runtime holds yet
            node.close()
        raise


def notes(variants: Sequence[Variant]) -> list[str]:
    """What a run's output says of how its v8 variants compile."""
    return [UNIQUE_BYTES] if any(v.runtime == NAME and v.composition.startswith("baseline") for v in variants) else []
