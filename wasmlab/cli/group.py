"""The ``wasmlab`` group: how the lab's errors reach the user (one line, exit status 2)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from wasmlab.errors import Interrupted, WasmlabError, signal_name

DEFAULT_RESULTS = Path("data/results")


# The exit status of a run stopped by SIGINT or SIGTERM: 128 + SIGINT, as shells report a Ctrl-C.
INTERRUPTED = 130


def _terminated(signum: int, frame: Any) -> None:
    # SIGTERM takes the same way out as Ctrl-C, so that what finished is kept and temporary files go.
    raise KeyboardInterrupt("SIGTERM")


class LabGroup(click.Group):
    """Turns the lab's own errors into one line and exit status 2, and an interrupt (SIGINT or SIGTERM) into one line
    and exit status 130 (instead of click's "Aborted!"); ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
        try:
            return super().invoke(ctx)
        except (WasmlabError, ValueError) as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"wasmlab: error: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:
            # click's own refusals (a flag's type, an unknown flag, a missing argument) in the lab's one line, instead
            # of the usage, a hint and the error on four lines.
            if ctx.params.get("debug"):
                raise
            where = f" (see wasmlab {exc.ctx.info_name} --help)" if exc.ctx is not None and exc.ctx.info_name != ctx.info_name else ""
            click.echo(f"wasmlab: error: {exc.format_message()}{where}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"wasmlab: {exc}" if isinstance(exc, Interrupted) else f"wasmlab: interrupted ({signal_name(exc)})", err=True)
            ctx.exit(INTERRUPTED)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=LabGroup)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Measure what a WebAssembly host pays per request, and what pooling and caching save."""
