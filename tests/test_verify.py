"""verify(): the order, every error code as the spec spells it, and never an exception."""

from __future__ import annotations

import base64
import copy
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from samples import SAMPLE_ACTUAL
from support import OUR_VECTORS

from agent_rerun import (
    CaptureOptions,
    VerifyResult,
    capture,
    encode_embedding,
    sign_bundle,
    verify,
    verify_bundle_signature,
    verify_files,
)
from agent_rerun.signature import SignatureError, check_ed25519, is_small_order

C1 = OUR_VECTORS / "c1-byte-replay-passes"


KEY = b"\x01" * 32
P = 2**255 - 19
IDENTITY = b"\x01" + b"\x00" * 31


def step(**changes: Any) -> dict[str, Any]:
    base = {
        "model": {"vendor": "v", "id": "m", "fingerprint": "fp_a"},
        "sampling": {"temperature": 0, "top_p": 1},
        "inputs": {"system_prompt": "sys", "messages": [{"role": "user", "content": "hi"}]},
        "runtime": {"class": "cloud"},
        "expected": {"transcript": {"text": "hello"}},
        "tolerance": {"level": "byte"},
    }
    base.update(changes)
    return base


def semantic(threshold: float = 0.9, values: tuple[float, ...] = (1, 0, 0)) -> dict[str, Any]:
    return step(expected={"semantic_embedding": encode_embedding(values)},
                tolerance={"level": "semantic", "threshold": threshold})


def actual_for(step_record: dict[str, Any], **output: Any) -> dict[str, Any]:
    return {"inputs": copy.deepcopy(step_record["inputs"]),
            "output": output or {"transcript": copy.deepcopy(step_record["expected"].get(
                "transcript"))}}


def signed(step_record: dict[str, Any]) -> dict[str, Any]:
    return capture(step_record, CaptureOptions(signing_key=KEY))


def test_round_trip_names_the_signer() -> None:
    result = verify(signed(step()), actual_for(step()))
    assert result == VerifyResult(True, [], [], result.signer)
    assert result.signer is not None
    assert result.signer.public_key == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    assert result.signer.fingerprint.startswith("SHA256:")
    assert result.to_json()["signer"]["public_key"] == result.signer.public_key


def test_unsigned_bundle_verifies_without_a_signer() -> None:
    result = verify(capture(step()), actual_for(step()))
    assert result.verified and result.signer is None
    assert "signer" not in result.to_json()


def test_all_applicable_errors_are_collected_in_spec_order() -> None:
    bundle = signed(step(inputs={"system_prompt": "s", "messages": [], "tools": [1]}))
    bundle["sampling"]["temperature"] = 0.5
    actual = {"inputs": {"system_prompt": "other", "messages": [1], "tools": [2]},
              "output": {"transcript": "different"}}
    result = verify(bundle, actual)
    assert not result.verified
    codes = [error.split(":")[0] for error in result.errors]
    assert codes == ["BadSignature", "InputHashMismatch", "InputHashMismatch",
                     "InputHashMismatch", "TranscriptHashMismatch"]
    assert result.errors[1:4] == ["InputHashMismatch:system_prompt_sha256",
                                  "InputHashMismatch:messages_sha256",
                                  "InputHashMismatch:tools_sha256"]


def test_schema_failure_stops_verification() -> None:
    bundle = signed(step())
    bundle["extra"] = 1
    result = verify(bundle, {"inputs": {}, "output": {}})
    assert len(result.errors) == 1 and result.errors[0].startswith("SchemaViolation:bundle: ")
    result = verify(signed(step()), {"inputs": {}, "output": {}})
    assert len(result.errors) == 1 and result.errors[0].startswith("SchemaViolation:actual: ")


def test_tools_hash_both_ways() -> None:
    with_tools = step(inputs={"system_prompt": "s", "messages": [], "tools": [{"n": 1}]})
    no_tools_actual = actual_for(with_tools)
    del no_tools_actual["inputs"]["tools"]
    assert verify(capture(with_tools), no_tools_actual).errors == [
        "InputHashMismatch:tools_sha256"]
    extra_tools_actual = actual_for(step())
    extra_tools_actual["inputs"]["tools"] = []
    [error] = verify(capture(step()), extra_tools_actual).errors
    assert error.startswith("InputHashMismatch:tools_sha256")


