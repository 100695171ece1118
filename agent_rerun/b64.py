"""Strict base64: one spelling per byte string.

Lenient decoders accept whitespace, missing padding and non-zero trailing bits,
so one signature can be written many ways; an envelope whose bytes can change
without breaking its signature invites confusion about what was signed.
"""

from __future__ import annotations

import base64
import binascii
import sys

from agent_rerun.errors import RerunError


class Base64Error(RerunError, ValueError):
    """The text is not canonical standard base64."""


def decode_strict(text: str, *, length: int | None = None) -> bytes:
    """Decode standard, padded, canonical base64 or raise ``Base64Error``.

    With ``length``, anything but exactly that many bytes is refused too: a key
    of the wrong size is as unusable as one that is not base64.
    """
    if not isinstance(text, str):
        raise Base64Error("must be a base64 string")
    if not text.isascii():
        raise Base64Error("is not base64 (non-ASCII characters)")
    try:
        raw = _decode_alphabet_only(text)
    except (binascii.Error, ValueError):
        raise Base64Error("is not valid padded standard base64") from None
    # Strict decoding has refused stray characters and misplaced padding, so what
    # is left to differ is extra padding (the length) and the bits a final padded
    # group leaves unused: re-encode that group rather than the whole text.
    tail = len(raw) % 3
    if len(text) != (len(raw) + 2) // 3 * 4 or (
        tail and base64.b64encode(raw[-tail:]).decode("ascii") != text[-4:]
    ):
        raise Base64Error("is not canonical base64 (it re-encodes differently)")
    if length is not None and len(raw) != length:
        raise Base64Error(f"is not base64 of exactly {length} bytes")
    return raw


if sys.version_info >= (3, 11):
    def _decode_alphabet_only(text: str) -> bytes:
        """Base64 with nothing outside the alphabet and no data after padding.

        ``strict_mode`` checks that while decoding; ``b64decode(validate=True)``
        runs a regular expression over the text first, which cost a sixth of
        decoding a 3,072-dim embedding.
        """
        return binascii.a2b_base64(text, strict_mode=True)
else:
    def _decode_alphabet_only(text: str) -> bytes:
        """Base64 with nothing outside the alphabet (3.10 has no ``strict_mode``)."""
        return base64.b64decode(text, validate=True)


def decode_strict_or_none(text: str, *, length: int | None = None) -> bytes | None:
    """``decode_strict``, but None where it would raise: for parsers that try
    base64 first and read the text another way when it is not."""
    try:
        return decode_strict(text, length=length)
    except Base64Error:
        return None


def encode(data: bytes) -> str:
    """Standard padded base64 as ASCII text."""
    return base64.b64encode(data).decode("ascii")
