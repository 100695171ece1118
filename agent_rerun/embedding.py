"""Embeddings as bundles carry them: little-endian float32, concatenated, base64.

Verify never runs a model: both sides arrive as precomputed vectors, and only
their cosine is compared against the bundle's threshold.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from operator import mul

from agent_rerun.b64 import Base64Error, decode_strict, encode


class EmbeddingError(ValueError):
    """The embedding text is not a usable float32 vector.

    ``code`` is the verify error code it maps to: ``InvalidEmbedding`` (not
    base64 float32 data), ``NonFiniteEmbedding`` or ``ZeroEmbedding``.
    """

    def __init__(self, message: str, code: str = "InvalidEmbedding") -> None:
        super().__init__(message)
        self.code = code


def encode_embedding(values: Sequence[float]) -> str:
    """Pack floats as little-endian float32 and base64 them."""
    packed = array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return encode(packed.tobytes())


def decode_embedding(text: str) -> list[float]:
    """Unpack a base64 float32 embedding into Python floats, strictly checked."""
    return decode_embedding_strict(text)


def decode_embedding_strict(text: str) -> list[float]:
    """Decode and check an embedding: canonical base64, whole float32s, finite, not all zero."""
    return check_embedding(text).tolist()


def check_embedding(text: str) -> array[float]:
    """The checks of ``decode_embedding_strict``, returning the packed values."""
    try:
        raw = decode_strict(text)
    except Base64Error as exc:
        raise EmbeddingError(str(exc)) from None
    if not raw:
        raise EmbeddingError("is empty (no dimensions)")
    if len(raw) % 4:
        raise EmbeddingError(f"has {len(raw)} bytes, not a whole number of float32 values")
    packed = array("f")
    packed.frombytes(raw)
    if sys.byteorder == "big":
        packed.byteswap()
    # NaN and infinity are the float32s whose exponent bits are all ones. Their
    # high byte (the fourth, little-endian) is 0x7f or 0xff; only when one is
    # present is it worth looking at each value.
    if raw[3::4].translate(_EXPONENT_HIGH_BITS).count(1) and not all(
        map(math.isfinite, packed)
    ):
        raise EmbeddingError("holds a NaN or infinite value", "NonFiniteEmbedding")
    if not any(packed):
        raise EmbeddingError(
            "is the zero vector, which has no direction to compare", "ZeroEmbedding"
        )
    return packed


#: Maps a float32's high byte to 1 when its seven exponent bits there are all ones.
_EXPONENT_HIGH_BITS = bytes(1 if byte & 0x7F == 0x7F else 0 for byte in range(256))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two equal-length, non-zero vectors.

    The norms come from ``math.hypot`` (a C loop that also cannot overflow);
    the dot product stays a plain sum of products, so orthogonal vectors give
    exactly 0, as in the published implementations' messages.
    """
    if len(a) != len(b):
        raise ValueError(f"dimension mismatch: {len(a)} vs {len(b)}")
    norm_a = math.hypot(*a)
    norm_b = math.hypot(*b)
    if norm_a == 0 or norm_b == 0:
        raise ValueError("cosine of a zero vector is undefined")
    dot = sum(map(mul, a, b))
    if math.isfinite(dot):
        similarity = dot / norm_a / norm_b
    else:  # products overflowed: scale first
        similarity = math.fsum(x / norm_a * (y / norm_b) for x, y in zip(a, b, strict=True))
    return max(-1.0, min(1.0, similarity))
