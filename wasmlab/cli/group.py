"""The ``wasmlab`` group: how the lab's errors reach the user (one line, exit status 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from wasmlab.errors import WasmlabError

DEFAULT_RESULTS = Path("data/results")


class LabGroup(click.Group):
    """Turns the lab's own errors into one line and exit status 2; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (WasmlabError, ValueError) as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"wasmlab: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=LabGroup)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Measure what a WebAssembly host pays per request, and what pooling and caching save."""
