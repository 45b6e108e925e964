"""The ``wasmlab`` command: one module per command or group of commands, the shared flags in :mod:`.options`."""

from __future__ import annotations

from wasmlab.cli.advise import advise_command
from wasmlab.cli.catalog import inspect_command, presets, workloads
from wasmlab.cli.concurrency import concurrency_command
from wasmlab.cli.group import main
from wasmlab.cli.history import history
from wasmlab.cli.releases import releases
from wasmlab.cli.reproduce import reproduce
from wasmlab.cli.serve import serve
from wasmlab.cli.sweeps import compare, report, sweep

for _command in (reproduce, concurrency_command, advise_command, serve, releases, sweep, report, compare, history, inspect_command,
                 presets, workloads):
    main.add_command(_command)

__all__ = ["main"]
