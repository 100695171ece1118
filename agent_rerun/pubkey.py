"""Public-key spellings people compare: base64 raw, OpenSSH line, SHA256 fingerprint."""

from __future__ import annotations

import base64
import hashlib
import struct

SSH_KEY_TYPE = b"ssh-ed25519"


def ssh_wire_blob(public_key: bytes) -> bytes:
    """The SSH wire encoding of an Ed25519 public key (what ssh hashes and base64s)."""
    return _ssh_string(SSH_KEY_TYPE) + _ssh_string(public_key)


def ssh_public_key_line(public_key: bytes, comment: str = "") -> str:
    """``ssh-ed25519 AAAA... comment``: pastes into allowed_signers or authorized_keys.

    ``cryptography`` spells the line (it takes any 32 bytes, so a small-order key
    from a hostile bundle can still be shown); only the comment is ours.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PublicKey.from_public_bytes(public_key)
    line = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    return f"{line} {comment}" if comment else line


def fingerprint(public_key: bytes) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint, so it matches ``ssh-keygen -l``."""
    digest = hashlib.sha256(ssh_wire_blob(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def b64_public_key(public_key: bytes) -> str:
    """The spelling bundles carry in ``signature.pubkey``."""
    return base64.b64encode(public_key).decode("ascii")


def _ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value
