"""Write the conformance vectors in this folder from one base step and one fixed key.

Two families:

* the 11 published v0.1 scenarios, under their published folder names, built
  with our own ``capture`` and ``sign_bundle``: each ``bundle.rr`` must come out
  byte-identical to the published one, which is the strongest evidence that our
  canonical bytes, hashes and signatures agree with the other implementations;
* ``ours-*``: one vector (or more) per stricter rule of this project, mostly
  hand-written bundle or actual text, because the faults they carry (duplicate
  keys, NaN, huge integers, lone surrogates) are exactly what a JSON encoder
  refuses to produce.

Usage::

    python vectors/generate.py          # (re)write the vectors; idempotent
    python vectors/generate.py --check  # exit 1 when the files on disk differ

Everything is deterministic: Ed25519 signatures are, the key is fixed, and every
file is written from fixed data with fixed formatting.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_rerun import CaptureOptions, capture, encode_embedding, jcs_bytes, sign_bundle

HERE = Path(__file__).resolve().parent

#: The fixed test key: 32 bytes of 0x01. It signs nothing but these vectors.
TEST_PRIVATE_KEY = b"\x01" * 32

BASE_STEP: dict[str, Any] = {
    "model": {"vendor": "anthropic", "id": "claude-opus-4-7", "fingerprint": "fp_test"},
    "sampling": {"temperature": 0, "top_p": 1, "seed": 42},
    "inputs": {
        "system_prompt": "you are a helpful assistant",
        "messages": [
            {"role": "user", "content": "say hi"},
            {"role": "assistant", "content": "hi"},
        ],
    },
    "runtime": {"class": "cloud", "tool_versions": {"python": "3.12.3"}},
    "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
    "tolerance": {"level": "byte"},
}

EMBED_EXPECTED = [1.0, 0.0, 0.0, 0.0]
EMBED_MATCHING = [0.99, 0.05, 0.05, 0.0]
EMBED_FAR = [0.0, 1.0, 0.0, 0.0]
EMBED_WRONG_DIM = [1.0, 0.0, 0.0]
THRESHOLD = 0.95

#: 2**53 + 1: the smallest positive integer that float64 JSON readers round.
UNSAFE_SEED = 9007199254740993
#: 2**60, which JCS writes as 1152921504606847000: out of the number domain.
TWO_POW_60 = 2**60
#: Seventeen digits that no double holds: a float64 reader sees ...568.
UNSAFE_ID = 12345678901234567
#: Two identical non-zero float32 vectors ([0.1, 0.2]): cosine exactly 1.
IDENTICAL_EMBEDDING = "zczMPc3MTD4="
DEEP_LEVELS = 5000


@dataclass(frozen=True)
class Vector:
    """One folder: the bundle file's exact bytes, the actual record's text, the verdict."""

    name: str
    bundle_bytes: bytes
    actual_text: str
    description: str
    verified: bool
    error_contains: tuple[str, ...] = ()
    warning_contains: tuple[str, ...] | None = None
    #: The step record's text, for vectors whose point is what capture writes:
    #: capturing it with the test key must give ``bundle.rr`` byte for byte.
    step_text: str | None = None

    def files(self) -> dict[str, bytes]:
        expected: dict[str, Any] = {
            "description": self.description,
            "verified": self.verified,
            "errorContains": list(self.error_contains),
        }
        if self.warning_contains is not None:
            expected["warningContains"] = list(self.warning_contains)
        files = {
            "bundle.rr": self.bundle_bytes,
            "actual.json": self.actual_text.encode("utf-8"),
            "expected.json": pretty(expected).encode("utf-8"),
        }
        if self.step_text is not None:
            files["step.json"] = self.step_text.encode("utf-8")
        return files


# ------------------------------------------------------------------ building blocks


def pretty(value: Any) -> str:
    """Two-space indented JSON with a final newline, the published vectors' layout."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def step(**changes: Any) -> dict[str, Any]:
    """A deep copy of the base step with top-level sections replaced."""
    result = copy.deepcopy(BASE_STEP)
    result.update(copy.deepcopy(changes))
    return result


