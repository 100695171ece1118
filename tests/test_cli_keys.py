"""keygen, pubkey, keys list and inspect: through click's runner and a real tty."""

from __future__ import annotations

import base64
import os
import pty
import select
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from support import invoke_cli as run
from support import output_fields as _fields

from agent_rerun.cli import keys_cmd
from agent_rerun.cli.common import EXIT_KEY, terminal_prompt
from agent_rerun.keyfile import PASSPHRASE_ENV, backend
from agent_rerun.pubkey import fingerprint, ssh_public_key_line
from agent_rerun.trust import parse_trusted_key

PASSPHRASE = "tr0ub4dor&3"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv("RERUN_CONFIG", "")




def _with_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's stdin is no tty; pretend one so the click prompt path runs."""
    monkeypatch.setattr(keys_cmd, "prompt_if_interactive", lambda: terminal_prompt)


# ---------------------------------------------------------------- keygen


def test_keygen_prints_public_parts_only(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    result = run("keygen", str(path))
    assert result.exit_code == 0, result.stderr
    fields = _fields(result.stdout)
    signer = backend.load(str(path))
    assert fields["key"] == str(path)
    assert fields["public key"] == base64.b64encode(signer.public_key).decode()
    assert fields["fingerprint"] == fingerprint(signer.public_key)
    assert "PRIVATE" not in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_refuses_to_overwrite_then_force(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = _fields(run("keygen", str(path)).stdout)["public key"]
    before = path.read_bytes()
    refused = run("keygen", str(path))
    assert refused.exit_code == EXIT_KEY
    assert refused.stdout == ""
    assert (
        refused.stderr
        == f"rerun: error: {path}: already exists; not overwriting a key (use --force)\n"
    )
    assert path.read_bytes() == before
    forced = run("keygen", "--force", f"file:{path}")
    assert forced.exit_code == 0
    second = _fields(forced.stdout)["public key"]
    assert second != first
    assert base64.b64encode(backend.load(str(path)).public_key).decode() == second


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_keygen_mode_under_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "sub" / "k.pem"
    old = os.umask(umask)
    try:
        assert run("keygen", str(path)).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_keygen_passphrase_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.pem"
    _with_terminal(monkeypatch)  # the environment wins even with a terminal
    result = run("keygen", str(path), env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0
    assert "passphrase-encrypted" in result.stdout
    assert PASSPHRASE not in result.output
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_keygen_prompt_with_confirmation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_terminal(monkeypatch)
    path = tmp_path / "k.pem"
    # first pair mismatches, click asks again
    result = run("keygen", str(path), input=f"{PASSPHRASE}\nother\n{PASSPHRASE}\n{PASSPHRASE}\n")
    assert result.exit_code == 0, result.stderr
    assert "empty for no encryption" in result.stderr
    assert "do not match" in result.stderr
    assert PASSPHRASE not in result.output
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert (
        _fields(result.stdout)["public key"]
        == base64.b64encode(backend.load(str(path)).public_key).decode()
    )


# ---------------------------------------------------------------- pubkey


@pytest.fixture
def encrypted_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    path.chmod(0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return path, pub


def test_pubkey_formats(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    run("keygen", str(path))
    pub = backend.load(str(path)).public_key
    text = run("pubkey", str(path))
    assert _fields(text.stdout) == {
        "key": str(path),
        "public key": base64.b64encode(pub).decode(),
        "fingerprint": fingerprint(pub),
    }
    ssh = run("pubkey", str(path), "--format", "ssh").stdout.strip()
    assert ssh == ssh_public_key_line(pub)
    assert parse_trusted_key(ssh).public_key == pub
    raw = run("pubkey", str(path), "--format", "base64").stdout
    assert raw == base64.b64encode(pub).decode() + "\n"


def test_pubkey_encrypted_needs_passphrase_without_terminal(
    encrypted_key: tuple[Path, bytes],
) -> None:
    path, _ = encrypted_key
    result = run("pubkey", str(path))
    assert result.exit_code == EXIT_KEY
    assert result.stderr == (
        f"rerun: error: {path}: is encrypted; set {PASSPHRASE_ENV} or run on a terminal "
        "to be asked for the passphrase\n"
    )


def test_pubkey_encrypted_via_env_and_prompt(
    encrypted_key: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pub = encrypted_key
    expected = base64.b64encode(pub).decode() + "\n"
    via_env = run("pubkey", str(path), "--format", "base64", env={PASSPHRASE_ENV: PASSPHRASE})
    assert via_env.stdout == expected
    _with_terminal(monkeypatch)
    via_prompt = run("pubkey", str(path), "--format", "base64", input=f"{PASSPHRASE}\n")
    assert via_prompt.exit_code == 0
    assert via_prompt.stdout == expected
    assert f"Passphrase for {path}" in via_prompt.stderr
    assert PASSPHRASE not in via_prompt.output


def test_pubkey_wrong_passphrase_one_line(
    encrypted_key: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = encrypted_key
    _with_terminal(monkeypatch)
    result = run("pubkey", str(path), input="not it\n")
    assert result.exit_code == EXIT_KEY
    assert result.stderr.endswith(f"rerun: error: {path}: wrong passphrase\n")
    assert "not it" not in result.output


def test_permission_warning_is_one_stderr_line(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    run("keygen", str(path))
    path.chmod(0o644)
    result = run("pubkey", str(path), "--format", "base64")
    assert result.exit_code == 0
    assert result.stderr == (
        f"rerun: warning: key file {path} is accessible by group or others (mode 0644); "
        f"fix with: chmod 600 {path}\n"
    )


def test_non_ed25519_key_exit_code(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    result = run("pubkey", str(path))
    assert result.exit_code == EXIT_KEY
    assert "ECDSA" in result.stderr
    assert "ed25519" in result.stderr
    assert result.stderr.count("\n") == 1


def test_unknown_scheme_one_line() -> None:
    result = run("pubkey", "nosuchscheme:foo")
    assert result.exit_code == EXIT_KEY
    assert result.stderr.startswith("rerun: error: no signer backend for scheme 'nosuchscheme'")


def test_keys_list(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    run("keygen", str(path))
    result = run("keys", "list", str(path))
    assert result.exit_code == 0
    fields = _fields(result.stdout)
    assert fields["key"] == str(path)
    assert fields["description"] == "PKCS#8 PEM, not encrypted"
    folder = run("keys", "list", str(tmp_path))
    assert folder.exit_code == EXIT_KEY
    assert "listing is for keyring and token backends" in folder.stderr


# ---------------------------------------------------------------- a real terminal


def _keygen_on_a_tty(path: Path, answers: list[str]) -> tuple[int, bytes, int]:
    """Run ``rerun keygen PATH`` on a pty, typing one answer per prompt.

    Returns the exit status, everything the terminal showed, and how many prompts
    were answered. Nothing of the prompt machinery is replaced: the command finds
    a real terminal on stdin and asks through click, as for a user.
    """
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    env["RERUN_CONFIG"] = ""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agent_rerun.cli import main; main()", "keygen", str(path)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    )
    os.close(child)
    transcript = b""
    answered = 0
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            proc.kill()
            pytest.fail(f"no output from rerun keygen; got {transcript!r}")
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        transcript += chunk
        if (
            transcript.count(b": ") > answered
            and answered < len(answers)
            and transcript.rstrip().endswith(b":")
        ):
            os.write(main, answers[answered].encode() + b"\n")
            answered += 1
    os.close(main)
    return proc.wait(timeout=30), transcript, answered


def test_keygen_on_a_real_tty(tmp_path: Path) -> None:
    """The installed prompt path end to end: a pty, hidden input, confirmation."""
    path = tmp_path / "k.pem"
    status, transcript, answered = _keygen_on_a_tty(path, [PASSPHRASE, PASSPHRASE])
    assert status == 0, transcript
    assert answered == 2
    assert PASSPHRASE.encode() not in transcript  # hidden input is not echoed
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_keygen_empty_prompt_means_unencrypted(tmp_path: Path) -> None:
    """Pressing Enter at keygen's real prompt (and at its confirmation) writes a plain key."""
    path = tmp_path / "k.pem"
    status, transcript, answered = _keygen_on_a_tty(path, ["", ""])
    assert status == 0, transcript
    assert answered == 2, transcript
    assert b"empty for no encryption" in transcript
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert b"passphrase-encrypted" not in transcript
