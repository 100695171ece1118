"""Regressions for issue 9 items 1-5 and 18, and issue 14 revocation (real ssh-keygen)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_rerun.cli.common import printable
from agent_rerun.config import load_config
from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_public_key_line
from agent_rerun.revocation import load_revocation_file
from agent_rerun.trust import find_trusted, parse_trust_file

REPO = Path(__file__).resolve().parent.parent


def _pub() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_no_shipped_doc_or_config_names_a_published_test_key() -> None:
    key_files = [REPO / "vectors" / "test-key.json",
                 REPO.parent / "shared" / "conformance" / "agent-rerun-v0.1" / "test-key.json"]
    key_files += [p for p in REPO.rglob("*.json") if ".venv" not in p.parts
                  and '"privateKey"' in p.read_text(errors="replace")]
    needles = set()
    for path in key_files:
        if path.is_file():
            raw = base64.b64decode(json.loads(path.read_text())["publicKey"])
            needles |= {_b64(raw), ssh_public_key_line(raw).split()[1]}
    assert needles
    shipped = [*REPO.glob("conf/*"), *REPO.glob("docs/*.md"), REPO / "README.md"]
    for doc in shipped:
        text = doc.read_text(errors="replace")
        for needle in needles:
            assert needle not in text, f"{doc} names a published test key"


def test_line_separator_cannot_smuggle_a_second_key(tmp_path: Path) -> None:
    alice, mallory = _pub(), _pub()
    line = (f'c@x valid-before="20200101Z",namespaces="git" {ssh_public_key_line(alice)} '
            f"laptop\u2028{_b64(mallory)} c\n")
    path = tmp_path / "allowed"
    path.write_text(line)
    with pytest.raises(InputError, match=r"allowed:1: control character U\+2028"):
        parse_trust_file(path)


def test_crlf_lines_and_other_controls(tmp_path: Path) -> None:
    alice = _pub()
    path = tmp_path / "allowed"
    path.write_bytes(f"a@x {ssh_public_key_line(alice)}\r\n".encode())
    assert parse_trust_file(path)[0].public_key == alice
    path.write_bytes(f"# c\na@x {ssh_public_key_line(alice)} x\x1by\n".encode())
    with pytest.raises(InputError, match="allowed:2: control character"):
        parse_trust_file(path)


def test_options_after_bare_key_are_honoured_or_refused(tmp_path: Path) -> None:
    alice = _pub()
    path = tmp_path / "allowed"
    path.write_text(f'{_b64(alice)} valid-before="20200101Z",namespaces="git"\n')
    [key] = parse_trust_file(path)
    assert key.namespaces == ("git",) and key.valid_before is not None
    assert find_trusted([key], alice) is None
    path.write_text(f"{_b64(alice)} cert-authority\n")
    with pytest.raises(InputError, match="allowed:1: option 'cert-authority'"):
        parse_trust_file(path)


@pytest.mark.parametrize("bound", ['valid-after="00010101"', 'valid-before="99991231235959"'])
def test_out_of_range_bounds_name_file_line(tmp_path: Path, bound: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo" if "9999" in bound else "America/New_York")
    time.tzset()
    try:
        path = tmp_path / "allowed"
        path.write_text(f"a@x {bound} {ssh_public_key_line(_pub())}\n")
        with pytest.raises(InputError, match="allowed:1: option"):
            parse_trust_file(path)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_dangling_config_link_at_default_location_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERUN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "agent-rerun"
    folder.mkdir()
    (folder / "config.toml").symlink_to(tmp_path / "unmounted" / "config.toml")
    with pytest.raises(InputError, match="dangling symbolic link"):
        load_config()
    (folder / "config.toml").unlink()
    (folder / "config.toml").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        load_config()


def test_printable_escapes_bidi_and_line_separators() -> None:
    for ch in ["\u202a", "\u202e", "\u2066", "\u2069", "\u2028", "\u2029"]:
        assert ch not in printable(f"a{ch}b")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_krl_from_real_ssh_keygen(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "o")],
                   check=True)
    krl = tmp_path / "krl"
    subprocess.run(["ssh-keygen", "-k", "-f", str(krl), str(tmp_path / "k.pub")], check=True,
                   capture_output=True)
    revoked = load_revocation_file(krl)
    key = base64.b64decode((tmp_path / "k.pub").read_text().split()[1])[-32:]
    other = base64.b64decode((tmp_path / "o.pub").read_text().split()[1])[-32:]
    assert revoked.is_revoked(key) and not revoked.is_revoked(other)
    query = subprocess.run(["ssh-keygen", "-Q", "-f", str(krl), str(tmp_path / "o.pub")],
                           capture_output=True)
    assert query.returncode == 0  # ssh-keygen agrees the other key is not revoked
    krl.write_bytes(krl.read_bytes()[:-3])
    with pytest.raises(InputError, match="truncated KRL"):
        load_revocation_file(krl)