def semantic_step() -> dict[str, Any]:
    return step(
        expected={"semantic_embedding": encode_embedding(EMBED_EXPECTED)},
        tolerance={"level": "semantic", "threshold": THRESHOLD},
    )


def signed(step_record: dict[str, Any]) -> dict[str, Any]:
    return capture(step_record, CaptureOptions(signing_key=TEST_PRIVATE_KEY))


def unsigned(step_record: dict[str, Any]) -> dict[str, Any]:
    return capture(step_record, CaptureOptions())


def actual(
    output: dict[str, Any],
    *,
    inputs: dict[str, Any] | None = None,
    runtime: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "inputs": copy.deepcopy(inputs if inputs is not None else BASE_STEP["inputs"]),
        "output": copy.deepcopy(output),
    }
    if runtime is not None:
        record["runtime"] = runtime
    return record


def transcript_actual(**kwargs: Any) -> dict[str, Any]:
    return actual({"transcript": BASE_STEP["expected"]["transcript"]}, **kwargs)


def embedding_actual(values: list[float], **kwargs: Any) -> dict[str, Any]:
    return actual({"embedding": encode_embedding(values)}, **kwargs)


def splice(text: str, placeholder: str, replacement: str) -> str:
    """Replace the one quoted ``placeholder`` in ``text`` with raw JSON text."""
    quoted = json.dumps(placeholder)
    if text.count(quoted) != 1:
        raise AssertionError(f"placeholder {placeholder!r} must occur exactly once")
    return text.replace(quoted, replacement)


def tweak_last_base64_char(text: str) -> str:
    """Set the unused low bits of the last data character: same bytes, another spelling."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = text.rstrip("=")
    padding = len(text) - len(body)
    unused_bits = {1: 4, 2: 2}[padding] if padding else 0
    if not unused_bits:
        raise AssertionError("no unused bits to set in an unpadded base64 string")
    last = alphabet.index(body[-1])
    assert last % (1 << unused_bits) == 0, "already non-canonical"
    changed = body[:-1] + alphabet[last + 1] + "=" * padding
    assert base64.b64decode(changed) == base64.b64decode(text)
    return changed


def with_signature(bundle: dict[str, Any], **fields: str) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    result["signature"].update(fields)
    return result


def raw_float32(values: list[float]) -> str:
    """Little-endian float32 bytes as base64, for values encode_embedding would still accept."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


# ------------------------------------------------------------------ the published scenarios


def published() -> list[Vector]:
    byte_signed = signed(step())
    sem_signed = signed(semantic_step())
    mutated = copy.deepcopy(byte_signed)
    mutated["sampling"]["temperature"] = 0.7
    wrong_version = unsigned(step())
    wrong_version["rerun_version"] = "0.2"
    extra_top = {**byte_signed, "MYSTERY": "extra"}
    extra_inputs = copy.deepcopy(byte_signed)
    extra_inputs["inputs"]["fake_sha256"] = "sha256:" + "0" * 64
    structural = unsigned(step(tolerance={"level": "structural"}))
    other_messages = {
        "system_prompt": BASE_STEP["inputs"]["system_prompt"],
        "messages": [{"role": "user", "content": "DIFFERENT MESSAGE"}],
    }
    return [
        Vector("c1-byte-replay-passes", jcs_bytes(byte_signed), pretty(transcript_actual()),
               "C1: a signed byte-tolerance bundle and an actual record with the same inputs "
               "and transcript verify.", True),
        Vector("c2-semantic-replay-passes", jcs_bytes(sem_signed),
               pretty(embedding_actual(EMBED_MATCHING)),
               "C2: semantic tolerance at 0.95; the replayed embedding's cosine with the "
               "expected one is about 0.997, so it verifies.", True),
        Vector("c2-below-threshold-rejected", jcs_bytes(sem_signed),
               pretty(embedding_actual(EMBED_FAR)),
               "Semantic tolerance at 0.95 with an orthogonal replay (cosine 0): refused.",
               False, ("SemanticBelowThreshold",)),
        Vector("c3-mutated-bundle-rejected", jcs_bytes(mutated), pretty(transcript_actual()),
               "C3: sampling.temperature changed from 0 to 0.7 after signing; the signature "
               "no longer covers the bundle.", False, ("BadSignature",)),
        Vector("c4-messages-mismatch-rejected", jcs_bytes(byte_signed),
               pretty(transcript_actual(inputs=other_messages)),
               "C4: the actual record sent other messages than the bundle attests.",
               False, ("InputHashMismatch:messages_sha256",)),
        Vector("embedding-dim-mismatch-rejected", jcs_bytes(sem_signed),
               pretty(embedding_actual(EMBED_WRONG_DIM)),
               "The bundle's embedding has 4 dimensions, the replay's 3.",
               False, ("EmbeddingDimensionMismatch",)),
        Vector("fingerprint-drift-warning", jcs_bytes(sem_signed),
               pretty(embedding_actual(EMBED_MATCHING,
                                       runtime={"fingerprint": "fp_replay_different"})),
               "The replay ran on another model fingerprint: verified, with a "
               "FingerprintDrift warning.", True, (), ("FingerprintDrift",)),
        Vector("schema-violation-rerun-version", jcs_bytes(wrong_version),
               pretty(transcript_actual()),
               "rerun_version is '0.2': a schema violation before any other check.",
               False, ("SchemaViolation",)),
        Vector("strictness-extra-bundle-field", jcs_bytes(extra_top), pretty(transcript_actual()),
               "An unknown top-level bundle field is a schema violation, not silently ignored.",
               False, ("SchemaViolation",)),
        Vector("strictness-extra-inputs-field", jcs_bytes(extra_inputs),
               pretty(transcript_actual()),
               "An unknown hash-shaped field inside bundle.inputs is a schema violation.",
               False, ("SchemaViolation",)),
        Vector("structural-unsupported", jcs_bytes(structural), pretty(transcript_actual()),
               "Structural tolerance has no defined check in v0.1.",
               False, ("UnsupportedTolerance",)),
    ]


