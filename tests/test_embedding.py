"""agent_rerun.embedding: the float32 codec bundles use, its strictness, and cosine."""

from __future__ import annotations

import base64
import math
import struct

import pytest

from agent_rerun.embedding import (
    EmbeddingError,
    check_embedding,
    cosine,
    decode_embedding,
    encode_embedding,
)


def _packed(*values: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_encode_is_little_endian_float32_base64() -> None:
    assert encode_embedding([0.1, 0.2]) == _packed(0.1, 0.2) == "zczMPc3MTD4="


def test_round_trip_keeps_float32_values() -> None:
    values = [1.5, -2.25, 3.0e-8]
    assert decode_embedding(encode_embedding(values)) == [struct.unpack("<f", struct.pack(
        "<f", v))[0] for v in values]
    assert check_embedding(encode_embedding(values)).tolist() == decode_embedding(
        encode_embedding(values))


@pytest.mark.parametrize(("text", "code", "says"), [
    ("", "InvalidEmbedding", "empty"),
    (base64.b64encode(b"\0\0\0").decode(), "InvalidEmbedding", "multiple of 4"),
    ("zczMPc3MTD4", "InvalidEmbedding", "base64"),
    (_packed(1.0, math.nan), "NonFiniteEmbedding", "NaN"),
    (_packed(math.inf), "NonFiniteEmbedding", "infinite"),
    (_packed(0.0, -0.0), "ZeroEmbedding", "zero vector"),
])
def test_unusable_embeddings_are_refused_with_their_code(text: str, code: str,
                                                         says: str) -> None:
    with pytest.raises(EmbeddingError, match=says) as exc:
        decode_embedding(text)
    assert exc.value.code == code


def test_a_large_finite_value_is_not_mistaken_for_nan() -> None:
    # 0x7f7fffff, float32's largest: its high byte is 0x7f like NaN's.
    assert decode_embedding(_packed(3.4028234663852886e38)) == [3.4028234663852886e38]


def test_cosine() -> None:
    assert cosine([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0
    assert cosine([1.0, 0.0], [-1.0, 0.0]) == -1.0
    assert cosine([1e300, 1e300], [1e300, 1e300]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        cosine([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="zero-magnitude"):
        cosine([0.0, 0.0], [1.0, 1.0])
