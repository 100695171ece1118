"""OpenSSH key revocation lists (KRLs, as ``ssh-keygen -k`` writes them), read strictly.

Only the sections that can name a plain key are understood: explicit keys and
SHA1/SHA256 fingerprints (OpenSSH's PROTOCOL.krl). Certificate sections and KRL
signatures are refused, not skipped: a revocation we skip is a leaked key that
still verifies. Any truncation or trailing byte is an error, so a damaged KRL
fails closed.

Pure stdlib: verify reads it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from agent_rerun.errors import RerunError

KRL_MAGIC = b"SSHKRL\n\x00"
KRL_FORMAT_VERSION = 1

_SECTION_CERTIFICATES = 1
_SECTION_EXPLICIT_KEY = 2
_SECTION_FINGERPRINT_SHA1 = 3
_SECTION_SIGNATURE = 4
_SECTION_FINGERPRINT_SHA256 = 5

_REFUSED = {
    _SECTION_CERTIFICATES: "a certificate section (agent-rerun trusts no certificates, and "
                           "cannot tell what it revokes; list the keys instead)",
    _SECTION_SIGNATURE: "a KRL signature section (signed KRLs are not supported)",
}


class KrlError(RerunError, ValueError):
    """The KRL is damaged or uses a section we do not support; the message says which."""


@dataclass(frozen=True)
class Krl:
    """What a KRL revokes: SSH public-key blobs and fingerprints of them."""

    version: int
    key_blobs: frozenset[bytes]
    sha1_fingerprints: frozenset[bytes]
    sha256_fingerprints: frozenset[bytes]


def is_krl(data: bytes) -> bool:
    """KRLs are binary and start with a magic; key lists are text."""
    return data.startswith(KRL_MAGIC)


def parse_krl(data: bytes) -> Krl:
    """Parse a whole KRL or raise ``KrlError``."""
    reader = _Reader(data)
    if reader.take(len(KRL_MAGIC), "magic") != KRL_MAGIC:
        raise KrlError("not an OpenSSH KRL (bad magic)")
    format_version = reader.uint32("format version")
    if format_version != KRL_FORMAT_VERSION:
        raise KrlError(f"KRL format version {format_version} is not supported")
    version = reader.uint64("krl version")
    reader.uint64("generated date")
    reader.uint64("flags")
    reader.string("reserved")
    reader.string("comment")
    blobs: set[bytes] = set()
    sha1: set[bytes] = set()
    sha256: set[bytes] = set()
    while not reader.done():
        section_type = reader.byte("section type")
        body = _Reader(reader.string("section data"))
        if section_type in _REFUSED:
            raise KrlError(f"the KRL holds {_REFUSED[section_type]}")
        target = {
            _SECTION_EXPLICIT_KEY: blobs,
            _SECTION_FINGERPRINT_SHA1: sha1,
            _SECTION_FINGERPRINT_SHA256: sha256,
        }.get(section_type)
        if target is None:
            raise KrlError(f"the KRL holds an unknown section type {section_type}")
        while not body.done():
            target.add(body.string("revoked key or fingerprint"))
    return Krl(version, frozenset(blobs), frozenset(sha1), frozenset(sha256))


class _Reader:
    """SSH wire-format reading that names the field it ran out in."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def done(self) -> bool:
        return self._at == len(self._data)

    def take(self, size: int, what: str) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise KrlError(f"truncated KRL (in its {what})")
        chunk = self._data[self._at:end]
        self._at = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def uint32(self, what: str) -> int:
        value: int = struct.unpack(">I", self.take(4, what))[0]
        return value

    def uint64(self, what: str) -> int:
        value: int = struct.unpack(">Q", self.take(8, what))[0]
        return value

    def string(self, what: str) -> bytes:
        return self.take(self.uint32(what), what)
