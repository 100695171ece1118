"""The rules of issue 10, where the TypeScript reference decides: null transcripts,
cosine of identical vectors, the refined number domain, integral integer fields and
one nesting limit for library and CLI."""

from __future__ import annotations

import json
import math
import random
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import run_cli

from agent_rerun import (
    capture,
    cosine,
    decode_embedding,
    encode_embedding,
    jcs_bytes,
    sha256_hex,
    verify,
)
from agent_rerun.embedding import below_threshold
from agent_rerun.errors import ValidationError
from agent_rerun.ijson import loads_ijson

NULL_STEP: dict[str, Any] = {
    "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
    "sampling": {"temperature": 0, "top_p": 1},
    "inputs": {"system_prompt": "s", "messages": []},
    "runtime": {"class": "cloud"},
    "expected": {"transcript": None},
    "tolerance": {"level": "byte"},
}
NULL_ACTUAL = {"inputs": {"system_prompt": "s", "messages": []},
               "output": {"transcript": None}}


def test_null_transcript_is_captured_and_verified() -> None:
    bundle = capture(NULL_STEP)
    assert bundle["expected"]["transcript_sha256"] == sha256_hex(b"null")
    result = verify(bundle, NULL_ACTUAL)
    assert result.verified, result.errors
    missing = verify(bundle, {**NULL_ACTUAL, "output": {}})
    assert missing.errors == ["TranscriptHashMismatch:actual.output.transcript missing"]


def test_null_transcript_beside_an_embedding_is_hashed() -> None:
    step = {**NULL_STEP, "expected": {"transcript": None, "semantic_embedding": "zczMPc3MTD4="},
            "tolerance": {"level": "semantic", "threshold": 1}}
    assert capture(step)["expected"]["transcript_sha256"] == sha256_hex(b"null")


def test_identical_embeddings_pass_threshold_one() -> None:
    step = {**NULL_STEP, "expected": {"semantic_embedding": "zczMPc3MTD4="},
            "tolerance": {"level": "semantic", "threshold": 1}}
    actual = {**NULL_ACTUAL, "output": {"embedding": "zczMPc3MTD4="}}
    result = verify(capture(step), actual)
    assert result.verified, result.errors
    values = decode_embedding("zczMPc3MTD4=")
    assert cosine(values, values) == 1.0


def _reference_cosine(a: list[float], b: list[float]) -> float:
    """The spec's formula as a plain loop, the way the reference computes it."""
    dot = sq_a = sq_b = 0.0
    for x, y in zip(a, b, strict=True):
        dot += x * y
        sq_a += x * x
        sq_b += y * y
    return dot / math.sqrt(sq_a * sq_b)


def test_cosine_is_the_reference_formula_bit_for_bit() -> None:
    rng = random.Random(10)
    for _ in range(300):
        dims = rng.randint(1, 400)
        a = [rng.uniform(-1, 1) for _ in range(dims)]
        b = [rng.uniform(-1, 1) for _ in range(dims)]
        assert cosine(a, b) == _reference_cosine(a, b)
        assert cosine(a, a) == 1.0


def test_cosine_of_float32_arrays_is_the_reference_formula_bit_for_bit() -> None:
    """verify hands cosine the packed float32 arrays; identical ones take a shortcut."""
    rng = random.Random(11)
    for _ in range(300):
        dims = rng.randint(1, 400)
        a = array("f", [rng.uniform(-1, 1) * 10 ** rng.randint(-6, 6) for _ in range(dims)])
        b = array("f", [rng.uniform(-1, 1) for _ in range(dims)])
        assert cosine(a, b) == _reference_cosine(a.tolist(), b.tolist())
        assert cosine(a, array("f", a)) == _reference_cosine(a.tolist(), a.tolist()) == 1.0
        signed_zeros = [-0.0 if x == 0 else x for x in a.tolist()]
        assert cosine(a.tolist(), signed_zeros) == _reference_cosine(a.tolist(), signed_zeros)


