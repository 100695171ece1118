"""The file backend: every key format, passphrases, permissions, no-overwrite, atomic --force."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from support import require

from agent_rerun.errors import SignerError
from agent_rerun.keyfile import (
    PASSPHRASE_ENV,
    KeyPermissionWarning,
    backend,
    key_path,
    public_key_of,
    read_private_key,
)
from agent_rerun.signer import Signer, backend_for, load_signer

PASSPHRASE = "correct horse battery staple"


def _raw_pub(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _verifies(signer: Signer, expected_pub: bytes) -> None:
    assert signer.public_key == expected_pub
    signature = signer.sign(b"message")
    assert len(signature) == 64
    ed25519.Ed25519PublicKey.from_public_bytes(expected_pub).verify(signature, b"message")


@pytest.fixture(autouse=True)
def _no_env_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


# ---------------------------------------------------------------- formats


def test_published_key_json(tmp_path: Path, key: ed25519.Ed25519PrivateKey) -> None:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    doc = {
        "privateKey": base64.b64encode(raw).decode(),
        "publicKey": base64.b64encode(_raw_pub(key)).decode(),
        "note": "test",
    }
    path = _write(tmp_path / "key.json", json.dumps(doc).encode())
    with backend.load(str(path)) as signer:
        _verifies(signer, _raw_pub(key))


def test_conformance_test_key_json(tmp_path: Path) -> None:
    # The published fixture: 32 bytes of 0x01 and its stated public key.
    doc = {
        "privateKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "publicKey": "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=",
    }
    path = _write(tmp_path / "test-key.json", json.dumps(doc).encode())
    signer = backend.load(str(path))
    assert base64.b64encode(signer.public_key).decode() == doc["publicKey"]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"privateKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}, "canonical base64"),
        ({"privateKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQF="}, "canonical base64"),
        ({"privateKey": "AQEB"}, "exactly 32 bytes"),
        ({"publicKey": "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="}, '"privateKey"'),
        (
            {
                "privateKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                "publicKey": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
            },
            "does not belong",
        ),
    ],
)
def test_bad_key_json_refused(tmp_path: Path, doc: dict[str, str], needle: str) -> None:
    path = _write(tmp_path / "key.json", json.dumps(doc).encode())
    with pytest.raises(SignerError, match=needle):
        backend.load(str(path))


def test_key_json_duplicate_field_refused(tmp_path: Path) -> None:
    text = (
        '{"privateKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",'
        ' "privateKey": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}'
    )
    path = _write(tmp_path / "key.json", text.encode())
    with pytest.raises(SignerError, match="duplicate"):
        backend.load(str(path))


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH]
)
def test_plain_pem_formats(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey, fmt: serialization.PrivateFormat
) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    path = _write(tmp_path / "key", data)
    with backend.load(str(path)) as signer:
        _verifies(signer, _raw_pub(key))
    assert "not encrypted" in read_private_key(path)[1]


def _encrypted(key: ed25519.Ed25519PrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(PASSPHRASE.encode())
    )


def _require_bcrypt() -> None:
    """Encrypted OpenSSH keys need the bcrypt package: skip without it (fail under CI)."""
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        require(False, "encrypted OpenSSH keys need the bcrypt package")


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH]
)
def test_encrypted_formats_with_env_passphrase(
    tmp_path: Path,
    key: ed25519.Ed25519PrivateKey,
    fmt: serialization.PrivateFormat,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fmt is serialization.PrivateFormat.OpenSSH:
        _require_bcrypt()
    path = _write(tmp_path / "key", _encrypted(key, fmt))
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    with backend.load(str(path)) as signer:
        _verifies(signer, _raw_pub(key))


def test_encrypted_with_prompt(tmp_path: Path, key: ed25519.Ed25519PrivateKey) -> None:
    path = _write(tmp_path / "key.pem", _encrypted(key, serialization.PrivateFormat.PKCS8))
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append((text, confirm))
        return PASSPHRASE

    signer = backend.load(f"file:{path}", prompt=prompt)
    _verifies(signer, _raw_pub(key))
    assert asked == [(f"Passphrase for {path}", False)]


def test_env_passphrase_wins_over_prompt(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "key.pem", _encrypted(key, serialization.PrivateFormat.PKCS8))
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)

    def prompt(text: str, confirm: bool) -> str:
        raise AssertionError("must not prompt when the environment has the passphrase")

    assert backend.load(str(path), prompt=prompt).public_key == _raw_pub(key)


def test_encrypted_without_passphrase_source(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    path = _write(tmp_path / "key.pem", _encrypted(key, serialization.PrivateFormat.PKCS8))
    with pytest.raises(SignerError, match=f"encrypted; set {PASSPHRASE_ENV}"):
        backend.load(str(path))


@pytest.mark.parametrize("wrong", ["wrong", ""])
@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH]
)
def test_wrong_passphrase_one_clear_line(
    tmp_path: Path,
    key: ed25519.Ed25519PrivateKey,
    fmt: serialization.PrivateFormat,
    wrong: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fmt is serialization.PrivateFormat.OpenSSH:
        _require_bcrypt()
    path = _write(tmp_path / "key", _encrypted(key, fmt))
    monkeypatch.setenv(PASSPHRASE_ENV, wrong)
    with pytest.raises(SignerError) as caught:
        backend.load(str(path))
    assert str(caught.value) == f"{path}: wrong passphrase"


@pytest.mark.parametrize("passphrase", ["", PASSPHRASE])
def test_ssh_keygen_made_key(
    tmp_path: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = shutil.which("ssh-keygen")
    require(tool is not None, "ssh-keygen (openssh-client) is not installed")
    if passphrase:
        _require_bcrypt()
    assert tool is not None
    path = tmp_path / "id_ed25519"
    subprocess.run(
        [tool, "-q", "-t", "ed25519", "-N", passphrase, "-C", "dev@example", "-f", str(path)],
        check=True,
    )
    monkeypatch.setenv(PASSPHRASE_ENV, passphrase)
    signer = backend.load(str(path))
    # ssh-keygen's own .pub file must name the same key.
    pub_line = (tmp_path / "id_ed25519.pub").read_text().split()
    blob = base64.b64decode(pub_line[1])
    assert blob[-32:] == signer.public_key
    _verifies(signer, signer.public_key)


def _foreign_keys() -> list[tuple[str, object]]:
    return [
        ("RSA", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ECDSA", ec.generate_private_key(ec.SECP256R1())),
    ]


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH]
)
@pytest.mark.parametrize(("name", "foreign"), _foreign_keys())
def test_non_ed25519_refused_with_reason(
    tmp_path: Path, name: str, foreign: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat
) -> None:
    data = foreign.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    path = _write(tmp_path / "key", data)
    with pytest.raises(SignerError) as caught:
        backend.load(str(path))
    message = str(caught.value)
    assert name in message
    assert "can only carry ed25519" in message


def test_public_key_file_refused(tmp_path: Path, key: ed25519.Ed25519PrivateKey) -> None:
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path = _write(tmp_path / "id.pub", line, mode=0o644)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no permission warning for a public key
        with pytest.raises(SignerError, match="is a public key"):
            backend.load(str(path))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"garbage", "not a recognised private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot parse"),
        (b"{not json", "not valid key JSON"),
    ],
)
def test_unparseable_files(tmp_path: Path, content: bytes, needle: str) -> None:
    path = _write(tmp_path / "key", content)
    with pytest.raises(SignerError, match=needle):
        backend.load(str(path))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="cannot read key file: No such file"):
        backend.load(str(tmp_path / "absent"))
    with pytest.raises(SignerError, match="cannot read key file: it is a folder"):
        backend.load(str(tmp_path))


# ---------------------------------------------------------------- URIs and registry


def test_uri_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert key_path("~/k.pem") == tmp_path / "k.pem"
    assert key_path("file:~/k.pem") == tmp_path / "k.pem"
    assert key_path("file:rel/k.pem") == Path("rel/k.pem")
    assert key_path("file:///abs/my%20key.pem") == Path("/abs/my key.pem")
    assert key_path("file://localhost/abs/k") == Path("/abs/k")
    with pytest.raises(SignerError, match="only local files"):
        key_path("file://server/k")
    with pytest.raises(SignerError, match="empty key path"):
        key_path("file:")


def test_registered_through_entry_point(tmp_path: Path) -> None:
    assert backend_for(str(tmp_path / "k.pem")) is backend
    assert backend_for("file:///x") is backend
    info = backend.generate(str(tmp_path / "k.pem"))
    with load_signer(str(tmp_path / "k.pem")) as signer:  # type: ignore[attr-defined]
        assert signer.public_key == info.public_key


def test_signer_close_forgets_key_and_repr_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    backend.generate(str(path))
    signer = backend.load(str(path))
    text = repr(signer)
    assert str(path) in text
    assert "PRIVATE" not in text
    signer.close()
    with pytest.raises(SignerError, match="closed"):
        signer.sign(b"x")


# ---------------------------------------------------------------- permissions


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_loose_permissions_warn_with_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    backend.generate(str(path))
    path.chmod(mode)
    with pytest.warns(KeyPermissionWarning) as record:
        backend.load(str(path))
    assert len(record) == 1
    message = str(record[0].message)
    assert f"chmod 600 {path}" in message
    assert "\n" not in message


def test_private_permissions_do_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    backend.generate(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.load(str(path))


# ---------------------------------------------------------------- generate


@pytest.mark.parametrize("umask", [0o000, 0o077, 0o022])
def test_generate_mode_0600_regardless_of_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new" / "deeper" / "k.pem"
    old = os.umask(umask)
    try:
        info = backend.generate(str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert info.uri == str(path)
    assert info.description == "PKCS#8 PEM, not encrypted"
    assert backend.load(str(path)).public_key == info.public_key


def test_generate_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = backend.generate(str(path))
    before = path.read_bytes()
    with pytest.raises(SignerError, match="already exists"):
        backend.generate(str(path))
    assert path.read_bytes() == before
    assert backend.load(str(path)).public_key == first.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no stray temp file


def test_generate_refuses_before_prompting(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    backend.generate(str(path))

    def prompt(text: str, confirm: bool) -> str:
        raise AssertionError("no prompt for a key that will not be written")

    with pytest.raises(SignerError, match="already exists"):
        backend.generate(str(path), prompt=prompt)


def test_generate_force_replaces_completely(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = backend.generate(str(path))
    second = backend.generate(str(path), force=True)
    assert first.public_key != second.public_key
    assert backend.load(str(path)).public_key == second.public_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_generate_force_failure_keeps_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the disk fails while the new key is being flushed. The old
    # key must survive untouched and no half-written temporary file may remain.
    path = tmp_path / "k.pem"
    first = backend.generate(str(path))
    before = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(SignerError, match="cannot write key file: Input/output error"):
        backend.generate(str(path), force=True)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert backend.load(str(path)).public_key == first.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_generate_encrypted_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    path = tmp_path / "k.pem"
    info = backend.generate(str(path))
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert info.description == "PKCS#8 PEM, passphrase-encrypted"
    assert PASSPHRASE.encode() not in path.read_bytes()
    assert backend.load(str(path)).public_key == info.public_key
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(SignerError, match="encrypted"):
        backend.load(str(path))


def test_generate_prompt_confirms_and_empty_means_plain(tmp_path: Path) -> None:
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append((text, confirm))
        return PASSPHRASE if len(asked) == 1 else ""

    encrypted = backend.generate(str(tmp_path / "a.pem"), prompt=prompt)
    plain = backend.generate(str(tmp_path / "b.pem"), prompt=prompt)
    assert asked[0][1] is True
    assert "empty for no encryption" in asked[0][0]
    assert encrypted.description.endswith("passphrase-encrypted")
    assert plain.description.endswith("not encrypted")
    assert (tmp_path / "a.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED")
    assert public_key_of(str(tmp_path / "b.pem")) == plain.public_key


def test_generate_into_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="is a directory"):
        backend.generate(str(tmp_path))


def test_list_keys(tmp_path: Path) -> None:
    info = backend.generate(str(tmp_path / "k.pem"))
    assert backend.list_keys(str(tmp_path / "k.pem")) == [info]
    with pytest.raises(SignerError, match="listing is for keyring and token backends"):
        backend.list_keys(str(tmp_path))
