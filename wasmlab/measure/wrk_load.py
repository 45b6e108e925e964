"""Closed-loop HTTP load from Debian's ``wrk``: a fixed number of connections for a bounded time, every response checked.

wrk's own Lua hooks check each response (status and the exact body) inside wrk, per thread, and its ``done`` hook
prints one line with the totals and the latency percentiles from wrk's histogram (microseconds), which the lab parses;
nothing is read from wrk's human-readable table.  wrk runs under a timeout of the duration plus a margin, and is
killed if the lab leaves early (an interrupt), so no load outlives the run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.measure.spawn import kill, spawned

# The line wrk's done hook prints; every field an integer.
RESULT = re.compile(r"^WASMLAB (?P<fields>(?:\w+=-?\d+ ?)+)$", re.M)
MARGIN_S = 15.0

SCRIPT = """-- Written by wasmlab: checks every response's status and body, and prints the totals in one line.
local expected_status = %(status)d
local expected_body = "%(body)s"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0 end
function response(status, headers, body)
  if status == expected_status and body == expected_body then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    "WASMLAB requests=%%d good=%%d bad=%%d duration_us=%%d connect=%%d read=%%d write=%%d status=%%d timeout=%%d " ..
    "p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d mean_us=%%d\\n",
    summary.requests, g, b, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(data: bytes) -> str:
    """``data`` as the inside of a Lua string literal: every byte a decimal escape, so any body is exact."""
    return "".join(f"\\{byte:03d}" for byte in data)


def generator_binary(name: str, otherwise: str = "") -> str:
    """Load generator ``name`` (Debian's wrk or hey) on PATH; one line saying how to install it (``otherwise``: what
    else is allowed) when there is none."""
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"the load generator {name} is not installed; allowed: install Debian's {name} "
                          f"(`make server-deps`, or apt-get install {name}){otherwise}")
    return found


def wrk_binary() -> str:
    return generator_binary("wrk")


def wrk_version(binary: str) -> str:
    """wrk's first line of ``-v`` (it exits 1 after printing it)."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    return ((done.stdout or done.stderr).strip().splitlines() or ["unknown"])[0].split(" Copyright")[0]


@dataclass(frozen=True)
class Load:
    """What one wrk run at ``connections`` did: requests, checked responses, errors and latency percentiles (µs)."""

    connections: int
    duration_s: float
    requests: int
    good: int
    bad: int
    errors: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    mean_us: float
    requests_per_s: float

    @property
    def checked(self) -> bool:
        """Every response was the expected one, and none failed."""
        return self.bad == 0 and self.errors == 0 and self.good == self.requests and self.requests > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checked": self.checked}


def parse(output: str, connections: int) -> Load:
    """The ``WASMLAB`` line of wrk's output as a :class:`Load`; one line when wrk printed none."""
    found = RESULT.search(output)
    if found is None:
        last = (output.strip().splitlines() or ["(no output)"])[-1]
        raise WasmlabError(f"wrk printed no result line: {last}")
    fields = {key: int(value) for key, value in (item.split("=") for item in found.group("fields").split())}
    seconds = fields["duration_us"] / 1e6
    errors = sum(fields[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Load(connections=connections, duration_s=seconds, requests=fields["requests"], good=fields["good"], bad=fields["bad"],
                errors=errors, p50_us=fields["p50_us"], p90_us=fields["p90_us"], p99_us=fields["p99_us"],
                max_us=fields["max_us"], mean_us=fields["mean_us"],
                requests_per_s=fields["requests"] / seconds if seconds > 0 else 0.0)


def run_wrk(binary: str, url: str, connections: int, duration_s: float, status: int, body: bytes) -> Load:
    """wrk at ``connections`` (one thread per connection, at most 2: this is a 2-core lab) for ``duration_s``."""
    threads = max(1, min(connections, 2))
    with tempfile.TemporaryDirectory(prefix="wasmlab-wrk-") as folder:
        script = Path(folder) / "check.lua"
        script.write_text(SCRIPT % {"status": status, "body": lua_string(body)})
        command = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--timeout", "5s",
                   "-s", str(script), url]
        output = generator_output("wrk", command, duration_s, connections)
    return parse(output, connections)


def generator_output(name: str, command: list[str], duration_s: float, connections: int) -> str:
    """What load generator ``name`` printed running ``command`` (killed by PID if it overruns its load by MARGIN_S);
    one line when it overran or failed."""
    with spawned(command, kill, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        try:
            output: str = process.communicate(timeout=duration_s + MARGIN_S)[0]
        except subprocess.TimeoutExpired:
            raise WasmlabError(f"{name} did not finish within {duration_s + MARGIN_S:g} s at {connections} connections") from None
    if process.returncode != 0:
        raise WasmlabError(f"{name} exited with status {process.returncode}: {(output.strip().splitlines() or [''])[-1]}")
    return output
