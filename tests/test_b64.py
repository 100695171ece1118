"""Strict base64: exactly one accepted spelling per byte string.

``decode_strict`` re-encodes only the final group; these tests hold it to the
plain definition (decode strictly, re-encode everything, compare).
"""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_rerun.b64 import Base64Error, decode_strict, decode_strict_or_none

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\t.*\x00"


def by_definition(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def ours(text: str) -> bytes | None:
    try:
        return decode_strict(text)
    except Base64Error:
        return None


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=16))
def test_arbitrary_text_matches_the_definition(text: str) -> None:
    assert ours(text) == by_definition(text)


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=24), edit=st.tuples(st.integers(0, 40), st.sampled_from(ALPHABET)),
       suffix=st.sampled_from(["", "=", "==", "A", "A=", "\n"]))
def test_near_misses_of_real_encodings_match_the_definition(
        data: bytes, edit: tuple[int, str], suffix: str) -> None:
    text = base64.b64encode(data).decode("ascii")
    position, char = edit
    if text and position < len(text):
        text = text[:position] + char + text[position + 1:]
    text += suffix
    assert ours(text) == by_definition(text)


@pytest.mark.parametrize("text", ["AQ==", "AQE=", "AQEB", ""])
def test_canonical_spellings_decode(text: str) -> None:
    assert decode_strict(text) == base64.b64decode(text)


@pytest.mark.parametrize("text", ["AR==", "AQF=", "AQ=", "AQ", "AQEB=", "AQ==\n", " AQ==", "AQ-B"])
def test_other_spellings_are_refused(text: str) -> None:
    with pytest.raises(Base64Error):
        decode_strict(text)


def test_length_refuses_the_wrong_size_with_the_size_in_the_message() -> None:
    assert decode_strict("AQE=", length=2) == b"\x01\x01"
    with pytest.raises(Base64Error, match="exactly 3 bytes"):
        decode_strict("AQE=", length=3)


@pytest.mark.parametrize(("text", "length", "expected"), [
    ("AQE=", None, b"\x01\x01"), ("AQE=", 2, b"\x01\x01"), ("AQE=", 32, None),
    ("AQF=", None, None), ("é", None, None), (" AQ==", 1, None),
])
def test_or_none_is_decode_strict_without_the_exception(
        text: str, length: int | None, expected: bytes | None) -> None:
    assert decode_strict_or_none(text, length=length) == expected
