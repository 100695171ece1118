"""Embeddings as bundles carry them: little-endian float32, concatenated, base64.

Verify never runs a model: both sides arrive as precomputed vectors, and only
their cosine is compared against the bundle's threshold.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Sequence

from agent_rerun.b64 import Base64Error, decode_strict, encode
from agent_rerun.errors import RerunError


class EmbeddingError(RerunError, ValueError):
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
    """Decode and check an embedding: canonical base64, whole float32s, finite, not all zero."""
    return check_embedding(text).tolist()


def check_embedding(text: str) -> array[float]:
    """The checks of ``decode_embedding``, returning the packed values."""
    try:
        raw = decode_strict(text)
    except Base64Error as exc:
        raise EmbeddingError(str(exc)) from None
    if not raw:
        raise EmbeddingError("is empty (no dimensions)")
    if len(raw) % 4:
        # "multiple of 4" is the published package's phrase, which callers match on.
        raise EmbeddingError(f"has {len(raw)} bytes, not a whole number of float32 values "
                             "(its length must be a multiple of 4)")
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

    Computed as the spec and the TypeScript reference do: dot / sqrt(|a|^2 * |b|^2),
    each sum accumulated left to right in double precision, so the value is the
    reference's bit for bit and identical vectors give exactly 1 (the dot product
    and the squared norm are then the same sum, and sqrt(x * x) == x).

    One plain loop is the fastest exact way on every supported Python: measured at
    3,072 dims, it matches three C-level ``sum(map(mul, ...))`` passes on 3.11, and
    from 3.12 on (where ``sum`` compensates rounding, so it cannot be used) it is
    three times faster than ``functools.reduce``; it also reads a float32
    ``array`` directly, with no list to build first. Identical vectors, a common
    replay, take one sum instead of three.
    """
    if len(a) != len(b):
        raise ValueError(f"dimension mismatch: {len(a)} vs {len(b)}")
    if _identical(a, b):
        dot = squares_a = squares_b = _squares(a)
    else:
        dot = squares_a = squares_b = 0.0
        for x, y in zip(a, b, strict=True):
            dot += x * y
            squares_a += x * x
            squares_b += y * y
    if squares_a == 0 or squares_b == 0:
        # "zero-magnitude" is the published package's phrase, which callers match on.
        raise ValueError("cosine of a zero vector (zero-magnitude) is undefined")
    scale = math.sqrt(squares_a * squares_b)
    if math.isfinite(dot) and 0 < scale < math.inf:
        return dot / scale
    if not all(map(math.isfinite, a)) or not all(map(math.isfinite, b)):
        raise ValueError("cosine of a vector holding a NaN or infinite value is undefined")
    # Only Python floats far beyond float32's range get here (an embedding's
    # squares cannot overflow): normalise first, then the same formula.
    largest_a, largest_b = max(map(abs, a)), max(map(abs, b))
    return cosine([x / largest_a for x in a], [y / largest_b for y in b])


def below_threshold(a: Sequence[float], b: Sequence[float], threshold: float) -> float | None:
    """``cosine(a, b)`` when it is below ``threshold``, else None: verify's decision.

    The decision and the value are always exactly those of ``cosine``, the
    reference's left-to-right sums; only how the decision is reached differs.
    For float32 arrays (what ``check_embedding`` returns) a cheaper estimate
    decides first: math.hypot and math.dist (C loops, each under 1 ulp since
    Python 3.10) give |a|, |b| and |a - b| piece by piece, and
    dot = (|a|^2 + |b|^2 - |a - b|^2) / 2.
    The estimate and the reference are within the margin ``_estimate``
    returns of each other (see there), so when the estimate is farther than
    that from the threshold, the reference falls on the same side; otherwise, and for the
    value a failure prints, ``cosine`` itself runs. At 3,072 dims the estimate
    costs under half the reference loop, most of it making one float object
    per float32 value, once per vector instead of once per pass.
    """
    if (isinstance(a, array) and isinstance(b, array) and a.typecode == b.typecode == "f"
            and len(a) == len(b)):
        estimate = _estimate(a, b)
        if estimate is not None:
            similarity, margin = estimate
            if similarity - margin >= threshold:
                return None
            if similarity + margin < threshold:
                return cosine(a, b)
    similarity = cosine(a, b)
    return similarity if similarity < threshold else None


