"""Closed-loop HTTP load from Debian's ``hey``: ``-c`` connections for ``-z`` seconds, every response's status counted.

hey is what wasmtime's maintainers load ``wasmtime serve`` with (``benches/wasmtime-serve-rps.sh``).  The lab reads
hey's summary, not its ``-o csv`` output: the CSV lists only requests that got a response, so a load whose
connections were refused prints a bare header and exits 0 (tried with hey 0.1.4), while the summary's error
distribution counts them.  The summary's status-code distribution covers every response, so every status is checked;
hey reads no body (it discards it, and the proxy's chunked answer has no Content-Length for its size line), so the
body is checked by the lab's own request before the load and after it.  hey rounds latencies to 0.1 ms.

Every load is bounded in time (``-z``, and a timeout of the duration plus a margin, killed if the lab leaves early)
and in requests: each connection is rate-capped (``-q``) at :data:`MAX_RATE_PER_CONNECTION`, far above what one
connection gets from a server on loopback, so at most connections x cap x duration requests are sent.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from wasmlab.errors import WasmlabError
from wasmlab.measure.wrk_load import Load, generator_binary, generator_output

# hey's -q: requests per second per connection at most (one request per 50 µs).
MAX_RATE_PER_CONNECTION = 20_000
TIMEOUT_S = 5

TOTAL = re.compile(r"^\s*Total:\s+([\d.]+) secs", re.M)
SLOWEST = re.compile(r"^\s*Slowest:\s+([\d.]+) secs", re.M)
AVERAGE = re.compile(r"^\s*Average:\s+([\d.]+) secs", re.M)
PERCENTILE = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.M)
STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses", re.M)
ERROR = re.compile(r"^\s*\[(\d+)\]\t(.*)$", re.M)


def hey_binary() -> str:
    return generator_binary("hey", ", or --load-generator wrk")


def hey_version(binary: str) -> str:
    """hey's Debian package version (hey prints none of its own); ``hey (unpackaged)`` for a hey dpkg does not own."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is not None:
        owner = subprocess.run([dpkg, "-S", binary], capture_output=True, text=True, timeout=10)
        if owner.returncode == 0:
            done = subprocess.run([dpkg, "-W", "-f", "${Version}", owner.stdout.split(":")[0]], capture_output=True,
                                  text=True, timeout=10)
            if done.returncode == 0 and done.stdout.strip():
                return f"hey debian/{done.stdout.strip()}"
    return "hey (unpackaged)"


def parse(output: str, connections: int, status: int) -> Load:
    """hey's summary as a :class:`Load`: responses of ``status`` are good, any other status bad, failures errors."""
    total = TOTAL.search(output)
    if total is None:
        last = (output.strip().splitlines() or ["(no output)"])[-1]
        raise WasmlabError(f"hey printed no summary: {last}")
    seconds = float(total.group(1))
    statuses = {int(code): int(count) for code, count in STATUS.findall(output)}
    errors_part = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    errors = sum(int(count) for count, _ in ERROR.findall(errors_part))
    answered = sum(statuses.values())
    good = statuses.get(status, 0)
    percentiles = {int(p): float(s) * 1e6 for p, s in PERCENTILE.findall(output)}
    slowest, average = SLOWEST.search(output), AVERAGE.search(output)
    return Load(connections=connections, duration_s=seconds, requests=answered + errors, good=good, bad=answered - good,
                errors=errors, p50_us=percentiles.get(50, float("nan")), p90_us=percentiles.get(90, float("nan")),
                p99_us=percentiles.get(99, float("nan")), max_us=float(slowest.group(1)) * 1e6 if slowest else float("nan"),
                mean_us=float(average.group(1)) * 1e6 if average else float("nan"),
                requests_per_s=(answered + errors) / seconds if seconds > 0 else 0.0)


def run_hey(binary: str, url: str, connections: int, duration_s: float, status: int) -> Load:
    """hey at ``connections`` for ``duration_s``, each connection capped at :data:`MAX_RATE_PER_CONNECTION` requests/s."""
    command = [binary, "-z", f"{duration_s:g}s", "-c", str(connections), "-q", str(MAX_RATE_PER_CONNECTION),
               "-t", str(TIMEOUT_S), url]
    return parse(generator_output("hey", command, duration_s, connections), connections, status)
