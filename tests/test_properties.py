"""Properties over generated inputs: round trips, tamper detection, and never raising."""

from __future__ import annotations

import copy
import datetime
import decimal
import fractions
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agent_rerun import (
    CaptureOptions,
    VerifyResult,
    capture,
    encode_embedding,
    jcs_bytes,
    verify,
)
from agent_rerun.errors import InputError
from agent_rerun.ijson import loads_ijson
from agent_rerun.jsonvalue import MAX_SAFE_INTEGER

KEY = b"\x01" * 32
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------ strategies

#: Any Unicode scalar value (non-BMP included), never a lone surrogate.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NON_EMPTY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
SAFE_INT = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
#: Finite floats whose JCS text never reads back as an out-of-range integer.
SAFE_FLOAT = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: not (x.is_integer() and MAX_SAFE_INTEGER < abs(x) < 1e21))
NUMBER = st.one_of(SAFE_INT, SAFE_FLOAT)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBER, TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=12,
)
NON_NULL_JSON = JSON.filter(lambda value: value is not None)
EMBEDDING = st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False),
                     min_size=1, max_size=8).filter(any)


@st.composite
def expectations(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(expected, tolerance) in one of the three levels' valid shapes."""
    level = draw(st.sampled_from(["byte", "semantic", "structural"]))
    expected: dict[str, Any] = {}
    tolerance: dict[str, Any] = {"level": level}
    want_transcript = level == "byte" or draw(st.booleans())
    want_embedding = level == "semantic" or draw(st.booleans())
    if want_transcript:
        expected["transcript"] = draw(NON_NULL_JSON if level == "byte" else JSON)
    if want_embedding:
        expected["semantic_embedding"] = encode_embedding(draw(EMBEDDING))
    if level == "semantic" or draw(st.booleans()):
        # A replay of the very same vector has cosine 1 up to rounding, so stay below it.
        tolerance["threshold"] = draw(st.floats(-1, 0.999) if level == "semantic"
                                      else st.floats(-1, 1))
    return expected, tolerance


@st.composite
def step_records(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.fixed_dictionaries({"vendor": NON_EMPTY_TEXT, "id": NON_EMPTY_TEXT},
                                       optional={"fingerprint": TEXT}))
    sampling = draw(st.fixed_dictionaries(
        {"temperature": NUMBER, "top_p": NUMBER},
        optional={"seed": SAFE_INT, "max_tokens": st.integers(1, MAX_SAFE_INTEGER)}))
    inputs = draw(st.fixed_dictionaries(
        {"system_prompt": TEXT, "messages": st.lists(JSON, max_size=4)},
        optional={"tools": st.lists(JSON, max_size=3)}))
    runtime = draw(st.fixed_dictionaries(
        {"class": st.sampled_from(["cloud", "local-vllm", "local-transformers"])},
        optional={"tool_versions": st.dictionaries(TEXT, TEXT, max_size=3)}))
    expected, tolerance = draw(expectations())
    return {"model": model, "sampling": sampling, "inputs": inputs, "runtime": runtime,
            "expected": expected, "tolerance": tolerance}


def faithful_actual(step: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = {}
    if "transcript" in step["expected"]:
        output["transcript"] = copy.deepcopy(step["expected"]["transcript"])
    if "semantic_embedding" in step["expected"]:
        output["embedding"] = step["expected"]["semantic_embedding"]
    actual: dict[str, Any] = {"inputs": copy.deepcopy(step["inputs"]), "output": output}
    if "fingerprint" in step["model"]:
        actual["runtime"] = {"fingerprint": step["model"]["fingerprint"]}
    return actual


# ------------------------------------------------------------------ round trips


@SETTINGS
@given(step=step_records(), sign=st.booleans())
def test_capture_then_verify_round_trips(step: dict[str, Any], sign: bool) -> None:
    bundle = capture(step, CaptureOptions(signing_key=KEY if sign else None))
    actual = faithful_actual(step)
    expected_errors = (["UnsupportedTolerance:structural"]
                       if step["tolerance"]["level"] == "structural" else [])
    result = verify(bundle, actual)
    assert result.errors == expected_errors and result.warnings == []
    # The same through the bytes on disk: JCS out, our I-JSON reader back in.
    reread_bundle = loads_ijson(jcs_bytes(bundle), "bundle.rr")
    reread_actual = loads_ijson(jcs_bytes(actual), "actual.json")
    assert reread_bundle == bundle
    assert verify(reread_bundle, reread_actual).errors == expected_errors
    assert jcs_bytes(reread_bundle) == jcs_bytes(bundle)


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        return [p for key, child in value.items() for p in _leaf_paths(child, (*prefix, key))]
    return [prefix]


def _replacement(old: Any, data: st.DataObject) -> Any:
    """A different JSON value of a plausible kind for the field being mutated."""
    new = data.draw(st.one_of(st.sampled_from([0, 1, 0.5, -1, "x", "", True, None]), JSON))
    if isinstance(old, str) and old:
        new = data.draw(st.sampled_from([old[:-1], old + "0", old.upper(), old.swapcase(), new]))
    assume(type(new) is not type(old) or new != old)
    return new


@SETTINGS
@given(step=step_records(), data=st.data())
def test_mutating_any_signed_field_breaks_the_signature(step: dict[str, Any],
                                                        data: st.DataObject) -> None:
    bundle = capture(step, CaptureOptions(signing_key=KEY))
    paths = [p for p in _leaf_paths(bundle) if p[0] != "signature"]
    path = data.draw(st.sampled_from(paths))
    mutated = copy.deepcopy(bundle)
    target = mutated
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = _replacement(target[path[-1]], data)
    assume(jcs_bytes(mutated) != jcs_bytes(bundle))  # e.g. 1 -> 1.0 is the same bundle
    result = verify(mutated, faithful_actual(step))
    assert not result.verified
    first = result.errors[0]
    # Either the edit broke the schema (checked first), or the signature catches it.
    assert first.startswith(("BadSignature:", "SchemaViolation:bundle")), result.errors
    if not first.startswith("SchemaViolation"):
        assert first == "BadSignature:signature does not match payload"


def _valid_change(path: tuple[Any, ...], old: Any) -> Any:
    """Another value of the same kind that keeps the bundle schema-valid."""
    if isinstance(old, str) and old.startswith("sha256:"):
        return old[:-1] + ("0" if old[-1] != "0" else "1")
    if path == ("runtime", "class"):
        return "cloud" if old != "cloud" else "local-vllm"
    if path == ("expected", "semantic_embedding"):
        return encode_embedding([2.0, 1.0]) if old != encode_embedding([2.0, 1.0]) else (
            encode_embedding([1.0]))
    if isinstance(old, str):
        return old + "x"
    if isinstance(old, int):
        # Step towards zero-ish but stay in range (max_tokens must stay >= 1).
        lower = old == MAX_SAFE_INTEGER or (old > 0 and path[-1] != "max_tokens")
        return old - 1 if lower else old + 1
    if path == ("tolerance", "threshold"):
        return old / 2 if old else 0.5
    return -old if old else 1.0


@SETTINGS
@given(step=step_records(), data=st.data())
def test_any_schema_preserving_edit_is_a_bad_signature(step: dict[str, Any],
                                                       data: st.DataObject) -> None:
    """The C3 property for every field: still a valid bundle, but no longer the signed one."""
    bundle = capture(step, CaptureOptions(signing_key=KEY))
    paths = [p for p in _leaf_paths(bundle)
             if p[0] not in ("signature", "rerun_version") and p != ("tolerance", "level")
             and not (isinstance(_at(bundle, p), dict))]
    path = data.draw(st.sampled_from(paths))
    mutated = copy.deepcopy(bundle)
    parent = _at(mutated, path[:-1])
    parent[path[-1]] = _valid_change(path, parent[path[-1]])
    assert jcs_bytes(mutated) != jcs_bytes(bundle)
    result = verify(mutated, faithful_actual(step))
    assert result.errors[0] == "BadSignature:signature does not match payload", result.errors


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@SETTINGS
@given(step=step_records(), data=st.data())
def test_adding_or_removing_a_field_is_caught(step: dict[str, Any], data: st.DataObject) -> None:
    bundle = capture(step, CaptureOptions(signing_key=KEY))
    mutated = copy.deepcopy(bundle)
    section = data.draw(st.sampled_from(["model", "sampling", "runtime", "tolerance",
                                         "expected", "inputs"]))
    optional = {"model": "fingerprint", "sampling": "seed", "runtime": "tool_versions",
                "tolerance": "threshold", "expected": "semantic_embedding",
                "inputs": "tools_sha256"}[section]
    if optional in mutated[section]:
        del mutated[section][optional]
    else:
        mutated[section][optional] = {"model": "fp", "sampling": 7, "runtime": {},
                                      "tolerance": 0.5,
                                      "expected": encode_embedding([1.0]),
                                      "inputs": "sha256:" + "0" * 64}[section]
    result = verify(mutated, faithful_actual(step))
    assert not result.verified
    assert result.errors[0].startswith(("BadSignature:", "SchemaViolation:bundle"))


# ------------------------------------------------------------------ never raises

ANY_PYTHON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
        st.complex_numbers(), st.decimals(), st.fractions(), st.dates(), st.datetimes(),
        st.just(object()), st.just(Ellipsis), st.just(math.nan), st.just(type),
        st.sampled_from([decimal.Decimal("NaN"), fractions.Fraction(1, 3),
                         datetime.timedelta(1), frozenset({1}), bytearray(b"x")]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(), st.none(), st.booleans(),
                                  st.sampled_from(["inputs", "output", "rerun_version",
                                                   "signature", "tolerance"])),
                        children, max_size=4),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=15,
)


