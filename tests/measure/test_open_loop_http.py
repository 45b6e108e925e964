"""The open-loop generator against a loopback server whose delays the test sets: the known truth it must report.

A server that stalls one request for 200 ms while requests keep falling due at 200 per second over one connection: the
~40 requests due during the stall wait behind it.  Latency from intended send time must show them waiting (that is what
an open-loop generator is for); latency from actual send, what a closed-loop generator reports, must not."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from wasmlab.errors import ConfigError
from wasmlab.measure import open_loop_http
from wasmlab.measure.open_loop_http import GOOD, run_open_loop, run_schedule

STALL_S = 0.2


@contextmanager
def loopback_server(stall_at: int | None = None, body: bytes = b"hello", chunked: bool = False,
                    close_every: int = 0) -> Iterator[int]:
    """An HTTP/1.1 keep-alive server on 127.0.0.1 in its own thread: answers ``body``; the ``stall_at``-th request (from
    1) waits STALL_S first; with ``close_every`` it drops the connection instead of answering every such request."""
    ready: list[int] = []
    stop = threading.Event()
    seen = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                seen[0] += 1
                if close_every and seen[0] % close_every == 0:
                    break
                if seen[0] == stall_at:
                    await asyncio.sleep(STALL_S)
                if chunked:
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + b"".join(b"%x\r\n%s\r\n" % (1, body[i:i + 1]) for i in range(len(body))) + b"0\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ready.append(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.01)
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    while not ready:
        threading.Event().wait(0.01)
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(5)


def test_a_stall_shows_in_latency_from_intended_time_for_the_requests_queued_behind_it_not_from_send():
    with loopback_server(stall_at=40) as port:
        schedule = run_schedule(port, 200, 1.0, 1, 200, b"hello")
    assert len(schedule) == 200 and (schedule.outcome == GOOD).all()
    from_intended = schedule.done - schedule.intended
    from_send = schedule.done - schedule.sent
    stalled = 39
    # The stalled request itself: 200 ms either way.
    assert from_send[stalled] >= STALL_S * 0.95 and from_intended[stalled] >= STALL_S * 0.95
    behind = slice(stalled + 1, stalled + 1 + int(STALL_S * 200 * 0.8))  # due in the first 80% of the stall
    # Queued behind it: from intended time they waited for the stall to end (what was left of it when they fell due) ...
    waited = schedule.intended[stalled] + STALL_S - schedule.intended[behind]
    assert (from_intended[behind] >= waited * 0.9).all(), from_intended[behind]
    # ... and from their actual send, a closed-loop view, they look fast: the stall is invisible there.  (Margins wide
    # enough for a busy machine: a loopback answer takes about a millisecond, the waits here are tens to 200.)
    assert np.median(from_send[behind]) < np.median(from_intended[behind]) / 4
    assert np.quantile(np.delete(from_send, stalled), 0.99) < 0.1
    load = open_loop_http.summarize(schedule, 1, 1.0)
    assert load.p99_us >= 150_000 and load.p99_from_send_us < load.p99_us / 3 and load.late >= 30 and load.checked
    assert load.p999_us >= load.p99_us >= load.p50_us and load.max_us >= STALL_S * 0.95e6


def test_without_a_stall_the_load_is_on_time_and_every_answer_checked():
    with loopback_server(chunked=True) as port:
        load = run_open_loop(port, 100, 1.0, 2, 200, b"hello")
    assert load.scheduled == 100 and load.good == 100 and load.checked
    assert load.p99_us < 150_000 and 50 < load.achieved_rate < 150 and load.unsent == 0


def test_a_wrong_body_is_bad_and_dropped_connections_are_errors():
    with loopback_server(body=b"hellO") as port:
        wrong = run_open_loop(port, 100, 0.5, 1, 200, b"hello")
    assert wrong.bad == wrong.scheduled == 50 and not wrong.checked
    with loopback_server(close_every=5) as port:
        dropped = run_open_loop(port, 100, 0.5, 1, 200, b"hello")
    assert dropped.errors == 10 and dropped.good == 40 and not dropped.checked


def test_nobody_listening_is_errors_and_the_load_stays_bounded():
    from wasmlab.measure.http_server import free_port

    load = run_open_loop(free_port(), 50, 0.4, 2, 200, b"hello")
    assert load.errors == load.scheduled == 20 and load.good == 0 and not load.checked


@pytest.mark.parametrize("rate", [0, -5, float("nan"), float("inf"), 1e9])
def test_a_rate_the_generator_cannot_offer_is_refused(rate):
    with pytest.raises(ConfigError, match=r"--rate .* is out of range; allowed: requests per second above 0"):
        run_schedule(1, rate, 1.0, 1, 200, b"")
