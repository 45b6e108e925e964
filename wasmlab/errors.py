"""Every exception the lab defines, in one module (as papermill keeps its own): each message names the bad
value and what is allowed.

Three of them subclass ``wasmtime.WasmtimeError`` on purpose: :class:`PoolExhausted`, :class:`NativeFailure` and
:class:`CommandExit` are request failures, counted per request like wasmtime's own errors (``host.outcomes.REQUEST_FAILURES``),
not errors that stop a variant.
"""

from __future__ import annotations

from typing import Any

import wasmtime


class WasmlabError(Exception):
    """Base class for errors a user can act on; the CLI prints them as one line."""


class ConfigError(WasmlabError, ValueError):
    """A knob, name or parameter is out of range or unknown."""


class SpecError(ConfigError):
    """A sweep spec is invalid; the message starts with the spec file and names the key."""


class RecipeError(ConfigError):
    """A step that cannot run as written (a write past the memory's end, an export of another kind)."""


class ResultMismatch(WasmlabError):
    """A guest returned something other than its expected value: the request did not do its work."""


class CompileError(WasmlabError):
    """A module could not be compiled for this runtime's engine: the variant cannot run at all."""


class Infeasible(WasmlabError):
    """No candidate can meet the goal; the message is the one line naming the binding constraint."""


class PoolExhausted(wasmtime.WasmtimeError):
    """No pool slot was free (after waiting, under the ``wait`` policy)."""

    def __init__(self, message: str, waited_ns: int = 0) -> None:
        self.message_text = message
        self.waited_ns = waited_ns

    def __str__(self) -> str:
        return self.message_text


class NativeFailure(wasmtime.WasmtimeError):
    """A request of the native call path that failed, as its C loop recorded it: ``kind`` is ``trap`` (with
    wasmtime's ``trap_code`` and the guest's memory size, when it exports one), ``exit(N)``, ``pool_exhausted``,
    ``oom`` or ``error``; ``message`` is the first failure's message of its block."""

    def __init__(self, kind: str, message: str, trap_code: int | None = None, memory_bytes: int | None = None) -> None:
        self.kind = kind
        self.message_text = message
        self.trap_code = trap_code
        self.memory_bytes = memory_bytes

    def __str__(self) -> str:
        return self.message_text


class CommandExit(wasmtime.WasmtimeError):
    """A component command whose ``run`` returned ``err`` (exit status ``code``, 1, as ``wasmtime run`` reports it) where
    another status was expected: the request's outcome is ``exit(code)``, as a core command's ``proc_exit`` would be."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message_text = message

    def __str__(self) -> str:
        return self.message_text


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM, with what it finished: ``partial`` (a record marked partial in its
    metadata, or ``None`` when nothing finished), ``done`` of ``planned`` ``unit`` (repetitions, variants, points).
    A ``KeyboardInterrupt``, so that no ``except Exception`` on the way up swallows it; the command that keeps the
    partial record sets ``kept`` (where it went) and ``resume`` (how to go on, where a run can)."""

    def __init__(self, signal_name: str = "SIGINT", partial: Any = None, done: int = 0, planned: int = 0,
                 unit: str = "repetitions") -> None:
        super().__init__(signal_name)
        self.signal_name, self.partial, self.done, self.planned, self.unit = signal_name, partial, done, planned, unit
        self.kept = ""
        self.resume = ""

    def __str__(self) -> str:
        head = f"interrupted ({self.signal_name})"
        of = f" of {self.planned}" if self.planned else ""  # 0: a run whose count is not planned (the advisor's trials)
        if self.partial is None and not self.kept:
            return f"{head} before the first{of} {self.unit} finished; nothing to keep{self.resume}"
        where = f"kept in {self.kept} (marked partial)" if self.kept else "not saved"
        return f"{head} after {self.done}{of} {self.unit}; {where}{self.resume}"


def signal_name(exc: BaseException) -> str:
    """The signal a ``KeyboardInterrupt`` stands for: the CLI raises ``KeyboardInterrupt("SIGTERM")`` on SIGTERM."""
    return exc.signal_name if isinstance(exc, Interrupted) else (str(exc) if str(exc).startswith("SIG") else "SIGINT")


def allowed(value: object, what: str, choices: object) -> ConfigError:
    """Build the standard 'unknown X' error: names the bad value and lists what is allowed."""
    if isinstance(choices, (list, tuple, set, frozenset, dict)):
        listed = ", ".join(sorted(str(c) for c in choices))
    else:
        listed = str(choices)
    return ConfigError(f"{what} {value!r} is not allowed; allowed: {listed}")
