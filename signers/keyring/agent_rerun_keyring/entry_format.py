"""The text stored in a keyring entry: one line any keyring can hold.

    agent-rerun-ed25519-v1:<base64 private key, 32 bytes>:<base64 public key, 32 bytes>

The prefix says whose entry it is and which version of the encoding, so an
entry that some other program stored under the same name is refused instead of
being taken as a key. The public key is redundant on purpose: deriving it from
the private key and comparing catches a damaged or hand-edited entry before it
signs anything under an identity nobody expects.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_rerun.b64 import Base64Error, decode_strict, encode
from agent_rerun.errors import SignerError

FAMILY = "agent-rerun-ed25519-"
PREFIX = FAMILY + "v1"


def public_from_private(private_key: bytes) -> bytes:
    """The raw public key belonging to a raw 32-byte Ed25519 private key."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes_raw()


def encode_entry(private_key: bytes) -> str:
    """Spell a raw 32-byte private key as an entry (see the module docstring)."""
    public_key = public_from_private(private_key)
    return ":".join((PREFIX, encode(private_key), encode(public_key)))


def decode_entry(text: str, where: str) -> bytes:
    """Return the raw private key in an entry; ``where`` names the entry in errors.

    Messages never quote the entry: it holds a private key (or another
    program's password).
    """
    if not text.startswith(FAMILY):
        raise SignerError(
            f"{where} is not an agent-rerun key (it does not start with {PREFIX!r}); "
            "it may belong to another program: choose another name or service"
        )
    parts = text.split(":")
    if parts[0] != PREFIX:
        raise SignerError(
            f"{where} uses an encoding this version cannot read (expected {PREFIX!r})"
        )
    if len(parts) != 3:
        raise SignerError(f"{where} is damaged: expected {PREFIX}:<private>:<public>")
    private_key = _unb64(parts[1], 32, "private key", where)
    public_key = _unb64(parts[2], 32, "public key", where)
    if public_from_private(private_key) != public_key:
        raise SignerError(f"{where} is damaged: its public key does not match its private key")
    return private_key


def _unb64(text: str, size: int, what: str, where: str) -> bytes:
    try:
        data = decode_strict(text)
    except Base64Error:
        raise SignerError(f"{where} is damaged: its {what} is not base64") from None
    if len(data) != size:
        raise SignerError(f"{where} is damaged: its {what} is not {size} bytes of base64")
    return data
