"""Recipes fuzzed: random recipe documents (the right keys with random and wrong values, unknown keys, missing
sections, bad WAVE, wrong arities, unicode, empty strings, huge and negative numbers) and random YAML text (not a
mapping, anchors, tabs), loaded and bound to real small guests (core modules and a component), give a workload or the
lab's one line; a few of them also serve a request.  Never another exception type, never a traceback."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import wasmtime
import yaml
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.fuzz.guests import component_wat, signatures
from tests.fuzz.test_wave_fuzz import NEAR_WAVE
from tests.fuzz.values import values
from tests.workloads.recipe_guests import EXIT_CODE, LIBRARY, REACTOR, serving
from wasmlab.cli import main
from wasmlab.errors import ConfigError, WasmlabError
from wasmlab.host.recipes import dry_run
from wasmlab.workloads import load_workload
from wasmlab.workloads.wave import format_call

SIGNATURES = signatures()
GUESTS = {"reactor.wat": REACTOR, "library.wat": LIBRARY, "exit.wat": EXIT_CODE, "values.wat": component_wat()}
EXPORTS = ["_initialize", "malloc", "init_argv", "argv_total", "get_buffer", "get_output", "transform", "_start",
           "take-rec", "take-level", "nope", "", "mémoire"]
INTS = st.integers(-5, 70000) | st.sampled_from([-(1 << 63), (1 << 63) - 1, 1 << 64, -(1 << 31), (1 << 32) - 1, 1 << 100])
JUNK = st.none() | st.booleans() | st.floats() | st.text(max_size=6) | st.lists(st.integers(), max_size=2) | \
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
NAMES = st.sampled_from(["buf", "p", "input", "buf+4", "p-1", "x", "buf + 0x10", "1x"])
EXPRS = st.recursive(INTS | NAMES | JUNK, lambda kids: st.one_of(
    st.builds(lambda e, a: {"call": e, "args": a}, st.sampled_from(EXPORTS), st.lists(kids, max_size=2)),
    st.builds(lambda e: {"load": e}, kids),
    st.builds(lambda items: {"ptr_array": items}, st.lists(kids, max_size=3))), max_leaves=4)
REPEAT = st.fixed_dictionaries({"byte": INTS | JUNK, "count": st.integers(-3, 70000) | st.integers(1 << 32, 1 << 70) | JUNK})
WRITE = st.fixed_dictionaries({}, optional={"at": EXPRS, "text": st.text(max_size=10) | JUNK, "hex": st.text("0123456789abcdefg ", max_size=8),
                                            "repeat": REPEAT, "file": st.sampled_from(["reactor.wat", "missing.bin", ""]), "txt": JUNK})
WAVE_CALLS = st.builds(lambda e, a: f"{e}({a})", st.sampled_from(EXPORTS), NEAR_WAVE) | NEAR_WAVE | st.text(max_size=12)
STEP = st.one_of(
    st.fixed_dictionaries({"call": st.sampled_from(EXPORTS) | JUNK},
                          optional={"args": st.lists(EXPRS, max_size=3) | JUNK, "as": NAMES | JUNK}),
    st.fixed_dictionaries({"write": WRITE | JUNK}),
    st.fixed_dictionaries({"read": st.fixed_dictionaries({}, optional={"at": EXPRS, "length": EXPRS, "as": NAMES | JUNK}) | JUNK}),
    st.fixed_dictionaries({"invoke": WAVE_CALLS | JUNK}, optional={"expect": NEAR_WAVE | INTS | JUNK}),
    JUNK)
DIGEST = st.dictionaries(st.sampled_from(["sha256", "hex", "text", "regex", "md5"]), st.text(max_size=8) | st.just("0" * 64) | JUNK, max_size=2)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` nine times in ten, else ``bad``: deep enough that most examples reach binding, wrong often enough to test it."""
    return st.integers(0, 9).flatmap(lambda k: bad if k == 0 else good)


# Steps a reactor or a library takes, with random integers (extremes included) where they take one.
PROGRAM_STEPS = st.one_of(
    st.just({"call": "_initialize"}),
    st.builds(lambda n: {"call": "malloc", "args": [n], "as": "buf"}, INTS),
    st.builds(lambda at, text: {"write": {"at": at, "text": text}}, st.sampled_from(["buf", "buf+4", "input"]) | INTS, st.text(max_size=12)),
    st.builds(lambda n, p: {"call": "init_argv", "args": [n, {"ptr_array": p}]}, INTS, st.lists(st.sampled_from(["buf", "buf+3"]) | INTS, min_size=1, max_size=3)),
    st.just({"call": "argv_total"}),
    st.just({"call": "get_buffer", "as": "input"}),
    st.builds(lambda n: {"call": "transform", "args": [n]}, INTS),
    st.builds(lambda at, n: {"read": {"at": at, "length": n, "as": "out"}}, st.just({"call": "get_output"}) | INTS, INTS),
    st.builds(lambda a: {"invoke": f"transform({a})"}, INTS),
    STEP)
