"""Exceptions the lab raises on purpose: each message names the bad value and what is allowed."""

from __future__ import annotations


class WasmlabError(Exception):
    """Base class for errors a user can act on; the CLI prints them as one line."""


class ConfigError(WasmlabError, ValueError):
    """A knob, name or parameter is out of range or unknown."""


class ResultMismatch(WasmlabError):
    """A guest returned something other than its expected value: the request did not do its work."""


def allowed(value: object, what: str, choices: object) -> ConfigError:
    """Build the standard 'unknown X' error: names the bad value and lists what is allowed."""
    if isinstance(choices, (list, tuple, set, frozenset, dict)):
        listed = ", ".join(sorted(str(c) for c in choices))
    else:
        listed = str(choices)
    return ConfigError(f"{what} {value!r} is not allowed; allowed: {listed}")