# ------------------------------------------------------------------ our stricter rules


def ours() -> list[Vector]:
    byte_signed = signed(step())
    sem_signed = signed(semantic_step())
    base_actual = pretty(transcript_actual())
    sem_actual = pretty(embedding_actual(EMBED_MATCHING))
    sig = byte_signed["signature"]["sig"]
    pubkey = byte_signed["signature"]["pubkey"]
    raw_pub = base64.b64decode(pubkey)
    raw_sig = base64.b64decode(sig)
    identity = b"\x01" + b"\x00" * 31  # the neutral point's encoding (y = 1, x = 0)

    vectors = [
        # --- signature envelope
        Vector("ours-malleable-base64-signature",
               jcs_bytes(with_signature(byte_signed, sig=tweak_last_base64_char(sig))),
               base_actual,
               "The valid signature re-spelled with non-zero unused base64 bits: lenient "
               "decoders read the same 64 bytes, so the envelope would be malleable.",
               False, ("BadSignature", "canonical")),
        Vector("ours-malleable-base64-pubkey",
               jcs_bytes(with_signature(byte_signed, pubkey=tweak_last_base64_char(pubkey))),
               base_actual,
               "The signer's public key re-spelled with non-zero unused base64 bits.",
               False, ("BadSignature", "pubkey")),
        Vector("ours-signature-with-whitespace",
               jcs_bytes(with_signature(byte_signed, sig=sig[:44] + "\n" + sig[44:])),
               base_actual,
               "A newline inside the signature's base64: lenient decoders skip it.",
               False, ("BadSignature", "sig")),
        Vector("ours-wrong-length-pubkey",
               jcs_bytes(with_signature(byte_signed,
                                        pubkey=base64.b64encode(raw_pub + b"\x00").decode())),
               base_actual,
               "A 33-byte public key (the real key plus one byte).",
               False, ("BadSignature", "32 bytes")),
        Vector("ours-wrong-length-signature",
               jcs_bytes(with_signature(byte_signed,
                                        sig=base64.b64encode(raw_sig[:63]).decode())),
               base_actual,
               "A 63-byte signature (the real one truncated).",
               False, ("BadSignature", "64 bytes")),
        Vector("ours-wrong-alg",
               jcs_bytes(with_signature(byte_signed, alg="Ed25519")),
               base_actual,
               "signature.alg must be exactly 'ed25519'.",
               False, ("SchemaViolation", "alg")),
        Vector("ours-small-order-pubkey-forgery",
               jcs_bytes(with_signature(
                   _tampered(byte_signed),
                   pubkey=base64.b64encode(identity).decode(),
                   sig=base64.b64encode(identity + b"\x00" * 32).decode())),
               base_actual,
               "Edited bundle 'signed' under the identity point with R = identity, S = 0. "
               "OpenSSL accepts this for every message; the small-order key must be refused.",
               False, ("BadSignature", "small-order")),
        Vector("ours-resigned-by-other-key-passes",
               jcs_bytes(sign_bundle(byte_signed, b"\x02" * 32)),
               base_actual,
               "Re-signed by another key: the signature is valid, and without a trust policy "
               "any valid signer is accepted (v0.1 behaviour).", True),
        # --- I-JSON text of the bundle
        Vector("ours-duplicate-key-in-bundle",
               _duplicate_temperature(byte_signed),
               base_actual,
               "bundle.rr repeats sampling.temperature (0, then 0.7). A first-wins parser "
               "sees the signed bundle, a last-wins one the edited one: refused as text.",
               False, ("SchemaViolation", "duplicate")),
        Vector("ours-nan-threshold",
               splice(jcs_bytes(_with_threshold(sem_signed, "THRESHOLD")).decode(),
                      "THRESHOLD", "NaN").encode(),
               sem_actual,
               "tolerance.threshold is the bare token NaN, which is not JSON.",
               False, ("SchemaViolation", "NaN")),
        Vector("ours-infinite-threshold",
               splice(jcs_bytes(_with_threshold(sem_signed, "THRESHOLD")).decode(),
                      "THRESHOLD", "1e400").encode(),
               sem_actual,
               "tolerance.threshold 1e400 overflows a float64 to infinity.",
               False, ("SchemaViolation", "infinity")),
        Vector("ours-threshold-out-of-range",
               jcs_bytes(sign_bundle(_with_threshold(sem_signed, 1.5), TEST_PRIVATE_KEY)),
               sem_actual,
               "A validly signed bundle with threshold 1.5: a cosine never reaches it.",
               False, ("SchemaViolation", "threshold")),
        Vector("ours-integer-beyond-2-53",
               splice(jcs_bytes(_with_seed(byte_signed, "SEED")).decode(),
                      "SEED", str(UNSAFE_SEED)).encode(),
               base_actual,
               f"sampling.seed {UNSAFE_SEED} (2**53 + 1): float64 readers see 2**53.",
               False, ("SchemaViolation", "sampling.seed")),
        Vector("ours-bundle-with-bom",
               b"\xef\xbb\xbf" + jcs_bytes(byte_signed),
               base_actual,
               "A UTF-8 byte-order mark before the bundle's JSON text.",
               False, ("SchemaViolation", "byte-order mark")),
        Vector("ours-bundle-not-utf8",
               jcs_bytes(byte_signed).replace(b"fp_test", b"fp_t\xe9st"),
               base_actual,
               "A Latin-1 byte inside bundle.rr: not UTF-8.",
               False, ("SchemaViolation", "UTF-8")),
        # --- embeddings
        Vector("ours-zero-vector-actual-embedding", jcs_bytes(sem_signed),
               pretty(embedding_actual([0.0, 0.0, 0.0, 0.0])),
               "The replay's embedding is the zero vector, whose cosine is undefined.",
               False, ("ZeroEmbedding",)),
        Vector("ours-zero-vector-bundle-embedding",
               jcs_bytes(sign_bundle(_with_embedding(sem_signed, [0.0, 0.0, 0.0, 0.0]),
                                     TEST_PRIVATE_KEY)),
               sem_actual,
               "A validly signed bundle whose expected embedding is the zero vector.",
               False, ("ZeroEmbedding",)),
        Vector("ours-nan-in-embedding", jcs_bytes(sem_signed),
               pretty(actual({"embedding": raw_float32([1.0, float("nan"), 0.0, 0.0])})),
               "The replay's float32 embedding holds a NaN.",
               False, ("NonFiniteEmbedding",)),
        Vector("ours-non-canonical-base64-embedding", jcs_bytes(sem_signed),
               pretty(actual({"embedding": tweak_last_base64_char(
                   encode_embedding(EMBED_MATCHING))})),
               "The replay's embedding re-spelled with non-zero unused base64 bits.",
               False, ("InvalidEmbedding", "canonical")),
        Vector("ours-unpadded-base64-embedding", jcs_bytes(sem_signed),
               pretty(actual({"embedding": encode_embedding(EMBED_MATCHING).rstrip("=")})),
               "The replay's embedding without its base64 padding.",
               False, ("InvalidEmbedding",)),
        Vector("ours-embedding-not-float32-sized", jcs_bytes(sem_signed),
               pretty(actual({"embedding": base64.b64encode(b"\x00\x00\x80\x3f\x00").decode()})),
               "Five bytes of embedding: not a whole number of float32 values.",
               False, ("InvalidEmbedding",)),
        # --- actual record text
        Vector("ours-lone-surrogate-in-actual", jcs_bytes(byte_signed),
               splice(pretty(transcript_actual(inputs={
                   "system_prompt": "LONE", "messages": BASE_STEP["inputs"]["messages"]})),
                   "LONE", '"you are a helpful \\ud800 assistant"'),
               "actual.inputs.system_prompt holds the escape \\ud800, a lone surrogate: "
               "not Unicode text, and canonicalizers disagree on it.",
               False, ("SchemaViolation:actual", "surrogate")),
        Vector("ours-deep-nesting-in-actual", jcs_bytes(byte_signed),
               splice(pretty(actual({"transcript": "DEEP"})), "DEEP",
                      "[" * DEEP_LEVELS + "]" * DEEP_LEVELS),
               f"actual.output.transcript nested {DEEP_LEVELS} arrays deep: an error "
               "result, not a crash.",
               False, ("SchemaViolation:actual",)),
        Vector("ours-duplicate-key-in-actual", jcs_bytes(byte_signed),
               base_actual.replace('"output": {', '"output": {\n    "transcript": null,', 1),
               "actual.output carries the key transcript twice.",
               False, ("SchemaViolation:actual", "duplicate")),
        Vector("ours-unknown-field-in-actual", jcs_bytes(byte_signed),
               pretty({**transcript_actual(), "extra": True}),
               "An unknown top-level field in the actual record.",
               False, ("SchemaViolation:actual",)),
        # --- inputs and transcripts
        Vector("ours-tools-attested-but-absent",
               jcs_bytes(signed(step(inputs={**BASE_STEP["inputs"],
                                             "tools": [{"name": "search"}]}))),
               base_actual,
               "The bundle attests tools; the replay sent none.",
               False, ("InputHashMismatch:tools_sha256",)),
        Vector("ours-tools-and-non-bmp-passes",
               jcs_bytes(signed(_non_bmp_step())),
               pretty(actual({"transcript": _non_bmp_step()["expected"]["transcript"]},
                             inputs=_non_bmp_step()["inputs"])),
               "Tools, non-BMP characters in strings and keys, floats and a negative seed: "
               "a faithful replay verifies.", True),
        Vector("ours-transcript-missing", jcs_bytes(byte_signed), pretty(actual({})),
               "Byte tolerance but the replay carries no transcript.",
               False, ("TranscriptHashMismatch",)),
        Vector("ours-transcript-differs", jcs_bytes(byte_signed),
               pretty(actual({"transcript": {"messages": [{"role": "assistant",
                                                          "content": "hi!"}]}})),
               "Byte tolerance and a different transcript.",
               False, ("TranscriptHashMismatch",)),
    ]
    return vectors + reference_rules()


