"""The lab's own open-loop HTTP load: requests on a schedule fixed in advance, latency from each one's intended send time.

A closed-loop generator (wrk, hey) sends a connection's next request only when the last one is answered, so a server
that stalls also stalls the load: the requests that would have arrived meanwhile are never sent, and the latency
figures leave the stall out (coordinated omission).  Here request ``k`` of a load at ``R`` requests per second is due at
``start + k/R`` whatever happened before; it is sent on the first of a fixed number of HTTP/1.1 keep-alive connections
that is free, and its latency runs from the time it was due to its response's last byte.  A request queued behind a
stalled one therefore carries the stall in its latency.  Latency from the actual send is kept beside it, to show the
difference, and each request sent more than :data:`LATE_S` after it was due counts late: a lateness the generator's
own (a Python event loop on a busy machine) or the queue behind a slow server, either way in the latency from
intended time.

The event loop runs on ``select()`` rather than epoll: epoll's timeout is whole milliseconds, so every request would be
sent up to a millisecond after it was due (measured: median lateness 576 µs with epoll, 142 µs with select on the lab
machine under load).  Traffic goes to 127.0.0.1 only.  Every load is bounded: ``rate x duration`` requests, and
:data:`DRAIN_S` after the last one is due, whatever is still unanswered counts as an error and whatever was never sent
as unsent.  Every response's status and exact body are checked.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wasmlab.errors import ConfigError

HOST = "127.0.0.1"
MAX_RATE = 50_000.0  # requests per second offered, at most
MAX_CONNECTIONS = 256  # select() takes file descriptors below 1024
MAX_DURATION_S = 300.0
LATE_S = 0.001  # sent more than this after it was due: late
DRAIN_S = 5.0  # how long after the last request was due the unanswered ones may still finish
RESPONSE_TIMEOUT_S = 5.0
CLOSE_S = 1.0  # how long an interrupted load's tasks get to finish their cancellation
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1 << 20

# What became of a request: not sent, answered with the expected status and body, answered otherwise, failed.
UNSENT, GOOD, BAD, ERROR = 0, 1, 2, 3


def check_rate(rate: float) -> float:
    """``rate`` when it is an offered load the generator can schedule; one line otherwise."""
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE:
        raise ConfigError(f"--rate {rate:g} is out of range; allowed: requests per second above 0 and at most {MAX_RATE:g}")
    return rate


@dataclass(frozen=True)
class OpenLoad:
    """One load at an offered rate: what was due, sent, answered and how, and latency from intended and from actual send."""

    offered_rate: float
    connections: int
    duration_s: float
    scheduled: int
    sent: int
    good: int
    bad: int
    errors: int
    unsent: int
    late: int  # sent more than LATE_S after it was due
    lateness_max_us: float
    achieved_rate: float  # answers per second over the time from the first due to the last answer
    p50_us: float  # from intended send time
    p99_us: float
    p999_us: float
    max_us: float
    p50_from_send_us: float  # from actual send: what a closed-loop generator would report
    p99_from_send_us: float
    max_from_send_us: float

    @property
    def checked(self) -> bool:
        """Every scheduled request was sent and answered with the expected status and body."""
        return self.scheduled > 0 and self.good == self.scheduled and self.bad == self.errors == self.unsent == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checked": self.checked}


class Schedule:
    """Per request: when it was due, sent and answered (loop time, seconds) and its outcome."""

    def __init__(self, rate: float, duration_s: float, start: float) -> None:
        count = max(1, int(rate * duration_s))
        self.rate = rate
        self.intended = start + np.arange(count) / rate
        self.sent = np.full(count, np.nan)
        self.done = np.full(count, np.nan)
        self.outcome = np.full(count, UNSENT, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.intended)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: its status, its body (Content-Length or chunked) and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("response header too large")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, status = status_line.split(" ", 2)[:2]
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the empty line
                    pass
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise ValueError("response body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    elif "content-length" in headers:
        body = bytearray(await reader.readexactly(min(int(headers["content-length"]), MAX_BODY_BYTES)))
    else:
        body = bytearray(await reader.read(MAX_BODY_BYTES))  # delimited by the connection's end
        return int(status), bytes(body), False
    keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    return int(status), bytes(body), keep


async def _connection(port: int, request: bytes, queue: asyncio.Queue[int | None], schedule: Schedule, status: int,
                      body: bytes) -> None:
    """One keep-alive connection: takes the next due request off the queue, sends it, reads and checks its answer;
    reconnects after a failure or a server's close."""
    loop = asyncio.get_running_loop()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while (k := await queue.get()) is not None:
            schedule.sent[k] = loop.time()
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that comes as the
                # answer does, and the connection then waited on the queue forever (the signal test hung on it).
                async with asyncio.timeout(RESPONSE_TIMEOUT_S):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    assert reader is not None and writer is not None
                    writer.write(request)
                    got_status, got_body, keep = await read_response(reader)
                schedule.done[k] = loop.time()
                schedule.outcome[k] = GOOD if (got_status, got_body) == (status, body) else BAD
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                schedule.outcome[k], keep = ERROR, False
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def _dispatch(schedule: Schedule, queue: asyncio.Queue[int | None], connections: int) -> None:
    """Put each request on the queue when it is due (every request already due at a wake-up at once)."""
    loop = asyncio.get_running_loop()
    for k, due in enumerate(schedule.intended):
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(k)
    for _ in range(connections):
        queue.put_nowait(None)


