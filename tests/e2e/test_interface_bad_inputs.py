"""Bad names and values for functions inside exported interfaces (issue 25), through the command as a user types it
(click's ``CliRunner``, in this process): one line naming the bad value and what is allowed, exit status 2, no
traceback.  And ``--entry`` on a component is honoured or refused, never silently replaced (issue 26)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.host.test_interface_exports import IFACE, write_component
from wasmlab.cli import main
from wasmlab.workloads import middleware

R = ["reproduce", "--requests", "5", "--repeats", "1", "--warmup", "1", "--variants", "cached", "--out", "out"]
C = [*R, "--workload", "interfaces.wasm"]

# (what, arguments, the line the user sees)
BAD = [
    ("an interface that is not exported", [*C, "--invoke", "pkg:ns/nothing@1.0.0#sum({x: 1, y: 2})"],
     f"exported interface 'pkg:ns/nothing@1.0.0' is not allowed; allowed: {IFACE}, pkg:ns/outer@1.0.0, pkg:ns/outer@1.0.0#inner"),
    ("a function not in its interface", [*C, "--entry", f"{IFACE}#absent"],
     f"component interfaces.wasm: function of interface {IFACE} 'absent' is not allowed; allowed: echo, seven, sum, swap"),
    ("an ambiguous bare name in --invoke", [*C, "--invoke", "sum({x: 1, y: 2})"],
     f"function 'sum' is ambiguous; allowed: one of its full names, {IFACE}#sum, pkg:ns/outer@1.0.0#inner#sum"),
    ("an ambiguous bare name in --entry", [*C, "--entry", "sum", "--expect", "7"],
     f"component interfaces.wasm: function 'sum' is ambiguous; allowed: one of its full names, {IFACE}#sum, pkg:ns/outer@1.0.0#inner#sum"),
    ("a record field of the wrong type", [*C, "--invoke", f"{IFACE}#sum({{x: 1, y: \"two\"}})"],
     "recipe invoke argument 'p' at column 34: the string \"two\" is not a u32"),
    ("an expected record field out of range", [*C, "--invoke", "swap({x: 1, y: 2})", "--expect-value", "{x: 2, y: -1}"],
     "recipe expect.result at column 11: -1 is out of range for u32; allowed: 0..4294967295"),
    ("a record function named by --entry", [*C, "--entry", "swap"], "allowed: one of those, or the call in WAVE (--invoke "
                                                                    f"'{IFACE}#swap(...)')"),
    ("--entry run on a middleware component", [*R, "--workload", "mw.wasm", "--entry", "run"],
     "component mw.wasm: function 'run' is not allowed; allowed: on-request, on-response"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_component(tmp_path)
    (tmp_path / "mw.wasm").write_bytes(middleware.wat_component())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("what, arguments, message", BAD, ids=[row[0] for row in BAD])
def test_a_bad_interface_name_or_value_is_one_line_and_status_2(workdir, what, arguments, message):
    done = CliRunner().invoke(main, arguments, catch_exceptions=True)
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith("wasmlab: error: "), done.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_interface_function_runs_from_the_command_line_on_every_path(workdir):
    done = CliRunner().invoke(main, [*C, "--invoke", f"{IFACE}#swap({{x: 1, y: 2}})", "--expect-value", "{x: 2, y: 1}",
                                     "--call-path", "lean,api,native"], catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert "Results: out/" in done.stdout and "error" not in done.stdout.lower()
