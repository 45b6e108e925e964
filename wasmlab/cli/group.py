"""The ``wasmlab`` group: how the lab's errors reach the user (one line, exit status 2)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from wasmlab.errors import Interrupted, WasmlabError, signal_name


# Where measuring commands save their runs unless --out says otherwise; WASMLAB_RESULTS moves it (the tests point it
# at a temporary folder so that their runs do not pile up in a checkout's data/results).
def default_results() -> Path:
    return Path(os.environ.get("WASMLAB_RESULTS") or "data/results")


# The exit status of a run stopped by SIGINT or SIGTERM: 128 + SIGINT, as shells report a Ctrl-C.
INTERRUPTED = 130


def _terminated(signum: int, frame: Any) -> None:
    # SIGTERM takes the same way out as Ctrl-C, so that what finished is kept and temporary files go.
    raise KeyboardInterrupt("SIGTERM")


class LabGroup(click.Group):
    """Turns the lab's own errors into one line and exit status 2, and an interrupt (SIGINT or SIGTERM) into one line
    and exit status 130 (instead of click's "Aborted!"); ``--debug`` shows the traceback."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with the whole first sentence of its help, wrapped, where click cuts it at the terminal's width."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                text = " ".join((command.short_help or command.help or "").split("\n\n")[0].split())
                rows.append((name, text.split(". ")[0].rstrip(".") + "."))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

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


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    from wasmlab import __version__
    # The binding's version names the libwasmtime it ships, which every figure depends on.
    click.echo(f"wasmlab {__version__} (wasmtime-py {version('wasmtime')})")
    ctx.exit()


# -h beside --help in every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(cls=LabGroup, context_settings=CONTEXT)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show wasmlab's version and the wasmtime binding's, and exit.")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Measure what a WebAssembly host pays per request, and what pooling and caching save."""