@SETTINGS
@given(bundle=ANY_PYTHON, actual=ANY_PYTHON)
def test_verify_never_raises_on_any_python_values(bundle: Any, actual: Any) -> None:
    result = verify(bundle, actual)
    assert isinstance(result, VerifyResult)
    assert not result.verified and result.errors
    # A crash comes back as an InternalError result: that must never happen either.
    assert not any(error.startswith("InternalError") for error in result.errors), result.errors


@SETTINGS
@given(step=step_records(), data=st.data())
def test_verify_never_raises_when_parts_are_replaced(step: dict[str, Any],
                                                    data: st.DataObject) -> None:
    """Near-valid inputs reach deeper checks than random ones: swap one part for junk."""
    bundle = capture(step, CaptureOptions(signing_key=KEY))
    actual = faithful_actual(step)
    target = data.draw(st.sampled_from([bundle, actual]))
    paths = _leaf_paths(target)
    path = data.draw(st.sampled_from(paths))
    node = target
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(st.one_of(JSON, ANY_PYTHON))
    result = verify(bundle, actual)
    assert isinstance(result, VerifyResult)
    assert result.verified is (not result.errors)
    assert not any(error.startswith("InternalError") for error in result.errors), result.errors


@SETTINGS
@given(bundle=JSON, actual=JSON)
def test_verify_never_raises_on_arbitrary_json(bundle: Any, actual: Any) -> None:
    result = verify(bundle, actual)
    assert not result.verified
    assert not any(error.startswith("InternalError") for error in result.errors)


@SETTINGS
@given(data=st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    JSON.map(lambda v: jcs_bytes(v)).flatmap(
        lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut] + b'{"a":1,"a":2}')),
    st.lists(st.sampled_from([b"[", b"{", b'"', b"\\u", b"d800", b"NaN", b"1e999", b"-",
                              b"9" * 20, b",", b":", b"}", b"]", b"\xef\xbb\xbf", b"\xff"]),
             max_size=30).map(b"".join),
))
def test_ijson_loader_raises_only_input_error(data: bytes) -> None:
    try:
        loads_ijson(data, "fuzz.json")
    except InputError as exc:
        assert str(exc).startswith("fuzz.json")
        assert "\n" not in str(exc)


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [1e-30, 1e30], [0.1] * 384])
def test_identical_embeddings_have_cosine_close_to_one(values: list[float]) -> None:
    from agent_rerun import cosine, decode_embedding

    decoded = decode_embedding(encode_embedding(values))
    assert math.isclose(cosine(decoded, decoded), 1.0, rel_tol=1e-12)
