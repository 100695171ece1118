"""Revoked signer keys: a leaked key is refused even while a trust file still lists it.

A revocation file is what ``ssh-keygen -Y verify -r`` takes: an OpenSSH KRL
(``ssh-keygen -k``), or a text list of public keys in the line forms trust files
take. Unlike ssh-keygen, a text line we cannot read is refused, not skipped: a
skipped line would be a revocation silently dropped. Lookups are set
membership, so a list of 10,000 keys costs what a list of ten does.

Pure software (stdlib only); verify imports it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent_rerun.b64 import Base64Error, decode_strict
from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_wire_blob

#: Anything larger is not a revocation list someone meant to give us.
MAX_REVOCATION_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RevocationList:
    """Revoked keys as raw Ed25519 keys, SSH key blobs and blob fingerprints.

    ``sources`` names the files it was read from, for messages and results.
    """

    raw_keys: frozenset[bytes] = frozenset()
    key_blobs: frozenset[bytes] = frozenset()
    sha1_fingerprints: frozenset[bytes] = frozenset()
    sha256_fingerprints: frozenset[bytes] = frozenset()
    sources: tuple[str, ...] = field(default=())

    def is_revoked(self, public_key: bytes) -> bool:
        """True when any entry names this raw Ed25519 public key."""
        if public_key in self.raw_keys:
            return True
        blob = ssh_wire_blob(public_key)
        # A digest is computed only when a list holds that kind: this runs once per bundle.
        return (
            blob in self.key_blobs
            or (bool(self.sha256_fingerprints)
                and hashlib.sha256(blob).digest() in self.sha256_fingerprints)
            or (bool(self.sha1_fingerprints)
                and hashlib.sha1(blob, usedforsecurity=False).digest()
                in self.sha1_fingerprints)
        )

    def __len__(self) -> int:
        return (len(self.raw_keys) + len(self.key_blobs) + len(self.sha1_fingerprints)
                + len(self.sha256_fingerprints))

    def merged(self, other: RevocationList) -> RevocationList:
        """Both lists at once: a key revoked by either is revoked."""
        return RevocationList(
            self.raw_keys | other.raw_keys,
            self.key_blobs | other.key_blobs,
            self.sha1_fingerprints | other.sha1_fingerprints,
            self.sha256_fingerprints | other.sha256_fingerprints,
            self.sources + other.sources,
        )


def revoked_keys_from(keys: Iterable[bytes | str]) -> RevocationList:
    """A list from raw 32-byte keys or key texts (base64 raw key or ``ssh-ed25519 AAAA...``)."""
    from agent_rerun.trust import parse_trusted_key

    if isinstance(keys, (str, bytes, bytearray)):
        raise InputError("revoked_keys must be a list of keys, not a single key")
    raw: set[bytes] = set()
    for key in keys:
        if isinstance(key, (bytes, bytearray)):
            if len(key) != 32:
                raise InputError(f"a revoked raw key must be 32 bytes, not {len(key)}")
            raw.add(bytes(key))
        elif isinstance(key, str):
            try:
                raw.add(parse_trusted_key(key).public_key)
            except InputError as exc:
                raise InputError(f"revoked key: {exc}") from None
        else:
            raise InputError(f"a revoked key cannot be a {type(key).__name__}")
    return RevocationList(raw_keys=frozenset(raw))


def load_revocation_file(path: str | os.PathLike[str]) -> RevocationList:
    """Read a KRL or a key list; any problem raises ``InputError`` naming the file."""
    from agent_rerun.inputs import read_input
    from agent_rerun.krl import KrlError, is_krl, parse_krl

    where = Path(path).expanduser()
    data = read_input(where, "revocation file", limit=MAX_REVOCATION_FILE_BYTES)
    if is_krl(data):
        try:
            krl = parse_krl(data)
        except KrlError as exc:
            raise InputError(f"{where}: {exc}") from None
        return RevocationList(key_blobs=krl.key_blobs, sha1_fingerprints=krl.sha1_fingerprints,
                              sha256_fingerprints=krl.sha256_fingerprints,
                              sources=(str(where),))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: revocation file is neither an OpenSSH KRL nor UTF-8 "
                         "text") from None
    return _parse_key_list(text, where)


def _parse_key_list(text: str, where: Path) -> RevocationList:
    from agent_rerun.trust import key_lines, parse_trust_line

    raw: set[bytes] = set()
    blobs: set[bytes] = set()
    for number, line in key_lines(text, where):
        fields = line.split()
        if fields[0].startswith(("ssh-", "ecdsa-", "sk-")) and len(fields) >= 2:
            # Any key type may be revoked (a shared list also names RSA keys);
            # only an ed25519 one can ever match a bundle.
            blobs.add(_key_blob(fields[0], fields[1], f"{where}:{number}"))
            continue
        try:
            raw.add(parse_trust_line(line, f"{where}:{number}").public_key)
        except InputError as exc:
            raise InputError(f"{exc} (in a revocation list)") from None
    return RevocationList(raw_keys=frozenset(raw), key_blobs=frozenset(blobs),
                          sources=(str(where),))


def _key_blob(key_type: str, text: str, where: str) -> bytes:
    """The SSH wire blob of ``type base64``, checked to be of that type."""
    try:
        blob = decode_strict(text)
    except Base64Error as exc:
        raise InputError(f"{where}: the {key_type} key {exc}") from None
    prefix = len(key_type).to_bytes(4, "big") + key_type.encode("ascii")
    if not blob.startswith(prefix) or len(blob) <= len(prefix):
        raise InputError(f"{where}: the key blob is not of type {key_type}")
    return blob
