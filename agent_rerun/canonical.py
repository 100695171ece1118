"""RFC 8785 (JCS) bytes and the ``sha256:<hex>`` hashes a bundle carries.

Hashes are computed over canonical bytes so that two parties who hold the same
JSON value, however it was spelled in their files, compute the same hash.

The ``rfc8785`` package is the reference for every byte we produce, but it is
pure Python and writes one small piece at a time, so multi-megabyte transcripts
spent most of capture and verify inside it. ``jcs_bytes`` therefore takes a fast
path for plain JSON values (exact ``dict``/``list``/``str``/``int``/``float``/
``bool``/``None``) that escapes strings with the C JSON string encoder, and hands
everything else to ``rfc8785.dumps`` unchanged, so the bytes, and the exception
raised for a value JCS cannot encode, are always exactly ``rfc8785``'s.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

_INT_LIMIT = 2**53 - 1


class _NotPlain(Exception):
    """The value needs ``rfc8785`` itself: an unusual type, or one it will refuse."""


def jcs_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value.

    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for values JCS
    cannot encode identically everywhere: non-finite floats, integers beyond
    +/-(2**53 - 1), lone surrogates. Validate first to get a named field instead.
    """
    chunks: list[bytes] = []
    try:
        _encode(value, chunks.append)
        return b"".join(chunks)
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        # A lone surrogate fails the UTF-8 encode; rfc8785 reports it (and every
        # other refusal) with its own exception.
        return _reference_dumps(value)


def sha256_hex(data: bytes) -> str:
    """``sha256:`` followed by the lowercase hex SHA-256 of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_of_jcs(value: Any) -> str:
    """The hash a bundle records for a JSON value: SHA-256 over its JCS bytes."""
    return sha256_hex(jcs_bytes(value))


def _encode(value: Any, emit: Any) -> None:
    """Append the canonical UTF-8 of ``value`` to the output via ``emit``.

    Each string is encoded on its own: joining bytes is cheaper than joining
    text of mixed widths (one emoji makes a joined string four bytes a character).
    """
    kind = type(value)
    if kind is str:
        emit(encode_basestring(value).encode("utf-8"))
    elif kind is dict:
        if not value:
            emit(b"{}")
            return
        emit(b"{")
        first = True
        for key, item in _sorted_items(value):
            if not first:
                emit(b",")
            first = False
            emit(encode_basestring(key).encode("utf-8"))
            emit(b":")
            _encode(item, emit)
        emit(b"}")
    elif kind is list:
        if not value:
            emit(b"[]")
            return
        emit(b"[")
        first = True
        for item in value:
            if not first:
                emit(b",")
            first = False
            _encode(item, emit)
        emit(b"]")
    elif value is None:
        emit(b"null")
    elif value is True:
        emit(b"true")
    elif value is False:
        emit(b"false")
    elif kind is int:
        if not -_INT_LIMIT <= value <= _INT_LIMIT:
            raise _NotPlain
        emit(int.__repr__(value).encode("ascii"))
    elif kind is float:
        emit(_float_text(value))
    else:
        raise _NotPlain


def _sorted_items(obj: dict[Any, Any]) -> list[tuple[str, Any]]:
    """Items in JCS order: by UTF-16 code units, which differs from Python's
    code-point order only when keys mix U+E000..U+FFFF with astral characters."""
    for key in obj:
        if type(key) is not str:
            raise _NotPlain
        if not key.isascii():
            # Lone surrogates raise UnicodeEncodeError here, and rfc8785 reports them.
            return sorted(obj.items(), key=lambda kv: kv[0].encode("utf-16-be"))
    return sorted(obj.items())


def _float_text(number: float) -> bytes:
    """ES6 number text. Python's repr already is it for non-integral values in
    fixed notation (both pick the shortest round-tripping digits); integral values,
    exponents and non-finite values go through rfc8785 itself."""
    text = float.__repr__(number)
    if "n" in text:  # inf, nan: refused, and rfc8785 must say so for the whole value
        raise _NotPlain
    if "e" in text or text.endswith(".0"):
        return _reference_dumps(number)
    return text.encode("ascii")


def _reference_dumps(value: Any) -> bytes:
    """``rfc8785.dumps``, imported on first use: most values never need it, and
    ``rerun verify`` should not pay for the import at start-up."""
    import rfc8785

    return rfc8785.dumps(value)
