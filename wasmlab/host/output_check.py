"""The check of a WASI request's outputs against its :class:`~wasmlab.workloads.expectation.Expectation`, one home for
every call path: stdout and stderr against their patterns (on bytes), their exact expected bytes (a standard suite's
``NAME.stdout.expected``) and their digests, and the files a request wrote against their digests and byte patterns.

The Python paths call it after every request (:class:`~wasmlab.host.store.WasiIO`), the native paths on the first
request's outputs (each later request's must equal those, compared in C); always outside the request's recorded time.
A mismatch is a :class:`~wasmlab.errors.ResultMismatch` in one line that says where the bytes first differ.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

from wasmlab.errors import ResultMismatch
from wasmlab.workloads.expectation import Expectation, ExpectedBytes

STREAMS = ("stdout", "stderr")
# How many bytes of each side a first-difference message quotes.
QUOTED = 24


def byte_pattern(pattern: str) -> re.Pattern[bytes]:
    """A file pattern compiled to match bytes: its text as UTF-8, so ``^\\x89PNG`` (the escape, as written in YAML
    single quotes or a plain scalar) matches a PNG's first bytes and a pattern of text matches text written as UTF-8."""
    return re.compile(pattern.encode())


def first_difference(got: bytes, want: bytes) -> str:
    """Where ``got`` first differs from ``want``, in words: the byte offset, its line and column, and a few bytes of each."""
    at = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
    line = got.count(b"\n", 0, at) + 1
    column = at - (got.rfind(b"\n", 0, at) + 1) + 1
    where = f"at byte {at} (line {line}, column {column})"
    if at == len(got):
        return f"{where}: the output ends ({len(got)} bytes) where the expected goes on with {want[at:at + QUOTED]!r}"
    if at == len(want):
        return f"{where}: the output goes on with {got[at:at + QUOTED]!r} past the expected {len(want)} bytes"
    return f"{where}: got {got[at:at + QUOTED]!r}, expected {want[at:at + QUOTED]!r}"


class OutputCheck:
    """A workload's output checks, compiled once: :meth:`streams` for stdout and stderr, :meth:`files` for written files."""

    def __init__(self, name: str, expectation: Expectation) -> None:
        self.name = name
        self.patterns = [(stream, byte_pattern(p)) for stream, p in zip(STREAMS, (expectation.stdout_match, expectation.stderr_match),
                                                                          strict=True) if p]
        self.digests = [(stream, d) for stream, d in zip(STREAMS, (expectation.stdout_sha256, expectation.stderr_sha256), strict=True) if d]
        self.exact: list[tuple[str, ExpectedBytes]] = [(stream, e) for stream, e in zip(
            STREAMS, (expectation.stdout_bytes, expectation.stderr_bytes), strict=True) if e is not None]
        self.file_checks = {path: (kind, byte_pattern(value) if kind == "regex" else value)
                            for path, (kind, value) in expectation.files.items()}

    @property
    def anything(self) -> bool:
        """Whether there is anything to check (else the first request's outputs need no verifying)."""
        return bool(self.patterns or self.exact or self.digests or self.file_checks)

    def streams(self, read: Callable[[str], bytes]) -> None:
        """Raise :class:`ResultMismatch` unless stdout and stderr (``read(stream)`` gives a stream's bytes) match their
        patterns, equal their expected bytes and have their expected digests."""
        for stream, pattern in self.patterns:
            # Matched on the bytes, as file patterns are: a binary stream (a PNG on stdout) is not decoded first, and
            # a \r stays a \r on every path.
            data = read(stream)
            if not pattern.search(data):
                raise ResultMismatch(f"workload {self.name!r}: {stream} does not match {pattern.pattern.decode(errors='replace')!r}: "
                                     f"begins {data[:QUOTED]!r}")
        for stream, expected in self.exact:
            got = read(stream)
            if got != expected.data:
                raise ResultMismatch(f"workload {self.name!r}: {stream} differs from {expected.source} "
                                     f"{first_difference(got, expected.data)}")
        for stream, digest in self.digests:
            got_digest = hashlib.sha256(read(stream)).hexdigest()
            if got_digest != digest:
                raise ResultMismatch(f"workload {self.name!r}: {stream} has sha256 {got_digest}, expected {digest}")

    def files(self, read: Callable[[str], bytes | None]) -> None:
        """Raise :class:`ResultMismatch` unless every file the expectation names was written (``read`` gives its contents,
        or ``None``) with the digest it must have, or bytes its pattern matches."""
        check_files(self.name, self.file_checks, read)


def check_files(name: str, expected: Mapping[str, tuple[str, str | re.Pattern[bytes]]], read: Callable[[str], bytes | None]) -> None:
    """Every file ``expected`` names (guest path -> ("sha256", hex) or ("regex", a pattern, matched on the bytes)) was
    written (``read`` gives its contents, or ``None``) as it must be, or a :class:`ResultMismatch`."""
    for guest_path, (kind, value) in expected.items():
        data = read(guest_path)
        if data is None:
            raise ResultMismatch(f"workload {name!r}: the request wrote no file {guest_path}")
        if kind == "sha256" and hashlib.sha256(data).hexdigest() != value:
            raise ResultMismatch(f"workload {name!r}: {guest_path} has sha256 {hashlib.sha256(data).hexdigest()[:16]}..., "
                                 f"expected {str(value)[:16]}...")
        if kind == "regex":
            pattern = value if isinstance(value, re.Pattern) else byte_pattern(value)
            if not pattern.search(data):
                raise ResultMismatch(f"workload {name!r}: {guest_path} does not match {pattern.pattern.decode(errors='replace')!r}: "
                                     f"begins {data[:QUOTED]!r}")
