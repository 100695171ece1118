"""Capture and verify check hashed content while encoding it, instead of walking it twice.

These tests pin that shortcut to the full rules: for any value, the checked hash
refuses exactly what ``check_json_value`` refuses, and otherwise equals the hash
of the reference encoding.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import SAMPLE_ACTUAL, SAMPLE_STEP

from agent_rerun import CaptureOptions, ValidationError, capture, sha256_hex, verify
from agent_rerun.canonical import checked_sha256_of_jcs
from agent_rerun.jsonvalue import MAX_DEPTH, check_json_value
from agent_rerun.schema import validate_bundle

KEY = bytes(range(32))

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(), max_size=8),  # includes lone surrogates
    st.sampled_from([2.0**53 + 2, 1e20, -1e20, 1e21, 5e-324, -0.0, (1, 2), b"x"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_checked_hash_refuses_exactly_what_the_walk_refuses(value: Any) -> None:
    try:
        check_json_value(value, "$")
    except ValidationError as walk_error:
        with pytest.raises(ValidationError) as hash_error:
            checked_sha256_of_jcs(value, "$")
        assert str(hash_error.value) == str(walk_error)
    else:
        assert checked_sha256_of_jcs(value, "$") == sha256_hex(rfc8785.dumps(_as_doubles(value)))


def _as_doubles(value: Any) -> Any:
    """In-domain integers past 2**53 - 1 (refused by rfc8785) as the doubles they spell."""
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_doubles(item) for item in value]
    if type(value) is int and abs(value) > 2**53 - 1:
        return float(value)
    return value


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 5000])
def test_depth_limit_is_the_same_on_both_paths(levels: int) -> None:
    value = nested(levels)
    walk_refuses = True
    try:
        check_json_value(value, "$")
        walk_refuses = False
    except ValidationError:
        pass
    if walk_refuses:
        with pytest.raises(ValidationError, match="nested deeper"):
            checked_sha256_of_jcs(value, "$")
    else:
        assert checked_sha256_of_jcs(value, "$").startswith("sha256:")


BAD_VALUES = {
    "lone surrogate": "\ud800",
    "integer past 2**53-1": 2**53 + 1,
    # str() of it raises (sys.get_int_max_str_digits): the error must still name it.
    "integer of 5,001 digits": 10**5000,
    "negative integer of 5,001 digits": -(10**5000),
    "NaN": math.nan,
    "tuple": (1, 2),
    "deep": nested(MAX_DEPTH + 5),
}


@pytest.mark.parametrize("label", sorted(BAD_VALUES))
def test_capture_names_the_hashed_field(label: str) -> None:
    step = copy.deepcopy(SAMPLE_STEP)
    step["inputs"]["messages"][0]["content"] = BAD_VALUES[label]
    with pytest.raises(ValidationError) as caught:
        capture(step, CaptureOptions(signing_key=KEY))
    assert caught.value.path.startswith("step.inputs.messages[0].content")


@pytest.mark.parametrize("label", sorted(BAD_VALUES))
def test_verify_reports_a_schema_violation_for_hashed_fields(label: str) -> None:
    bundle = capture(SAMPLE_STEP, CaptureOptions(signing_key=KEY))
    for place in ("messages", "transcript"):
        actual = copy.deepcopy(SAMPLE_ACTUAL)
        if place == "messages":
            actual["inputs"]["messages"][0]["content"] = BAD_VALUES[label]
            where = "actual.inputs.messages[0].content"
        else:
            actual["output"]["transcript"]["messages"][0]["content"] = BAD_VALUES[label]
            where = "actual.output.transcript.messages[0].content"
        result = verify(bundle, actual)
        assert not result.verified
        assert len(result.errors) == 1, result.errors
        assert result.errors[0].startswith(f"SchemaViolation:actual: {where}"), result.errors


def test_unhashed_transcript_is_still_walked_for_semantic_bundles() -> None:
    from agent_rerun import encode_embedding

    step = copy.deepcopy(SAMPLE_STEP)
    step["expected"] = {"semantic_embedding": encode_embedding([1, 0])}
    step["tolerance"] = {"level": "semantic", "threshold": 0.9}
    bundle = capture(step, CaptureOptions(signing_key=KEY))
    actual = {"inputs": copy.deepcopy(SAMPLE_STEP["inputs"]),
              "output": {"embedding": encode_embedding([1, 0]), "transcript": "\udfff"}}
    assert verify(bundle, actual).errors[0].startswith(
        "SchemaViolation:actual: actual.output.transcript")


def _signed_bundle() -> dict[str, Any]:
    return capture(SAMPLE_STEP, CaptureOptions(signing_key=KEY))


#: Where a bad value goes in a signed bundle, with a second change (or none)
#: that the plain order (every value first, then the schema) ranks after it.
BUNDLE_PLACES: dict[str, Any] = {
    "model.id": lambda b, v: b["model"].__setitem__("id", v),
    "sampling.temperature": lambda b, v: b["sampling"].__setitem__("temperature", v),
    "signature.sig": lambda b, v: b["signature"].__setitem__("sig", v),
    "tolerance.level": lambda b, v: b["tolerance"].__setitem__("level", v),
    "a new member": lambda b, v: b["model"].__setitem__("extra", v),
    "signature.sig and tolerance.level": lambda b, v: (
        b["signature"].__setitem__("sig", v), b["tolerance"].__setitem__("level", v)),
    "tolerance.level, signature first": lambda b, v: (
        b.__setitem__("signature", b.pop("signature")), b.__setitem__("tolerance", b.pop(
            "tolerance")), b["tolerance"].__setitem__("level", v),
        b["signature"].__setitem__("alg", v)),
}


@pytest.mark.parametrize("label", sorted(BAD_VALUES))
@pytest.mark.parametrize("place", sorted(BUNDLE_PLACES))
def test_a_signed_bundle_reports_what_the_plain_order_reports(label: str, place: str) -> None:
    """verify writes a signed bundle's signed bytes while checking its values:
    the error must be the one a walk of every value, then the schema, names."""
    bundle = _signed_bundle()
    BUNDLE_PLACES[place](bundle, BAD_VALUES[label])
    with pytest.raises(ValidationError) as plain:
        validate_bundle(bundle)
    result = verify(bundle, copy.deepcopy(SAMPLE_ACTUAL))
    assert result.errors == [f"SchemaViolation:bundle: {plain.value}"]


def test_a_signed_bundle_with_a_schema_error_only_names_the_schema() -> None:
    bundle = _signed_bundle()
    bundle["rerun_version"] = "0.2"
    bundle["model"]["extra"] = 1
    with pytest.raises(ValidationError) as plain:
        validate_bundle(bundle)
    assert "rerun_version" in str(plain.value)
    assert verify(bundle, copy.deepcopy(SAMPLE_ACTUAL)).errors == [
        f"SchemaViolation:bundle: {plain.value}"]


def test_a_signed_bundle_of_int_subclasses_still_verifies() -> None:
    """A value the fast encoder declines but the domain admits takes the reference path."""
    import enum

    class Seed(enum.IntEnum):
        FORTY_TWO = 42

    bundle = _signed_bundle()
    assert bundle["sampling"]["seed"] == 42
    bundle["sampling"]["seed"] = Seed.FORTY_TWO
    assert verify(bundle, copy.deepcopy(SAMPLE_ACTUAL)).verified