MODULES = st.sampled_from([*GUESTS, *GUESTS, "seed", "nope.wat", "", "dir/x.wasm"])
SECTIONS = {
    "name": st.text(max_size=8) | JUNK,
    "wasi": st.fixed_dictionaries({}, optional={
        "argv": st.lists(st.text(max_size=5), max_size=3) | JUNK, "stdin": st.sampled_from(["reactor.wat", "missing", ""]) | JUNK,
        "env": st.dictionaries(st.text(max_size=4), st.text(max_size=4) | JUNK, max_size=2) | JUNK,
        "dirs": st.lists(st.fixed_dictionaries({}, optional={"guest": st.sampled_from(["/out", "out", "/", ""]) | JUNK,
                                                             "host": st.sampled_from([".", "missing"]) | JUNK,
                                                             "writable": st.booleans() | JUNK, "resource": JUNK}), max_size=2) | JUNK,
        "argz": JUNK}),
    "steps": mostly(st.lists(PROGRAM_STEPS, max_size=6), JUNK),
    "invoke": mostly(st.sampled_from(sorted(SIGNATURES)).flatmap(
        lambda name: values(SIGNATURES[name].params[0][1], 2).map(
            lambda v: format_call(name, (v, (0,) * 16), SIGNATURES[name].params))), WAVE_CALLS | JUNK),
    "expect": st.fixed_dictionaries({}, optional={
        "exit": INTS | JUNK, "stdout_match": st.sampled_from(["^sat", "(", ""]) | JUNK, "result": INTS | NEAR_WAVE | JUNK,
        "bytes": st.dictionaries(st.sampled_from(["out", "x"]), DIGEST | JUNK, max_size=1) | JUNK,
        "files": st.dictionaries(st.sampled_from(["/out/a", "/in/b"]), DIGEST | JUNK, max_size=1) | JUNK}),
    "imports": st.dictionaries(st.sampled_from(["env.host_hook", "bench#start", "x", ""]), INTS | JUNK, max_size=2) | JUNK,
    "allocator": st.sampled_from(["malloc", "nope"]) | JUNK, "memory": st.sampled_from(["memory", "mem"]) | JUNK,
    "driver": st.sampled_from(["", "nope"]) | JUNK, "input": JUNK,
}
# A recipe: a module (mostly one of the guests), a few of its sections, each right nine times in ten, now and then a section
# that is not a mapping at all or a key that does not exist.
RECIPES = st.builds(
    lambda module, chosen, extra: {**({} if module is None else {"module": module}), **chosen, **extra},
    mostly(MODULES, st.none() | JUNK),
    st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: mostly(SECTIONS[k], JUNK) for k in keys})),
    mostly(st.just({}), st.dictionaries(st.sampled_from(["stpes", "module ", "Steps"]), JUNK, max_size=1)))
_serial = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The guests, written once; every example's recipe is a new file beside them."""
    root = tmp_path_factory.mktemp("recipes")
    for name, wat in GUESTS.items():
        (root / name).write_text(wat)
    return root


def one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, repr(message)


def workload_or_one_line(folder: Path, text: str, serve: bool) -> None:
    """The property: a bound workload (dry-run, and when ``serve`` two requests on the lean path), or one line."""
    path = folder / f"r{next(_serial)}.yaml"
    path.write_text(text)
    try:
        workload = load_workload(str(path))
        if workload.recipe is not None and workload.recipe.steps and not workload.component:
            dry_run(workload)
    except ConfigError as exc:
        one_line(exc)
        return
    if serve:
        try:
            with serving([workload], "lean", "cached") as runtime:
                runtime.handle(0)
                runtime.handle(0)
        except WasmlabError as exc:  # a result that differs from expect, a step that cannot run
            one_line(exc)
        except wasmtime.WasmtimeError:
            pass  # a request's failure (a trap, an exit): an outcome the measurement counts, in wasmtime's own words


@fuzz(250)
@given(recipe=RECIPES, serve=st.integers(0, 9).map(lambda k: k == 0))
@example(recipe={"module": "reactor.wat", "steps": [{"write": {"at": 0, "repeat": {"byte": 1, "count": 1 << 50}}}]}, serve=False)
@example(recipe={"module": "reactor.wat", "imports": [0]}, serve=False)
@example(recipe={"module": "reactor.wat", "imports": True}, serve=False)
@example(recipe={"module": "reactor.wat", "wasi": {"env": 5}}, serve=False)
@example(recipe={"module": "reactor.wat", "wasi": {"dirs": 5}}, serve=False)
def test_a_random_recipe_is_a_workload_or_one_line(folder, recipe, serve):
    workload_or_one_line(folder, yaml.safe_dump(recipe, allow_unicode=True), serve)


@fuzz(120)
@given(text=st.text(max_size=60) | st.lists(st.sampled_from(
    ["module: reactor.wat\n", "module: values.wat\n", "steps:\n", "  - call: _initialize\n", "  - &s {call: malloc, args: [8]}\n",
     "  - *s\n", "\t- call: x\n", "invoke: 'take-level(low, (1,2))'\n", "expect: {result: 5}\n", "- a\n", "42\n", "---\n",
     "wasi: &w {argv: [a]}\n", "name: *w\n", "imports: !!binary aGk=\n", "steps: {call: x}\n"]), max_size=7).map("".join))
@example(text="wasi: 5\nmodule: reactor.wat\nsteps: [{call: _initialize}]\n")
def test_random_yaml_text_is_a_workload_or_one_line(folder, text):
    workload_or_one_line(folder, text, serve=False)


@fuzz(25)
@given(recipe=RECIPES, call_path=st.sampled_from(["lean", "native"]))
@example(recipe={"module": "reactor.wat", "imports": [0]}, call_path="lean")
def test_wasmlab_reproduce_of_a_random_recipe_exits_0_or_2_with_one_line(folder, recipe, call_path):
    """Through the CLI: measured (exit 0), its variants failed in the table (exit 1, a result or a trap named on stdout),
    or refused in exactly one stderr line (exit 2); never a traceback."""
    path = folder / f"cli{next(_serial)}.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    done = CliRunner().invoke(main, ["reproduce", "--workload", str(path), "--requests", "3", "--repeats", "1", "--warmup", "1",
                                     "--no-save", "--variants", "cached", "--call-path", call_path, "--format", "json"])
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert done.exit_code in (0, 1, 2), (done.exit_code, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    if done.exit_code == 2:
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
