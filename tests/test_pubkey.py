"""agent_rerun.pubkey: the spellings people compare must match OpenSSH's to the byte."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_rerun.pubkey import b64_public_key, fingerprint, ssh_public_key_line, ssh_wire_blob

SMALL_ORDER = bytes(32)  # y = 0 (all zero): a point of small order a hostile bundle may carry


def _wire(public_key: bytes) -> bytes:
    """RFC 8709 section 4 by hand: string "ssh-ed25519", string key."""
    return b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", public_key))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from(["", "alice@example", "a b"]))
def test_line_is_the_rfc_8709_blob_for_any_32_bytes(public_key: bytes, comment: str) -> None:
    expected = "ssh-ed25519 " + base64.b64encode(_wire(public_key)).decode("ascii")
    expected = f"{expected} {comment}" if comment else expected
    assert ssh_public_key_line(public_key, comment) == expected
    assert ssh_wire_blob(public_key) == _wire(public_key)


def test_small_order_keys_can_still_be_shown() -> None:
    assert ssh_public_key_line(SMALL_ORDER).startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")


def test_b64_public_key_is_plain_padded_base64() -> None:
    assert b64_public_key(bytes(range(32))) == base64.b64encode(bytes(range(32))).decode()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) absent")
def test_fingerprint_and_line_match_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", str(key)],
                   check=True)
    line = (tmp_path / "id.pub").read_text().strip()
    raw = base64.b64decode(line.split()[1])[-32:]
    assert ssh_public_key_line(raw, "c") == line
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(key) + ".pub"], check=True,
                            capture_output=True, text=True).stdout.split()
    assert fingerprint(raw) == listed[1]