def reference_rules() -> list[Vector]:
    """Issue 10: where the TypeScript reference decides (null transcripts, cosine of
    identical vectors, the refined number domain, integral integer fields)."""
    null_step = step(expected={"transcript": None})
    null_semantic = step(expected={"transcript": None,
                                   "semantic_embedding": encode_embedding(EMBED_EXPECTED)},
                         tolerance={"level": "semantic", "threshold": THRESHOLD})
    null_semantic_bundle = signed(null_semantic)
    if null_semantic_bundle["expected"].get("transcript_sha256") != NULL_SHA256:
        raise AssertionError("a null transcript beside an embedding must be hashed")
    identical = step(expected={"semantic_embedding": IDENTICAL_EMBEDDING},
                     tolerance={"level": "semantic", "threshold": 1})
    big_float = step(inputs={**BASE_STEP["inputs"],
                             "messages": [{"role": "user", "content": "say hi", "n": "BIG"}]})
    big_float_text = splice(pretty(big_float), "BIG", "1e16")
    big_float_bundle = signed(json.loads(big_float_text))
    if big_float_bundle["inputs"]["messages_sha256"] != "sha256:" + hashlib.sha256(
            b'[{"content":"say hi","n":10000000000000000,"role":"user"}]').hexdigest():
        raise AssertionError("1e16 must be hashed as the reference writes it")
    big_float_actual = splice(pretty(transcript_actual(inputs={
        **BASE_STEP["inputs"], "messages": [{"role": "user", "content": "say hi", "n": "BIG"}]})),
        "BIG", "10000000000000000")
    float_seed_text = splice(pretty(step(sampling={**BASE_STEP["sampling"], "seed": "SEED"})),
                             "SEED", "42.0")
    float_seed_bundle = signed(json.loads(float_seed_text))
    if jcs_bytes(float_seed_bundle) != jcs_bytes(signed(step())):
        raise AssertionError("seed 42.0 must be captured exactly as seed 42")
    unsafe_actual = splice(pretty(transcript_actual(inputs={
        **BASE_STEP["inputs"],
        "messages": [{"role": "user", "content": "say hi", "id": "ID"}]})),
        "ID", str(UNSAFE_ID))
    return [
        Vector("ours-null-transcript-byte-passes", jcs_bytes(signed(null_step)),
               pretty(actual({"transcript": None})),
               "expected.transcript is null: a value, hashed as the JCS text null (as the "
               "reference does), so a replay whose transcript is null verifies.", True,
               step_text=pretty(null_step)),
        Vector("ours-null-transcript-missing-rejected", jcs_bytes(signed(null_step)),
               pretty(actual({})),
               "The bundle attests a null transcript; a replay without one is not the same.",
               False, ("TranscriptHashMismatch", "missing")),
        Vector("ours-null-transcript-beside-embedding", jcs_bytes(null_semantic_bundle),
               sem_actual_text(),
               "Semantic tolerance with expected.transcript null: the bundle still carries "
               "transcript_sha256 of null, byte for byte the reference's bundle.", True,
               step_text=pretty(null_semantic)),
        Vector("ours-identical-embeddings-threshold-1", jcs_bytes(signed(identical)),
               pretty(actual({"embedding": IDENTICAL_EMBEDDING})),
               "Identical non-zero embeddings have cosine exactly 1 "
               "(dot / sqrt(|a|^2 |b|^2)), so threshold 1 passes.", True,
               step_text=pretty(identical)),
        Vector("ours-integral-float-1e16-in-message", jcs_bytes(big_float_bundle),
               big_float_actual,
               "A message holds the float 1e16 (as a tool argument might): in the domain, "
               "hashed as JCS writes it (10000000000000000), which the replay spells as an "
               "integer.", True,
               step_text=big_float_text),
        Vector("ours-float-seed-written-as-integer", jcs_bytes(float_seed_bundle),
               base_actual_text(),
               "sampling.seed 42.0 is the integer 42 (JSON has one number type): the bundle "
               "writes 42, the very bytes of the base step's bundle.", True,
               step_text=float_seed_text),
        Vector("ours-integer-2-60-in-bundle",
               splice(jcs_bytes(_with_seed(signed(step()), "SEED")).decode(),
                      "SEED", str(TWO_POW_60)).encode(),
               base_actual_text(),
               f"sampling.seed {TWO_POW_60} (2**60): JCS writes it as "
               "1152921504606847000, other digits, so it is outside the number domain.",
               False, ("SchemaViolation", "sampling.seed")),
        Vector("ours-unsafe-integer-in-actual", jcs_bytes(signed(step())), unsafe_actual,
               f"actual.inputs.messages[0].id is {UNSAFE_ID}: a float64 reader sees "
               "another integer, so it is outside the number domain.",
               False, ("SchemaViolation:actual", "inputs.messages[0].id")),
    ]


