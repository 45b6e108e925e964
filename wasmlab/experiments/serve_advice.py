"""``wasmlab serve --from-advice FILE``: the server's ``-O`` options from ``wasmlab advise --format json``'s document.

The options are rendered from the advice's recommended candidate and serving needs by the advisor's own
:func:`~wasmlab.experiments.advisor.snippets.wasmtime_serve_options` (the same code that wrote the advice's
``wasmtime serve`` snippet), then checked against the option names the pinned CLI's ``wasmtime serve -O help`` lists.
Settings ``wasmtime serve`` cannot take (reusing an instance for several requests, a Wizer snapshot) and documents that
are not advice, or advise nothing, are refused in one line.  Explicit ``-O`` options win over the advice's, key by key.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wasmlab.errors import ConfigError
from wasmlab.experiments.advisor.advice import FORMAT_VERSION
from wasmlab.experiments.advisor.needs import ServingNeeds
from wasmlab.experiments.advisor.snippets import wasmtime_serve, wasmtime_serve_options
from wasmlab.experiments.advisor.space import Candidate

# A line of `wasmtime serve -O help`: "  -O   pooling-allocator[=y|n] -- Enable ...".
HELP_OPTION = re.compile(r"^\s*-O\s+([a-z][a-z0-9-]*)(?:\[?=)", re.M)


@dataclass(frozen=True)
class AdvisedOptions:
    """The advice's ``-O`` options, the explicit ones, and what the server gets: explicit wins, key by key."""

    source: str  # the file as given
    advised: tuple[str, ...]
    explicit: tuple[str, ...]
    workloads: tuple[str, ...]  # what the advice was measured on
    label: str  # the recommendation in the advisor's words
    snippet: str  # the wasmtime serve line the advice document carries

    @property
    def overridden(self) -> tuple[str, ...]:
        """Advice options whose key an explicit option sets too (those lose)."""
        return overridden_by(self.advised, self.explicit)

    @property
    def merged(self) -> tuple[str, ...]:
        return (*(o for o in self.advised if o not in self.overridden), *self.explicit)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.source, "advised": list(self.advised), "explicit": list(self.explicit),
                "overridden": list(self.overridden), "workloads": list(self.workloads), "recommended": self.label,
                "snippet": self.snippet}

    def line(self) -> str:
        """What the output says of where the options came from."""
        text = f"-O from advice {self.source} (measured on {', '.join(self.workloads)}: {self.label})"
        if self.overridden:
            text += "; explicit -O wins over the advice's " + ", ".join(self.overridden)
        return text


def key_of(option: str) -> str:
    return option.split("=", 1)[0]


def overridden_by(options: tuple[str, ...], explicit: tuple[str, ...]) -> tuple[str, ...]:
    """The ``options`` whose key an ``explicit`` option sets too: explicit wins, key by key."""
    keys = {key_of(option) for option in explicit}
    return tuple(option for option in options if key_of(option) in keys)


def _refuse(path: str, why: str) -> ConfigError:
    return ConfigError(f"--from-advice {path}: {why}; allowed: the output of `wasmlab advise --format json` with a recommendation")


def read_advice(path: Path) -> dict[str, Any]:
    """The advice document at ``path``, checked to be one (a JSON object of the advisor's format with its keys)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise _refuse(str(path), f"cannot be read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(str(path), f"is not JSON ({exc})") from None
    needed = ("format_version", "feasible", "recommended", "needs", "snippets")
    if not isinstance(data, dict) or any(key not in data for key in needed):
        raise _refuse(str(path), "is not an advice document (no " + ", ".join(needed) + ")")
    if data["format_version"] != FORMAT_VERSION:
        raise _refuse(str(path), f"has advice format {data['format_version']!r}, this lab reads {FORMAT_VERSION}")
    if not data["feasible"] or not isinstance(data["recommended"], dict):
        raise _refuse(str(path), f"recommends nothing ({data.get('reason') or 'no recommendation'})")
    return data


def _rebuilt(path: str, data: dict[str, Any]) -> tuple[Candidate, ServingNeeds]:
    """The recommended candidate and the serving needs, as the advisor held them."""
    try:
        candidate = Candidate(**data["recommended"]["candidate"])
        raw = data["needs"]
        kept: dict[str, Any] = {f.name: tuple(raw[f.name]) if isinstance(raw.get(f.name), list) else raw[f.name]
                                for f in fields(ServingNeeds) if f.name in raw}
        needs = ServingNeeds(**kept)
    except (KeyError, TypeError) as exc:
        raise _refuse(path, f"its recommendation or serving needs are not the advisor's ({exc})") from None
    return candidate, needs


def serve_option_names(binary: Path) -> set[str]:
    """The ``-O`` option names the wasmtime CLI at ``binary`` takes (``wasmtime serve -O help``)."""
    done = subprocess.run([str(binary), "serve", "-O", "help"], capture_output=True, text=True, timeout=30)
    names = set(HELP_OPTION.findall(done.stdout + done.stderr))
    if not names:
        raise ConfigError(f"{binary} serve -O help listed no options; allowed: the pinned wasmtime CLI (wasmlab workloads fetch)")
    return names


def advised_options(path: Path, explicit: tuple[str, ...], binary: Path) -> AdvisedOptions:
    """The advice at ``path`` as ``wasmtime serve`` options for ``binary``, with ``explicit`` options over them."""
    data = read_advice(path)
    candidate, needs = _rebuilt(str(path), data)
    if candidate.reuse > 1:
        raise _refuse(str(path), f"recommends reusing an instance for {candidate.reuse} requests, which wasmtime serve cannot "
                                 f"(it makes a fresh instance per request)")
    if candidate.snapshot:
        raise _refuse(str(path), "recommends serving a Wizer snapshot, which is not a wasmtime serve -O option")
    options = tuple(wasmtime_serve_options(candidate, needs))
    known = serve_option_names(binary)
    unknown = [o for o in options if key_of(o) not in known]
    if unknown:
        raise _refuse(str(path), f"its settings {', '.join(unknown)} are not options of this wasmtime serve "
                                 f"(`wasmtime serve -O help`)")
    label = str(data["recommended"].get("label") or candidate.label(needs))
    snippet = str(data["snippets"].get("wasmtime_serve") or wasmtime_serve(candidate, needs))
    return AdvisedOptions(str(path), options, explicit, tuple(needs.workloads), label, snippet)
