"""WAVE fuzzed: random text and random near-WAVE (records, variants, lists, options, results, strings with escapes good
and bad, numbers out of range, nesting to depth 50) typed against a real component's export types give a value its type
accepts or one line naming the column; every well-typed value of every supported type prints and reads back equal."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import fuzz
from tests.fuzz.guests import signatures
from tests.fuzz.values import same, values
from wasmlab.errors import ConfigError
from wasmlab.workloads.wave import format_call, format_value, parse_call, parse_value, typed

SIGNATURES = signatures()
SHAPES = {name: sig.params[0][1] for name, sig in SIGNATURES.items()}


NUMBERS = st.sampled_from(["0", "-1", "255", "256", "-129", "4294967296", "18446744073709551616", "-9223372036854775809",
                           "0x10", "0xFFFFFFFFFFFFFFFFF", "1.5", "1e400", "-0", "nan", "inf", "-inf", "007", "1e3"]) | \
    st.integers(-(1 << 70), 1 << 70).map(str)
ESCAPES = st.sampled_from(["\\n", "\\t", "\\\\", "\\\"", "\\'", "\\u{41}", "\\u{1F600}", "\\q", "\\u{zz}", "\\u{110000}",
                           "\\u{d800}", "\\u", "\\u{", "\\u{}", "\\u{41", "é", "\x00", "a"])
STRINGS = st.lists(ESCAPES | st.text(st.characters(blacklist_characters='"\\'), max_size=3), max_size=6).map(lambda p: '"' + "".join(p) + '"')
CHARS = st.lists(ESCAPES, min_size=1, max_size=2).map(lambda p: "'" + "".join(p) + "'")
LABELS = st.sampled_from(["low", "high", "none", "%none", "some", "ok", "err", "true", "false", "plain", "num", "text",
                          "nested", "name", "weight", "bonus", "tags", "x-y", "Bad", "%low", "a--b"])


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    items = st.lists(children, max_size=4)
    return st.one_of(
        items.map(lambda xs: "[" + ", ".join(xs) + "]"),
        items.map(lambda xs: "(" + ", ".join(xs) + ")"),
        st.lists(st.tuples(LABELS, children), max_size=4).map(lambda fs: "{" + ", ".join(f"{k}: {v}" for k, v in fs) + "}"),
        st.tuples(LABELS, children).map(lambda c: f"{c[0]}({c[1]})"),
    )


NEAR_WAVE = st.recursive(NUMBERS | STRINGS | CHARS | LABELS, _containers, max_leaves=20)
DEEP = st.tuples(st.integers(1, 50), st.sampled_from(["[", "some(", "(", "ok("]), NEAR_WAVE).map(
    lambda d: d[1] * d[0] + d[2] + {"[": "]", "some(": ")", "(": ",)", "ok(": ")"}[d[1]] * d[0])


def typed_or_one_line(text: str, name: str) -> None:
    """The property: a value its type accepts, or one ConfigError line naming the column."""
    shape = SHAPES[name]
    try:
        value = typed(parse_value(text), shape)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("WAVE value at column "), message
        return
    shape.check(value, "typed")  # what both call paths check before lowering: a typed value must pass it
    assert same(typed(parse_value(format_value(value, shape)), shape), value)


@fuzz(300)
@given(text=NEAR_WAVE | DEEP, name=st.sampled_from(sorted(SHAPES)))
@example(text='"\\u{d800}"', name="take-strings")
@example(text='["\\u{d800}"]', name="take-strings")
@example(text='["\\u"]', name="take-strings")
@example(text='["\\u{zz}"]', name="take-strings")
@example(text='["\\u{110000}"]', name="take-strings")
@example(text='["\\u{41"]', name="take-strings")
@example(text="[[0x10, 1.5]]", name="take-bytes")
@example(text="(true, 'a', 1, 2, 3, 4, 5, 6, 0x10, 1)", name="take-scalars")
@example(text="(true, 'ab', 1, 2, 3, 4, 5, 6, 7, 1)", name="take-scalars")
def test_near_wave_is_a_typed_value_or_one_line_with_its_column(text, name):
    typed_or_one_line(text, name)


@fuzz(150)
@given(text=st.text(max_size=40), name=st.sampled_from(sorted(SHAPES)))
def test_random_text_is_a_typed_value_or_one_line_with_its_column(text, name):
    typed_or_one_line(text, name)


@fuzz(150)
@given(text=st.text(max_size=60))
def test_a_random_call_parses_or_is_one_line(text):
    try:
        parse_call(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("WAVE call at column "), str(exc)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_well_typed_value_prints_and_reads_back_equal(name):
    signature = SIGNATURES[name]
    shape = SHAPES[name]

    @fuzz(40)
    @given(value=values(shape))
    def round_trip(value):
        text = format_value(value, shape)
        assert same(typed(parse_value(text), shape), value), text
        called, trees = parse_call(format_call(name, (value, (0,) * 16), signature.params))
        assert called == name and same(typed(trees[0], shape), value)

    round_trip()