def base_actual_text() -> str:
    return pretty(transcript_actual())


def sem_actual_text() -> str:
    return pretty(embedding_actual(EMBED_MATCHING))


#: sha256 of the JCS text ``null``.
NULL_SHA256 = "sha256:" + hashlib.sha256(b"null").hexdigest()


def _tampered(bundle: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    result["sampling"]["temperature"] = 0.7
    return result


def _with_threshold(bundle: dict[str, Any], threshold: Any) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    result["tolerance"]["threshold"] = threshold
    return result


def _with_seed(bundle: dict[str, Any], seed: Any) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    result["sampling"]["seed"] = seed
    return result


def _with_embedding(bundle: dict[str, Any], values: list[float]) -> dict[str, Any]:
    result = copy.deepcopy(bundle)
    result["expected"]["semantic_embedding"] = raw_float32(values)
    return result


def _duplicate_temperature(bundle: dict[str, Any]) -> bytes:
    text = jcs_bytes(bundle).decode()
    original = '"temperature":0,'
    if text.count(original) != 1:
        raise AssertionError("expected one temperature member")
    return text.replace(original, original + '"temperature":0.7,').encode()


def _non_bmp_step() -> dict[str, Any]:
    return step(
        model={"vendor": "local", "id": "m\U0001f600del"},
        sampling={"temperature": 0.25, "top_p": 0.9, "seed": -7, "max_tokens": 64},
        inputs={
            "system_prompt": "r\u00e9ponds en \U0001d11e",
            "messages": [{"role": "user", "content": "\U0001f600 \u2028 \"quoted\"",
                          "\U0001f511": [1.5e-7, -0.0, 1e21]}],
            "tools": [{"name": "lookup", "params": {"q": "\U00010348"}}],
        },
        runtime={"class": "local-vllm"},
        expected={"transcript": {"text": "ok \U0001f44d", "n": 3}},
    )


# ------------------------------------------------------------------ writing and checking


def test_key_file() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(TEST_PRIVATE_KEY).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    return pretty({
        "privateKey": base64.b64encode(TEST_PRIVATE_KEY).decode(),
        "publicKey": base64.b64encode(public).decode(),
        "note": "The fixed key (32 bytes of 0x01) that signs these test vectors. It is public: "
                "never sign anything real with it.",
    }).encode()


def all_vectors() -> list[Vector]:
    vectors = published() + ours()
    names = [vector.name for vector in vectors]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate vector names")
    return vectors


def planned_files(root: Path = HERE) -> dict[Path, bytes]:
    """Every file the generator owns, with the exact bytes it should hold."""
    files = {root / "test-key.json": test_key_file()}
    for vector in all_vectors():
        for name, data in vector.files().items():
            files[root / vector.name / name] = data
    return files


def differences(root: Path = HERE) -> list[str]:
    """What differs between the disk and the plan: missing, changed and stray files."""
    plan = planned_files(root)
    problems: list[str] = []
    for path, data in sorted(plan.items()):
        if not path.is_file():
            problems.append(f"missing: {path.relative_to(root)}")
        elif path.read_bytes() != data:
            problems.append(f"differs: {path.relative_to(root)}")
    planned_dirs = {path.parent for path in plan}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "expected.json").exists())
    for folder in folders:
        if folder not in planned_dirs:
            problems.append(f"stray vector folder: {folder.name}")
            continue
        problems.extend(
            f"stray file: {extra.relative_to(root)}"
            for extra in sorted(folder.iterdir()) if extra not in plan
        )
    return problems


def write(root: Path = HERE) -> int:
    """Write files whose bytes differ; return how many were written."""
    written = 0
    for path, data in sorted(planned_files(root).items()):
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += 1
    return written


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when the files on disk differ")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for problem in problems:
            out(problem)
        if problems:
            out("vectors are out of date: run python vectors/generate.py")
            return 1
        out(f"vectors up to date ({len(all_vectors())} vectors)")
        return 0
    written = write()
    out(f"{written} file(s) written, {len(all_vectors())} vectors in {HERE}")
    stray = [p for p in differences() if p.startswith("stray")]
    for problem in stray:
        out(problem)
    return 1 if stray else 0


if __name__ == "__main__":
    sys.exit(main())
