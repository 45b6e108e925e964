"""What a request is checked against: one immutable :class:`Expectation`, built once per workload.

A workload says what its request must end with in several ways (an expected value, the first request's result,
an exit status, output patterns, files a recipe's request writes, digests of what its steps read, the results of a
component's earlier calls).  :func:`expectation_of` gathers them once, when the ``Workload`` is made
(``Workload.expectation``), and every call path reads this object instead of reaching into the workload's or its
recipe's fields; the C driver is handed the same values.  What a path learns while serving (the first request's
result) is the path's own state: the expectation says only that there is one to learn (:class:`FirstResult`).

The exit status is checked in one place, :meth:`Expectation.exit_ok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class FirstResult:
    """The expectation of a result checked against the first request's, before that result is known.

    It is unequal to every value, so the hot path's one comparison (``result != expected``) sends the
    first request to the path's learning step, which records the result; no request pays for it after.
    A call path makes a fresh one per workload it binds (it is replaced by the learned value).
    """

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "the first request's result"


@dataclass(frozen=True)
class CallExpectation:
    """What one call must return: ``value``, or (``same_as_first``) what the first request's call returned, or, when
    neither, nothing is checked.  ``name`` names the call in messages."""

    returns: bool = False
    value: Any = None
    same_as_first: bool = False
    name: str = ""

    def target(self) -> object:
        """What a result is compared with: the value, a fresh :class:`FirstResult`, or ``None`` (not checked)."""
        if self.same_as_first and self.returns:
            return FirstResult()
        return self.value


@dataclass(frozen=True)
class ExpectedBytes:
    """An output stream's exact expected bytes, and the file they were read from (a standard suite's
    ``NAME.stdout.expected``), which a mismatch names."""

    source: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Expectation:
    """Everything one request of a workload is checked against (see the module docstring)."""

    # "expected" (the values below), "first-result" (what the first request produced) or "none" (--no-check).
    check: str = "expected"
    # The entry call's result; for a recipe's steps, the last call's (its ``expect.result``).
    result: CallExpectation = field(default_factory=CallExpectation)
    # A component request's earlier calls (a recipe's ``invoke`` steps before the last), in order.
    before: tuple[CallExpectation, ...] = ()
    # The exit status that means success (a guest that returns normally exits 0); None: any, for a recipe whose
    # outcome is compared with the first request's as a whole.
    exit: int | None = 0
    stdout_match: str | None = None
    stderr_match: str | None = None
    # The exact bytes stdout and stderr must hold (a recipe's ``expect.stdout_file`` / ``stderr_file``, or the CLI's).
    stdout_bytes: ExpectedBytes | None = None
    stderr_bytes: ExpectedBytes | None = None
    # The SHA-256 (lower-case hex) stdout and stderr must have (a recipe's ``expect.stdout_sha256`` / ``stderr_sha256``).
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None
    # Files a request writes into its writable directories: guest path -> (sha256|regex, value).
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # What a recipe's read steps read: name -> (sha256|hex|text|regex, value).
    reads: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # The typed outcome a request must end with: "ok", or what a hostile guest provokes.
    outcome: str = "ok"
    # The request is a recipe's steps: its outcome (exit, last result, reads) is checked as a whole
    # (wasmlab.host.recipes.checker), not one call's result.
    steps: bool = False
    # A component command: its run's result is not compared as a value; the exit status it means is (exit_ok), and
    # its outputs are.
    command: bool = False

    @property
    def same_as_first(self) -> bool:
        """Whether the request's result (or output, or outcome) must equal the first request's."""
        return self.check == "first-result"

    def exit_ok(self, code: int | None) -> bool:
        """The exit-status check, the only one: ``code`` (``None``: the guest returned without exiting, status 0) is
        the status that means success."""
        return self.exit is None or (code or 0) == self.exit

    def compared_with(self) -> object:
        """What one call's result is compared with on the hot path: the expected value, a fresh :class:`FirstResult`,
        or ``None`` (not compared: unchecked, a recipe's steps, checked as a whole, or a command, checked by its exit status)."""
        return None if self.steps or self.command else self.result.target()


def expectation_of(workload: Any) -> Expectation:
    """The expectation of ``workload`` (a :class:`~wasmlab.workloads.model.Workload`, typed loosely because the model
    builds it in its own ``__post_init__``): from its expected value, exit status and output patterns, its recipe's
    ``expect`` and its component calls' expected results."""
    recipe = workload.recipe
    first = workload.check == "first-result"
    steps = recipe is not None and bool(recipe.steps)
    if steps:
        expect = recipe.expect
        result = CallExpectation(returns=True, value=expect.result, name=workload.name)
        exit_status = expect.exit if expect.exit is not None else 0 if expect.anything else None
    else:
        result = CallExpectation(returns=bool(workload.results), value=workload.expected if workload.check == "expected" else None,
                                 same_as_first=first, name=workload.name)
        exit_status = workload.expected_exit
    before = tuple(CallExpectation(returns=call.signature.result is not None, value=call.expected, same_as_first=call.expected is None,
                                   name=f"{workload.name} (call {call.entry})") for call in workload.before)
    return Expectation(check=workload.check, result=result, before=before, exit=exit_status, stdout_match=workload.stdout_pattern,
                       stderr_match=workload.stderr_pattern, stdout_bytes=recipe.expect.stdout_file if recipe is not None else None,
                       stderr_bytes=recipe.expect.stderr_file if recipe is not None else None,
                       stdout_sha256=recipe.expect.stdout_sha256 if recipe is not None else None,
                       stderr_sha256=recipe.expect.stderr_sha256 if recipe is not None else None, files=dict(recipe.expect.files) if recipe is not None else {},
                       reads=dict(recipe.expect.bytes) if recipe is not None else {}, outcome=workload.expected_outcome, steps=steps,
                       command=workload.command)