#: The unit roundoff of a double: 2**-53.
_UNIT = 2.0**-53

#: Values per piece in ``_estimate``: the float objects of a piece of both vectors
#: stay in the L1 cache while the three C loops read them. Measured at 3,072 dims
#: with the caches cold (as after a collection): whole vectors 408 us a verify,
#: pieces of 256 values 402, 128 395, 64 387, 32 401, 16 419 (more calls).
_PIECE = 64
_PIECE_LAYOUT = struct.Struct(f"{_PIECE}f")


def _estimate(a: array[float], b: array[float]) -> tuple[float, float] | None:
    """The estimated cosine of two float32 vectors and a bound on its distance
    from the reference's value, or None when the estimate cannot be trusted
    (a zero, non-finite or overflowing norm, or cancellation: the bound says so).

    The vectors are read in k pieces of ``_PIECE`` values; for each, math.hypot
    and math.dist (C loops, each under 1 ulp since Python 3.10) give the norms
    of the piece of a, of b and of a - b, whose squares are summed.

    Error bound, with u = 2**-53 and A, B, D the exact squared norms of a, b and
    a - b. A piece's hypot is within 1 ulp (relative 2u; a float32 difference
    rounds once more), so its square is within about 5u (7u for D) and the sum
    of k such squares within (k + 9)u, (k + 9)u and (k + 11)u, relative (the
    (k - 1)u of summing k non-negative terms, with room to spare). With D <=
    2(A + B), the estimated dot (A + B - D) / 2 is within (3k + 33)u(A + B) / 2
    of the true one; dividing by sqrt(A) sqrt(B), itself within (k + 12)u, puts
    the estimate within ((1.5k + 17)(A + B) / sqrt(AB) + k + 13)u of the true
    cosine. The reference multiplies float32 values exactly and sums n products
    left to right, within (n - 1)u times the sum of |a_i b_i| <= sqrt(AB), so
    it is within about 2(n - 1)u + 4u of the true cosine. ``margin`` is more
    than twice the sum of the two.
    """
    count = len(a)
    whole = count - count % _PIECE
    # Local names: three module attribute lookups per piece cost 9 us a verify.
    unpack, hypot, dist = _PIECE_LAYOUT.unpack_from, math.hypot, math.dist
    squares_a = squares_b = squares_gap = 0.0
    for offset in range(0, whole * 4, _PIECE * 4):
        piece_a = unpack(a, offset)
        piece_b = unpack(b, offset)
        norm_a = hypot(*piece_a)
        norm_b = hypot(*piece_b)
        gap = dist(piece_a, piece_b)
        squares_a += norm_a * norm_a
        squares_b += norm_b * norm_b
        squares_gap += gap * gap
    if whole < count:
        last_a, last_b = a[whole:].tolist(), b[whole:].tolist()
        norm_a, norm_b = hypot(*last_a), hypot(*last_b)
        gap = dist(last_a, last_b)
        squares_a += norm_a * norm_a
        squares_b += norm_b * norm_b
        squares_gap += gap * gap
    scale = math.sqrt(squares_a) * math.sqrt(squares_b)
    if not 0 < scale < math.inf:
        return None
    squares = squares_a + squares_b
    similarity = (squares - squares_gap) / 2 / scale
    chunks = -(-count // _PIECE)
    margin = _UNIT * (4 * count + (64 + 4 * chunks) * (1 + squares / scale))
    if not margin < 1e-6:  # never for real embeddings; cosine decides instead
        return None
    return similarity, margin


def _identical(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the two vectors hold the same values (float32 arrays: the same bits).

    Arrays are compared as bytes: comparing them value by value would build a float
    object per element, which costs more than the sum this test saves.
    """
    if not a or a[0] != b[0]:
        return False
    if isinstance(a, array) and isinstance(b, array) and a.typecode == b.typecode:
        return a.tobytes() == b.tobytes()
    return a == b


def _squares(values: Sequence[float]) -> float:
    """|v|^2 summed left to right, exactly as the loop in :func:`cosine` sums it."""
    total = 0.0
    for x in values:
        total += x * x
    return total
