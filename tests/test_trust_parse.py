"""The fast trust-line reader agrees with the general parsers it replaced.

Trust files are parsed with a hand-written ssh-ed25519 blob reader and
regex field splitting (a 10,000-key file must not cost seconds). These tests
hold it to ``cryptography``'s OpenSSH key loader on mutated blobs, and to
OpenSSH's rule that only spaces and tabs separate fields.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_public_key_line
from agent_rerun.trust import parse_trust_file, parse_trust_line, parse_trusted_key

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


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=' \t"a,=\u00a0', max_size=24))
def test_field_splitting_agrees_with_the_quote_aware_cutter(line: str) -> None:
    """The one-regex field splitter reads every line as the general cutter does.

    The cutter (still used for option lists) keeps quoted runs whole and cuts
    at spaces and tabs outside them; empty fields do not count.
    """
    from agent_rerun.trust import _BadKey, _split_fields, _split_outside_quotes

    try:
        expected: list[str] | None = [
            part for part in _split_outside_quotes(line, " \t") if part]
    except _BadKey:
        expected = None
    try:
        got: list[str] | None = _split_fields(line)
    except _BadKey:
        got = None
    assert got == expected


def test_a_bad_option_field_is_refused_every_time_it_repeats(tmp_path: Path) -> None:
    """Option fields are parsed once per distinct text: a repeat must not slip through."""
    lines = "".join(f'u{index} namespaces="agent-rerun",bogus="1" '
                    f"{ssh_public_key_line(bytes([index]) * 32)}\n" for index in range(3))
    for number in (1, 2, 3):
        path = tmp_path / f"allowed_signers{number}"
        kept = lines.splitlines(keepends=True)
        # Only line ``number`` carries the bad option; the others are good.
        path.write_text("".join(
            line if index + 1 == number else line.replace(',bogus="1"', "")
            for index, line in enumerate(kept)))
        with pytest.raises(InputError, match=rf"{path}:{number}: option 'bogus'"):
            parse_trust_file(path)