def test_verify_compares_the_reference_cosine_exactly() -> None:
    """A threshold equal to the reference's cosine passes; the next double above fails."""
    rng = random.Random(12)
    for _ in range(20):
        a = [rng.uniform(-1, 1) for _ in range(64)]
        b = [x + rng.uniform(-0.3, 0.3) for x in a]
        expected, got = encode_embedding(a), encode_embedding(b)
        exact = _reference_cosine(decode_embedding(expected), decode_embedding(got))
        for threshold, verified in ((exact, True), (math.nextafter(exact, 2), False)):
            step = {**NULL_STEP, "expected": {"semantic_embedding": expected},
                    "tolerance": {"level": "semantic", "threshold": threshold}}
            result = verify(capture(step), {**NULL_ACTUAL, "output": {"embedding": got}})
            assert result.verified is verified, (threshold, result.errors)


@pytest.mark.parametrize("number", [10000000000000000, 1152921504606847000, 2**53,
                                    -10000000000000000])
def test_integers_that_are_a_doubles_digits_are_in(number: int) -> None:
    assert jcs_bytes(number) == str(number).encode()
    assert loads_ijson(str(number).encode()) == number


@pytest.mark.parametrize("number", [2**53 + 1, 12345678901234567, 2**60])
def test_integers_a_float64_reader_changes_are_out(number: int) -> None:
    step = json.loads(json.dumps(NULL_STEP))
    step["inputs"]["messages"] = [{"n": number}]
    with pytest.raises(ValidationError, match=r"step\.inputs\.messages\[0\]\.n"):
        capture(step)
    with pytest.raises(Exception, match=str(number)):
        loads_ijson(json.dumps({"n": number}).encode())


def test_integral_float_in_a_message_is_hashed_as_the_reference_writes_it() -> None:
    step = json.loads(json.dumps(NULL_STEP))
    step["inputs"]["messages"] = [{"x": 1e16}]
    bundle = capture(step)
    assert bundle["inputs"]["messages_sha256"] == sha256_hex(b'[{"x":10000000000000000}]')


@pytest.mark.parametrize(("field", "given", "written"),
                         [("seed", 42.0, 42), ("max_tokens", 1e3, 1000), ("seed", 4.2e1, 42)])
def test_integer_fields_take_integral_numbers(field: str, given: float, written: int) -> None:
    step = json.loads(json.dumps(NULL_STEP))
    step["sampling"][field] = given
    bundle = capture(step)
    assert bundle["sampling"][field] == written and type(bundle["sampling"][field]) is int
    assert f'"{field}":{written}'.encode() in jcs_bytes(bundle)


@pytest.mark.parametrize("value", [42.5, True])
def test_integer_fields_refuse_fractions_and_booleans(value: Any) -> None:
    step = json.loads(json.dumps(NULL_STEP))
    step["sampling"]["seed"] = value
    with pytest.raises(ValidationError, match=r"sampling\.seed"):
        capture(step)


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [196, 197, 198, 199])
def test_library_and_cli_share_one_nesting_limit(levels: int, tmp_path: Path) -> None:
    step = json.loads(json.dumps(NULL_STEP))
    step["inputs"]["messages"] = _nested(levels)
    try:
        capture(step)
        library_accepts = True
    except ValidationError:
        library_accepts = False
    path = tmp_path / "step.json"
    path.write_text(json.dumps(step))
    run = run_cli("capture", path, "-o", tmp_path / "out.rr")
    assert "Traceback" not in run.stderr
    assert (run.returncode == 0) is library_accepts, (levels, run.stderr)
    # messages is itself the outermost list, at depth 2: 198 lists reach depth 199.
    assert library_accepts is (levels <= 198)


_FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
#: Values of very different sizes in one vector: the estimate's hardest cases.
_SCALED = st.builds(lambda x, scale: float(array("f", [x * scale])[0]),
                    st.floats(-1, 1, width=32), st.sampled_from([1.0, 1e-30, 1e-20, 1e20, 1e30]))