def test_hashes_ignore_spelling_but_not_content() -> None:
    """Key order in the actual does not matter (JCS); one changed character does."""
    record = step(inputs={"system_prompt": "s", "messages": [{"a": 1, "b": 2.0}]})
    actual = actual_for(record)
    actual["inputs"]["messages"] = [{"b": 2, "a": 1.0}]
    assert verify(capture(record), actual).verified
    actual["inputs"]["messages"] = [{"b": 2, "a": 1.5}]
    assert verify(capture(record), actual).errors == ["InputHashMismatch:messages_sha256"]


def test_transcript_mismatch_and_missing() -> None:
    bundle = capture(step())
    assert verify(bundle, actual_for(step(), transcript={"text": "hello!"})).errors == [
        "TranscriptHashMismatch"]
    [error] = verify(bundle, actual_for(step(), embedding=encode_embedding([1]))).errors
    assert error.startswith("TranscriptHashMismatch:") and "transcript" in error


def test_semantic_codes() -> None:
    bundle = signed(semantic(0.95))
    assert verify(bundle, actual_for(semantic(), embedding=encode_embedding([1, 0.01, 0]))).verified
    [missing] = verify(bundle, actual_for(semantic(), transcript="x")).errors
    assert missing.startswith("MissingEmbedding:")
    assert verify(bundle, actual_for(semantic(), embedding=encode_embedding([1, 0]))).errors == [
        "EmbeddingDimensionMismatch:expected 3, got 2"]
    assert verify(bundle, actual_for(semantic(), embedding=encode_embedding([0, 1, 0]))).errors == [
        "SemanticBelowThreshold:cosine=0.0000,threshold=0.95"]
    [opposite] = verify(bundle, actual_for(semantic(), embedding=encode_embedding([-2, 0, 0]))
                        ).errors
    assert opposite == "SemanticBelowThreshold:cosine=-1.0000,threshold=0.95"


def test_threshold_minus_one_accepts_any_direction() -> None:
    bundle = capture(semantic(-1))
    assert verify(bundle, actual_for(semantic(), embedding=encode_embedding([-1, 0, 0]))).verified


@pytest.mark.parametrize(
    ("values", "code"),
    [([0, 0, 0], "ZeroEmbedding"), ([1, math.inf, 0], "NonFiniteEmbedding"),
     ([math.nan, 0, 0], "NonFiniteEmbedding")],
)
def test_unusable_actual_embeddings(values: list[float], code: str) -> None:
    raw = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    [error] = verify(capture(semantic()), actual_for(semantic(), embedding=raw)).errors
    assert error.startswith(f"{code}:actual.output.embedding")


def test_structural_is_unsupported() -> None:
    record = step(tolerance={"level": "structural"})
    assert verify(signed(record), actual_for(record)).errors == ["UnsupportedTolerance:structural"]


def test_fingerprint_drift_is_only_a_warning() -> None:
    actual = actual_for(step())
    actual["runtime"] = {"fingerprint": "fp_b"}
    result = verify(signed(step()), actual)
    assert result.verified
    assert result.warnings == ["FingerprintDrift:bundle=fp_a,actual=fp_b"]
    actual["runtime"] = {"fingerprint": "fp_a"}
    assert verify(signed(step()), actual).warnings == []
    actual["runtime"] = {}
    assert verify(signed(step()), actual).warnings == []


def test_drift_warning_survives_failures() -> None:
    actual = actual_for(step(), transcript="other")
    actual["runtime"] = {"fingerprint": "fp_b"}
    result = verify(signed(step()), actual)
    assert not result.verified and result.warnings and result.errors == ["TranscriptHashMismatch"]


