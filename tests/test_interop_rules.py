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
