"""Ed25519 over the canonical bundle: signing, and a verification that refuses weak keys.

OpenSSL (and so ``cryptography``) accepts, under a small-order public key such
as the identity point, signatures that verify for every message. A bundle
"signed" by such a key proves nothing, so those keys are refused before any
signature check, in every encoding (canonical or not, either sign bit).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from agent_rerun.b64 import Base64Error, decode_strict, encode
from agent_rerun.canonical import checked_jcs_bytes, jcs_bytes
from agent_rerun.errors import RerunError
from agent_rerun.record import FrozenRecord

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_P = 2**255 - 19
_Y_ORDER_8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
#: y-coordinates (mod p) of the eight points of order dividing 8.
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y_ORDER_8, _P - _Y_ORDER_8})


class SignatureError(RerunError, ValueError):
    """Why a signature block cannot be trusted (the text after ``BadSignature:``)."""


class KeyPair(FrozenRecord):
    """A raw 32-byte Ed25519 key pair, as the published package spells it."""

    __slots__ = _fields = ("public_key", "private_key")
    public_key: bytes
    private_key: bytes

    def __init__(self, public_key: bytes, private_key: bytes) -> None:
        self._assign(public_key, private_key)


def generate_key_pair() -> KeyPair:
    """A fresh random Ed25519 key pair as raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return KeyPair(
        public_key=key.public_key().public_bytes_raw(),
        private_key=key.private_bytes_raw(),
    )


def is_small_order(public_key: bytes) -> bool:
    """True for any encoding of a point of order 1, 2, 4 or 8."""
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    return y % _P in _SMALL_ORDER_Y


def check_ed25519(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Raise ``SignatureError`` unless ``signature`` is a valid signature of ``message``.

    The one place every signature in the project is checked (bundles, tokens'
    output, the Wycheproof suite).
    """
    from cryptography.exceptions import InvalidSignature

    if len(public_key) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"pubkey must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"sig must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    if is_small_order(public_key):
        raise SignatureError("pubkey is a small-order point, which cannot attest anything")
    try:
        _verifier(bytes(public_key)).verify(signature, message)
    except InvalidSignature:
        raise SignatureError("signature does not match payload") from None
    except ValueError as exc:
        raise SignatureError(f"pubkey is not a valid Ed25519 point ({exc})") from None


@functools.lru_cache(maxsize=256)
def _verifier(public_key: bytes) -> Any:
    """``cryptography``'s key object for a raw public key, made once per key: a
    batch checks thousands of bundles by one signer. An unusable key raises
    ``ValueError`` each time (exceptions are not cached)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(public_key)


def signing_payload(bundle: Mapping[str, Any], *, unchecked_path: str | None = None) -> bytes:
    """The bytes a signature covers: JCS of the bundle without its ``signature``.

    With ``unchecked_path``, the values are not yet known to be in the JCS
    domain: they are checked while encoded, and a ``ValidationError`` names the
    first one outside it, from that path.
    """
    unsigned = {key: value for key, value in bundle.items() if key != "signature"}
    if unchecked_path is None:
        return jcs_bytes(unsigned)
    return checked_jcs_bytes(unsigned, unchecked_path)


def decode_signature_block(block: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The raw public key and signature from a bundle's ``signature`` block."""
    if block.get("alg") != "ed25519":
        raise SignatureError(f"alg must be 'ed25519', got {block.get('alg')!r}")
    try:
        public_key = decode_strict(block.get("pubkey"))  # type: ignore[arg-type]
    except Base64Error as exc:
        raise SignatureError(f"pubkey {exc}") from None
    try:
        signature = decode_strict(block.get("sig"))  # type: ignore[arg-type]
    except Base64Error as exc:
        raise SignatureError(f"sig {exc}") from None
    return public_key, signature


def check_bundle_signature(bundle: Mapping[str, Any], payload: bytes | None = None) -> bytes:
    """Check a signed bundle's signature; return the signer's raw public key.

    ``payload`` is ``signing_payload(bundle)`` when the caller has it already.
    """
    block = bundle.get("signature")
    if not isinstance(block, Mapping):
        raise SignatureError("signature block is missing or not an object")
    public_key, signature = decode_signature_block(block)
    check_ed25519(public_key, signature, signing_payload(bundle) if payload is None else payload)
    return public_key


def signed_bundle_bytes(payload: bytes, unsigned: Mapping[str, Any],
                        block: Mapping[str, Any]) -> bytes:
    """The JCS bytes of ``unsigned`` with the ``signature`` member ``block``, from
    ``payload``, its signing payload (``signing_payload(unsigned)``).

    JCS writes an object's members in key order, so the new member goes between
    the members whose keys sort before ``"signature"`` and those after (in a
    bundle, ``tolerance`` alone): only those after are encoded again. Comparing
    a key with the ASCII ``"signature"`` gives the same order by code points as
    by UTF-16 code units. A batch writes thousands of bundles whose payloads it
    has just encoded for the signer.
    """
    if "signature" in unsigned or not all(type(key) is str for key in unsigned):
        return jcs_bytes({**unsigned, "signature": block})
    member = b'"signature":' + jcs_bytes(dict(block))
    after = {key: value for key, value in unsigned.items() if key > "signature"}
    if not after:
        return b"{" + member + b"}" if payload == b"{}" else payload[:-1] + b"," + member + b"}"
    tail = jcs_bytes(after)[1:]  # the members after, and the closing brace
    if len(after) == len(unsigned):
        return b"{" + member + b"," + tail
    if not payload.endswith(b"," + tail):
        raise ValueError("payload is not the signing payload of this bundle")
    return payload[:-len(tail)] + member + b"," + tail


def signature_block(public_key: bytes, signature: bytes) -> dict[str, str]:
    """The ``signature`` object a bundle carries."""
    return {"alg": "ed25519", "pubkey": encode(public_key), "sig": encode(signature)}