async def _load(port: int, rate: float, duration_s: float, connections: int, status: int, body: bytes,
                path: str) -> Schedule:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: wasmlab-open-loop\r\n\r\n".encode()
    schedule = Schedule(rate, duration_s, loop.time() + 0.05)
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    tasks = [asyncio.ensure_future(_connection(port, request, queue, schedule, status, body)) for _ in range(connections)]
    tasks.append(asyncio.ensure_future(_dispatch(schedule, queue, connections)))
    bound = float(schedule.intended[-1]) + DRAIN_S - loop.time()
    try:
        _, pending = await asyncio.wait(tasks, timeout=bound)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=CLOSE_S)
    # Sent but never answered within the bound: errors (a request still in flight when the load ended).
    unanswered = (schedule.outcome == UNSENT) & ~np.isnan(schedule.sent)
    schedule.outcome[unanswered] = ERROR
    return schedule


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) * 1e6 if len(values) else float("nan")


def summarize(schedule: Schedule, connections: int, duration_s: float) -> OpenLoad:
    """The load's figures: latencies over every answered request (good or bad), from intended and from actual send."""
    answered = ~np.isnan(schedule.done)
    from_intended = (schedule.done - schedule.intended)[answered]
    from_send = (schedule.done - schedule.sent)[answered]
    sent = ~np.isnan(schedule.sent)
    lateness = (schedule.sent - schedule.intended)[sent]
    span = float(np.nanmax(schedule.done) - schedule.intended[0]) if answered.any() else 0.0
    count = {name: int(np.sum(schedule.outcome == code)) for name, code in (("good", GOOD), ("bad", BAD), ("errors", ERROR),
                                                                            ("unsent", UNSENT))}
    return OpenLoad(offered_rate=schedule.rate, connections=connections, duration_s=duration_s, scheduled=len(schedule),
                    sent=int(sent.sum()), **count, late=int(np.sum(lateness > LATE_S)),
                    lateness_max_us=float(lateness.max()) * 1e6 if len(lateness) else float("nan"),
                    achieved_rate=int(answered.sum()) / span if span > 0 else 0.0,
                    p50_us=_quantile(from_intended, 0.5), p99_us=_quantile(from_intended, 0.99),
                    p999_us=_quantile(from_intended, 0.999), max_us=_quantile(from_intended, 1.0),
                    p50_from_send_us=_quantile(from_send, 0.5), p99_from_send_us=_quantile(from_send, 0.99),
                    max_from_send_us=_quantile(from_send, 1.0))


def run_schedule(port: int, rate: float, duration_s: float, connections: int, status: int, body: bytes,
                 path: str = "/", started: Callable[[], None] = lambda: None) -> Schedule:
    """The load as its per-request record (see :func:`run_open_loop`); ``started`` is called once the loop exists."""
    check_rate(rate)
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ConfigError(f"--rate-connections {connections} is out of range; allowed: 1 to {MAX_CONNECTIONS}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ConfigError(f"--duration {duration_s:g}s is out of range; allowed: above 0 and at most {MAX_DURATION_S:g}s")
    # The progress line comes once the loop exists: an interrupt landing inside the loop's constructor left a half-built
    # loop whose finaliser printed a traceback (the signal test, which interrupts on that line, caught it).
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        work = loop.create_task(_load(port, rate, duration_s, connections, status, body, path))
        caught: list[int] = []
        handlers = _interrupts_cancel(loop, work, caught)
        try:
            started()
            return loop.run_until_complete(work)
        except asyncio.CancelledError:
            if not caught:
                raise
        finally:
            loop.run_until_complete(asyncio.sleep(0.01))  # a signal that came as the load ended: its callback run
            for number, handler in handlers.items():
                loop.remove_signal_handler(number)
                signal.signal(number, handler)
        # The interrupt, raised as the lab's own handler raises it (KeyboardInterrupt), now that the load has ended.
        handler = handlers.get(caught[0])
        if callable(handler):
            handler(caught[0], None)
        raise KeyboardInterrupt(signal.Signals(caught[0]).name)
    finally:
        _close(loop)


def _interrupts_cancel(loop: asyncio.AbstractEventLoop, work: asyncio.Task[Any], caught: list[int]) -> dict[int, Any]:
    """SIGINT and SIGTERM, while the load runs, cancel it (and are noted in ``caught``) instead of raising inside the
    event loop: an interrupt raised between a task's wake-up and its step left that task waiting forever, and the
    signal test saw the cleanup hang for the whole load.  Returns the handlers to put back (none outside the main
    thread, where the loop cannot take signals and an interrupt is not delivered anyway)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    handlers: dict[int, Any] = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def cancel(number: int) -> None:
        caught.append(number)
        work.cancel()
    for number in handlers:
        loop.add_signal_handler(number, cancel, number)
    return handlers


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Every task cancelled and its connection closed, then the loop: after an interrupt too, nothing outlives the load.

    The wait is bounded, so a task that does not finish its cancellation cannot hold the lab."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.wait(left, timeout=CLOSE_S))
    loop.close()


def run_open_loop(port: int, rate: float, duration_s: float, connections: int, status: int, body: bytes,
                  path: str = "/", progress: Callable[[str], None] = lambda line: None) -> OpenLoad:
    """``rate`` requests per second for ``duration_s`` to 127.0.0.1:``port`` over ``connections`` keep-alive
    connections, every response checked against ``status`` and ``body``."""
    def started() -> None:
        progress(f"open loop: {rate:g} req/s offered for {duration_s:g} s over {connections} connection(s)")
    arguments = (port, rate, duration_s, connections, status, body, path, started)
    if _loop_running():  # a notebook's kernel runs its own event loop in this thread: the load gets a thread of its own
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="wasmlab-open-loop") as pool:
            return summarize(pool.submit(run_schedule, *arguments).result(), connections, duration_s)
    return summarize(run_schedule(*arguments), connections, duration_s)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
