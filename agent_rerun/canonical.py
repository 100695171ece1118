"""RFC 8785 (JCS) bytes and the ``sha256:<hex>`` hashes a bundle carries.

Hashes are computed over canonical bytes so that two parties who hold the same
JSON value, however it was spelled in their files, compute the same hash.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def jcs_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value.

    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for values JCS
    cannot encode identically everywhere: non-finite floats, integers beyond
    +/-(2**53 - 1), lone surrogates. Validate first to get a named field instead.
    """
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    """``sha256:`` followed by the lowercase hex SHA-256 of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_of_jcs(value: Any) -> str:
    """The hash a bundle records for a JSON value: SHA-256 over its JCS bytes."""
    return sha256_hex(jcs_bytes(value))