def test_resigning_replaces_the_signature() -> None:
    bundle = signed(step())
    bundle["sampling"]["temperature"] = 0.3
    assert verify(bundle, actual_for(step())).errors[0].startswith("BadSignature:")
    resigned = sign_bundle(bundle, b"\x07" * 32)
    assert verify(resigned, actual_for(step())).verified
    assert resigned["signature"]["pubkey"] != bundle["signature"]["pubkey"]


def test_verify_bundle_signature_published_shape() -> None:
    assert verify_bundle_signature(capture(step())) == {"valid": True}
    assert verify_bundle_signature(signed(step())) == {"valid": True}
    bundle = signed(step())
    bundle["model"]["id"] = "other"
    outcome = verify_bundle_signature(bundle)
    assert outcome["valid"] is False and outcome["reason"]
    for junk in (None, 3, [], {"signature": "x"}, {"signature": {"alg": "ed25519"}}):
        assert isinstance(verify_bundle_signature(junk)["valid"], bool)


# ------------------------------------------------------------------ weak keys


def _sqrt_mod_p(value: int) -> int | None:
    """A square root modulo 2**255 - 19 (p = 5 mod 8), or None."""
    root = pow(value, (P + 3) // 8, P)
    if root * root % P != value % P:
        root = root * pow(2, (P - 1) // 4, P) % P
    return root if root * root % P == value % P else None


def _small_order_ys() -> set[int]:
    """y of every point of order dividing 8, derived from the curve equation here.

    Order 1: y = 1. Order 2: y = -1. Order 4: y = 0. Order 8: doubling gives y = 0,
    so x^2 = -y^2, and the curve equation becomes d*y^4 + 2*y^2 - 1 = 0.
    """
    d = -121665 * pow(121666, -1, P) % P
    ys = {1, P - 1, 0}
    root = _sqrt_mod_p(1 + d)
    assert root is not None
    for sign in (1, -1):
        y_squared = (-1 + sign * root) * pow(d, -1, P) % P
        y = _sqrt_mod_p(y_squared)
        if y is not None:
            ys |= {y, P - y}
    assert len(ys) == 5
    return ys


def _encodings(y: int) -> list[bytes]:
    """Every 32-byte spelling of y: canonical and (for y < 19) y + p, each sign bit."""
    values = [y] + ([y + P] if y + P < 2**255 else [])
    return [(v | sign << 255).to_bytes(32, "little") for v in values for sign in (0, 1)]


SMALL_ORDER_KEYS = [enc for y in sorted(_small_order_ys()) for enc in _encodings(y)]


def test_openssl_accepts_the_identity_key_forgery() -> None:
    """Why the rule exists: without it, any message 'verifies' under the identity key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    forged = IDENTITY + b"\x00" * 32  # R = identity, S = 0
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(forged, b"any message at all")
    with pytest.raises(SignatureError, match="small-order"):
        check_ed25519(IDENTITY, forged, b"any message at all")


@pytest.mark.parametrize("public_key", SMALL_ORDER_KEYS, ids=lambda k: k.hex()[:8] + k.hex()[-2:])
def test_every_small_order_encoding_is_refused(public_key: bytes) -> None:
    assert is_small_order(public_key)
    with pytest.raises(SignatureError, match="small-order"):
        check_ed25519(public_key, IDENTITY + b"\x00" * 32, b"msg")


def test_ordinary_keys_are_not_small_order() -> None:
    from agent_rerun import generate_key_pair

    assert not any(is_small_order(generate_key_pair().public_key) for _ in range(50))


def test_small_order_forgery_of_an_edited_bundle_fails_verify() -> None:
    bundle = signed(step())
    bundle["sampling"]["temperature"] = 0.9
    bundle["signature"] = {"alg": "ed25519", "pubkey": base64.b64encode(IDENTITY).decode(),
                           "sig": base64.b64encode(IDENTITY + b"\x00" * 32).decode()}
    [error] = verify(bundle, actual_for(step())).errors
    assert error.startswith("BadSignature:") and "small-order" in error


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("pubkey", base64.b64encode(b"\x01" * 31).decode(), ("32",)),
        ("sig", base64.b64encode(b"\x01" * 65).decode(), ("64",)),
        ("sig", "", ("64",)),
        ("sig", "not base64!", ("base64",)),
        ("pubkey", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w", ("base64",)),
        ("pubkey", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1x=", ("canonical",)),
        ("pubkey", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n", ("base64",)),
        # The urlsafe alphabet: same bytes to a lenient decoder, another spelling.
        ("sig", "CfVlTOyD9F0cSImQIwdeI0Ws_Z9VeGtMwO9Z09TdzMmOBCF1dMO7Oalizsm1RgL_fr4rQXePJkv"
                "Nf9RcZVJqCg==", ("base64",)),
        ("pubkey", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1\u0445=", ("base64",)),
    ],
)
def test_signature_envelope_is_strict(field: str, value: str, words: tuple[str, ...]) -> None:
    bundle = signed(step())
    bundle["signature"][field] = value
    [error] = verify(bundle, actual_for(step())).errors
    assert error.startswith("BadSignature:"), error
    for word in words:
        assert word in error, error


# ------------------------------------------------------------------ never raises


class _Exploding(dict):  # a dict whose every lookup fails
    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("boom")

    def items(self) -> Any:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "value",
    [None, 0, -1.5, math.nan, "bundle", b"bytes", [], (), set(), object(), Path("/"),
     {"rerun_version": "0.1"}, {1: 2}, {"inputs": {"x": float("inf")}}, _Exploding(a=1),
     type, print],
    ids=repr,
)
def test_verify_never_raises(value: Any) -> None:
    good_bundle = signed(step())
    for bundle, actual in ((value, actual_for(step())), (good_bundle, value), (value, value)):
        result = verify(bundle, actual)
        assert isinstance(result, VerifyResult)
        assert result.verified is False and result.errors
        # verify turns a crash into an InternalError result, so "did not raise" alone
        # proves nothing: no input may reach that catch-all.
        assert not any(e.startswith("InternalError") for e in result.errors), result.errors


def test_verify_survives_hostile_nesting() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    actual = actual_for(step(), transcript=deep)
    [error] = verify(signed(step()), actual).errors
    assert error.startswith("SchemaViolation:actual: ") and "nested" in error


def test_verify_files_reports_unreadable_files(tmp_path: Path) -> None:
    from agent_rerun import jcs_bytes

    good = tmp_path / "good.rr"
    good.write_bytes(jcs_bytes(signed(step())))
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    garbage = tmp_path / "garbage.rr"
    garbage.write_bytes(bytes(range(256)))
    for bundle_path, actual_path, prefix, name in (
        (tmp_path / "missing.rr", empty, "SchemaViolation:bundle: ", "missing.rr"),
        (tmp_path, empty, "SchemaViolation:bundle: ", str(tmp_path)),
        (garbage, empty, "SchemaViolation:bundle: ", "garbage.rr"),
        (good, garbage, "SchemaViolation:actual: ", "garbage.rr"),
        (good, tmp_path / "nope.json", "SchemaViolation:actual: ", "nope.json"),
        (empty, empty, "SchemaViolation:bundle: ", ""),  # {} is not a bundle
    ):
        result = verify_files(bundle_path, actual_path)
        assert not result.verified
        [error] = result.errors
        assert error.startswith(prefix) and name in error


@pytest.mark.parametrize("path", ["bad\0name.rr", None, 42])
def test_verify_files_reports_unusable_paths(path: Any) -> None:
    result = verify_files(path, C1 / "actual.json")
    assert not result.verified
    assert result.errors[0].startswith("SchemaViolation:bundle: ")


def test_a_byte_bundle_cannot_carry_a_malformed_embedding() -> None:
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    bundle["expected"]["semantic_embedding"] = "AAAAAA=="  # a zero vector, signed
    bundle = sign_bundle(bundle, bytes([1]) * 32)
    result = verify(bundle, SAMPLE_ACTUAL | {"inputs": json.loads(
        (C1 / "actual.json").read_bytes())["inputs"]})
    assert any(error.startswith("ZeroEmbedding:bundle.expected.semantic_embedding")
               for error in result.errors), result.errors