@st.composite
def _vector_pairs(draw: st.DrawFn) -> tuple[array[float], array[float]]:
    # Up to a few of the estimate's 64-value pieces, with and without a shorter last one.
    dims = draw(st.one_of(st.integers(1, 80), st.sampled_from([63, 64, 65, 128, 129, 200])))
    a = draw(st.lists(st.one_of(_FLOAT32, _SCALED, st.floats(-1, 1, width=32)),
                      min_size=dims, max_size=dims))
    how = draw(st.sampled_from(["near", "random", "orthogonal", "scaled", "same"]))
    if how == "near":  # a replay: close to the expected vector, cosine near 1
        noise = draw(st.floats(0, 0.1))
        b = [x + draw(st.floats(-1, 1)) * noise * abs(x) for x in a]
    elif how == "orthogonal" and dims >= 2:  # cosine near 0, where the dot cancels
        b = [-a[1], a[0], *([0.0] * (dims - 2))]
    elif how == "scaled":
        b = [x * draw(st.sampled_from([1e-30, 3.0, 1e30])) for x in a]
    elif how == "same":
        b = list(a)
    else:
        b = draw(st.lists(_FLOAT32, min_size=dims, max_size=dims))
    packed_a, packed_b = array("f", a), array("f", [min(max(y, -3e38), 3e38) for y in b])
    assume(any(packed_a) and any(packed_b))
    assume(all(map(math.isfinite, packed_a)) and all(map(math.isfinite, packed_b)))
    return packed_a, packed_b


@settings(max_examples=1000, deadline=None)
@given(pair=_vector_pairs(), where=st.sampled_from(["at", "below", "above", "near", "any"]),
       offset=st.floats(-1e-9, 1e-9), anywhere=st.floats(-1, 1))
def test_verify_decides_the_threshold_exactly_as_the_reference_cosine(
        pair: tuple[array[float], array[float]], where: str, offset: float,
        anywhere: float) -> None:
    """``below_threshold`` (verify's decision) may decide from a cheaper estimate;
    whatever the vectors and the threshold, the decision and the printed value are
    those of the reference's left-to-right loop, to the last bit."""
    a, b = pair
    exact = _reference_cosine(a.tolist(), b.tolist())
    assume(math.isfinite(exact))
    threshold = {"at": exact, "below": math.nextafter(exact, -2),
                 "above": math.nextafter(exact, 2), "near": exact + offset,
                 "any": anywhere}[where]
    got = below_threshold(a, b, threshold)
    if exact < threshold:
        assert got is not None and got == exact and f"{got:.4f}" == f"{exact:.4f}"
    else:
        assert got is None


@settings(max_examples=600, deadline=None)
@given(pair=_vector_pairs())
def test_the_estimate_is_within_half_its_margin_of_the_reference(
        pair: tuple[array[float], array[float]]) -> None:
    """The margin is more than twice the error bound it is derived from, so an
    estimate farther than half of it from the reference means the derivation
    (or the code) is wrong, whatever the threshold."""
    from agent_rerun.embedding import _estimate

    a, b = pair
    exact = _reference_cosine(a.tolist(), b.tolist())
    estimate = _estimate(a, b)
    assume(math.isfinite(exact))
    if estimate is None:  # declined: cosine itself decides, nothing to bound
        return
    similarity, margin = estimate
    assert abs(similarity - exact) <= margin / 2


def test_the_estimate_decides_real_embeddings_far_from_the_threshold() -> None:
    """The shortcut is taken where it is meant to be (3,072 dims, cosine ~0.99),
    and declines thresholds within its error bound of the value."""
    from agent_rerun.embedding import _estimate

    rng = random.Random(13)
    a = array("f", [rng.uniform(-1, 1) for _ in range(3072)])
    b = array("f", [x + rng.uniform(-0.05, 0.05) for x in a])
    estimate = _estimate(a, b)
    assert estimate is not None
    similarity, margin = estimate
    exact = _reference_cosine(a.tolist(), b.tolist())
    assert abs(similarity - exact) <= margin < 1e-11
    assert below_threshold(a, b, 0.9) is None
    assert below_threshold(a, b, exact) is None
    assert below_threshold(a, b, math.nextafter(exact, 2)) == exact
