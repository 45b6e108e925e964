"""The checks every section of a recipe shares: a mapping of known keys, an integer, a set of digest checks.
Each failure is one line naming the recipe key and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from wasmlab.errors import ConfigError, allowed


def mapping(data: Any, where: str, keys: Sequence[str] | None = None) -> Mapping[str, Any]:
    """``data`` as a mapping whose keys are all among ``keys`` (``None``: keys of the user's own choosing)."""
    label = f"recipe {where}" if where else "recipe"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: {data!r} is not a mapping; allowed: "
                          + (f"keys {', '.join(keys)}" if keys is not None else "NAME: VALUE entries"))
    if keys is None:
        return data
    for key in data:
        if key not in keys:
            raise allowed(key, f"{label} key", keys)
    return data


def integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"recipe {where}: {value!r} is not an integer")
    return value


# A literal, an offset or an expected result is a 64-bit signed integer, as the values the steps compute are (an i64
# result, an address): the native path computes in 64 bits, so a wider one would mean one thing there and another on
# the Python paths (which truncated it in a call's argument and refused it as an address).
INT64 = (-(1 << 63), (1 << 63) - 1)


def int64(value: int, where: str) -> int:
    """``value`` if a 64-bit signed integer can hold it, else a one-line ConfigError naming it and the range allowed."""
    if not INT64[0] <= value <= INT64[1]:
        raise ConfigError(f"recipe {where}: {value} does not fit in 64 bits; allowed: {INT64[0]}..{INT64[1]}")
    return value


def digest_checks(data: Any, where: str, kinds: Sequence[str], binary: bool = False) -> dict[str, tuple[str, str]]:
    """``{name: {kind: value}}`` with one kind of ``kinds`` each: name -> (kind, value), sha256 in lower case; ``binary``: a
    regex is matched on bytes (its text as UTF-8, so ``^\\x89PNG`` matches a PNG), and checked as such."""
    out = {}
    for key, spec in mapping(data, where).items():
        spec = mapping(spec, f"{where}.{key}", kinds)
        if len(spec) != 1:
            raise ConfigError(f"recipe {where}.{key}: give exactly one of {', '.join(kinds)}")
        (kind, value), = spec.items()
        if not isinstance(value, str):
            raise ConfigError(f"recipe {where}.{key}.{kind}: {value!r} is not a string")
        if kind == "sha256" and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ConfigError(f"recipe {where}.{key}.sha256: {value!r} is not 64 hexadecimal digits")
        if kind == "regex":
            regex(value, f"{where}.{key}.regex", binary)
        out[str(key)] = (kind, value.lower() if kind == "sha256" else value)
    return out


def regex(value: str, where: str, binary: bool = False) -> None:
    """One line when ``value`` is not a regular expression (``binary``: one over bytes, its text as UTF-8)."""
    try:
        re.compile(value.encode() if binary else value)
    except re.error as exc:
        raise ConfigError(f"recipe {where}: {value!r} is not a regular expression ({exc})") from None
