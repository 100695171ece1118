"""The fast trust-line reader agrees with the general parsers it replaced.

Trust files are parsed with a hand-written ssh-ed25519 blob reader and
regex field splitting (a 10,000-key file must not cost seconds). These tests
hold it to ``cryptography``'s OpenSSH key loader on mutated blobs, and to
OpenSSH's rule that only spaces and tabs separate fields.
"""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_public_key_line
from agent_rerun.trust import parse_trust_line, parse_trusted_key

KEY = bytes(range(32))
LINE = ssh_public_key_line(KEY)
BLOB = base64.b64decode(LINE.split()[1])


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


BLOBS = {
    "good": BLOB,
    "trailing byte": BLOB + b"\x00",
    "short key": _string(b"ssh-ed25519") + _string(KEY[:31]),
    "long key": _string(b"ssh-ed25519") + _string(KEY + b"\x00"),
    "length past the end": _string(b"ssh-ed25519") + struct.pack(">I", 64) + KEY,
    "other type inside": _string(b"ssh-ed25519x") + _string(KEY),
    "rsa inside": _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(KEY),
    "empty": b"",
    "type only": _string(b"ssh-ed25519"),
}


def _cryptography_reads(blob: bytes) -> bytes | None:
    try:
        key = load_ssh_public_key(b"ssh-ed25519 " + base64.b64encode(blob))
    except (ValueError, TypeError):
        return None
    return key.public_bytes_raw() if isinstance(key, Ed25519PublicKey) else None


def _ours(blob: bytes) -> bytes | None:
    try:
        return parse_trusted_key("ssh-ed25519 " + base64.b64encode(blob).decode()).public_key
    except InputError:
        return None


@pytest.mark.parametrize("name", list(BLOBS))
def test_blob_reader_agrees_with_cryptography(name: str) -> None:
    blob = BLOBS[name]
    assert _ours(blob) == _cryptography_reads(blob)
    assert (_ours(blob) is not None) is (name == "good")


@pytest.mark.parametrize("separator", ["\u00a0", "\u2003", "\u3000"])
def test_only_space_and_tab_separate_fields(separator: str) -> None:
    """``str.split()`` would split at these; OpenSSH does not, so neither do we."""
    line = f"alice{separator}{LINE}"
    with pytest.raises(InputError):
        parse_trust_line(line, "f:1")
    assert parse_trust_line(f"alice\t{LINE}", "f:1").principals == ("alice",)


def test_quotes_keep_commas_and_spaces() -> None:
    entry = parse_trust_line(
        f'"alice smith,bob" namespaces="git,agent-rerun",valid-after="20200101Z" {LINE}', "f:1")
    assert entry.principals == ("alice smith", "bob")
    assert entry.namespaces == ("git", "agent-rerun")
    with pytest.raises(InputError, match="unterminated"):
        parse_trust_line(f'alice namespaces="git {LINE}', "f:1")
