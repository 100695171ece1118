"""The fast JCS path must give exactly rfc8785's bytes (or its exception) for every value."""

from __future__ import annotations

import enum
import math
import sys
from collections import OrderedDict
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_rerun.canonical import jcs_bytes
from agent_rerun.jsonvalue import integer_in_domain

SAFE = 2**53 - 1

#: Characters that stress escaping and UTF-16 key order: controls, quotes, the
#: U+E000..U+FFFF block (sorts after surrogates in UTF-16) and astral characters.
_TRICKY = st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "/", "\b", "\f", "\n", "\r", "\t",
                           "\u2028", "\ud7ff", "\ue000", "\uffff", "\ufeff", "\U00010000",
                           "\U0001f600", "\U0010ffff", "é", "a", "Z", "0"])
_TEXT = st.text(st.one_of(_TRICKY, st.characters()), max_size=12)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.1, 1e-7, 1e-6, 1e-5, 1e-4, 1e15, 1e16, 1e20, 1e21,
                     1e22, 5e-324, 1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 123.456,
                     0.000123, 333333333.33333329]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-SAFE, SAFE), _FLOATS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=40,
)


def _as_doubles(value: Any) -> Any:
    """Integers rfc8785 refuses but the domain admits (JCS's own digits of a double)
    given to rfc8785 as the double they spell."""
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_doubles(item) for item in value]
    if type(value) is int and abs(value) > SAFE and integer_in_domain(value):
        return float(value)
    return value


def _same_as_reference(value: Any) -> None:
    try:
        expected = rfc8785.dumps(_as_doubles(value))
    except Exception as exc:  # the fast path must fail the same way
        with pytest.raises(type(exc)):
            jcs_bytes(value)
        return
    assert jcs_bytes(value) == expected


@settings(max_examples=600, deadline=None)
@given(_JSON)
def test_arbitrary_json_values_match_rfc8785(value: Any) -> None:
    _same_as_reference(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, st.integers(0, 9), min_size=2, max_size=8))
def test_key_order_is_utf16_order(value: dict[str, int]) -> None:
    _same_as_reference(value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.text(st.characters(categories=["Cs", "Ll"]))))
def test_values_outside_the_jcs_domain_fail_like_rfc8785(value: Any) -> None:
    # Huge integers, NaN/infinity and lone surrogates: same exception type, no output.
    _same_as_reference(value)
    _same_as_reference({"k": [value]})


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


@pytest.mark.parametrize("value", [
    {"\ue000": 1, "\U0001f600": 2, "a": 3},  # code-point and UTF-16 order differ here
    {"\U0001f600": [1.5, -0.0, 1e21, 1e-7], "\uffff": None},
    (1, "two", [3.0]),  # tuples are arrays in rfc8785
    OrderedDict([("b", 1), ("a", 2)]),
    {"colour": Colour.RED, "name": Name("x")},
    [True, False, None, SAFE, -SAFE],
    {1: "non-string key"},
    [SAFE + 1],
    [math.nan],
    [math.inf],
    ["\udc00 lone surrogate"],
    {"\ud800": 1, "b": 2},
    [object()],
    "\x00\x01\x1f\x7f\"\\ \u2028 \U0001f600",
])
def test_edge_values_match_rfc8785(value: Any) -> None:
    _same_as_reference(value)


def test_deep_nesting_fails_like_rfc8785() -> None:
    value: Any = []
    for _ in range(sys.getrecursionlimit() + 100):
        value = [value]
    with pytest.raises(RecursionError):
        rfc8785.dumps(value)
    with pytest.raises(RecursionError):
        jcs_bytes(value)


def test_large_mixed_script_value_matches() -> None:
    text = "plain, Кириллица, 日本語, emoji 😀🚀, escapes \n\t\"\\ and \x01 " * 500
    value = {"messages": [{"role": "user", "content": text, "n": i, "p": i / 7}
                          for i in range(50)]}
    assert jcs_bytes(value) == rfc8785.dumps(value)
