"""The built-in ``file`` signer backend: Ed25519 private keys kept in files.

It reads the three formats developers already have — the published key JSON,
PKCS#8 PEM and OpenSSH private keys — so an existing ``~/.ssh/id_ed25519`` can
sign without conversion. New keys are written as PKCS#8 PEM (see
:func:`generate`). Parsing is left to ``cryptography``; this module only picks
the parser, finds a passphrase, and turns every failure into one clear
``SignerError`` line that never repeats a secret.

Loose file permissions produce a :class:`KeyPermissionWarning` through the
``warnings`` module (ssh refuses such keys; we only warn, so an unlucky
checkout still works), which the CLI prints as one ``rerun: warning:`` line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent_rerun.b64 import decode_strict_or_none
from agent_rerun.errors import SignerError, one_line
from agent_rerun.inputs import KeyPermissionWarning as KeyPermissionWarning
from agent_rerun.signer import InMemorySigner, KeyInfo, PromptFn
from agent_rerun.uri import file_location_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: Environment variable holding the passphrase for reading or creating a key.
PASSPHRASE_ENV = "RERUN_KEY_PASSPHRASE"

_OPENSSH_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_PEM_HEADER = b"-----BEGIN "


class FileKeySigner(InMemorySigner):
    """An in-memory signer that remembers which file it came from (for messages only)."""

    def __init__(self, private_key: Ed25519PrivateKey, path: Path, description: str) -> None:
        super().__init__(private_key)
        self.path = path
        self.description = description

    def __repr__(self) -> str:
        # Never the key itself: reprs end up in logs and tracebacks.
        return f"FileKeySigner(path={str(self.path)!r}, {self.description})"


# ---------------------------------------------------------------- URIs


def key_path(uri: str) -> Path:
    """The file a ``file`` key URI names: ``path``, ``file:path`` or ``file:///abs/path``.

    ``~`` is expanded because config files and shells differ in whether they do.
    """
    raw = file_location_path(uri, "file key URI")
    if not raw:
        raise SignerError("empty key path; give a key file such as ~/.config/agent-rerun/key.pem")
    return Path(raw).expanduser()


# ---------------------------------------------------------------- reading


def read_private_key(
    path: str | os.PathLike[str], *, prompt: PromptFn | None = None
) -> tuple[Ed25519PrivateKey, str]:
    """Load an Ed25519 private key from ``path`` and describe its format.

    The passphrase, when the file is encrypted, comes from ``RERUN_KEY_PASSPHRASE``,
    else from ``prompt``; without either the error says how to supply one.
    """
    where = Path(path)
    data, mode = _read_key_bytes(where)
    stripped = data.lstrip()
    if stripped.startswith((b"ssh-", b"ecdsa-", b"sk-")) or b"PUBLIC KEY-----" in stripped[:40]:
        raise SignerError(
            f"{where}: is a public key; signing needs the private key file (without .pub)"
        )
    _check_permissions(where, mode)
    if stripped.startswith(b"{"):
        return _from_json(where, data), "key JSON"
    if stripped.startswith(_OPENSSH_HEADER):
        return _from_pem_like(where, data, prompt, openssh=True)
    if stripped.startswith(_PEM_HEADER):
        return _from_pem_like(where, data, prompt, openssh=False)
    raise SignerError(
        f"{where}: not a recognised private key (expected key JSON, PKCS#8 PEM "
        "or an OpenSSH private key)"
    )


def public_key_of(uri: str, *, prompt: PromptFn | None = None) -> bytes:
    """The raw public key of the file key at ``uri`` (an encrypted file needs its passphrase)."""
    key, _ = read_private_key(key_path(uri), prompt=prompt)
    return _raw_public(key)


def _read_key_bytes(path: Path) -> tuple[bytes, int]:
    from agent_rerun.inputs import KEY_FILE_LIMIT, read_input_with_mode

    return read_input_with_mode(path, "key file", limit=KEY_FILE_LIMIT, error=SignerError)


def _check_permissions(path: Path, mode: int) -> None:
    from agent_rerun.inputs import warn_if_shared

    warn_if_shared(path, mode, "key file")


def _from_json(path: Path, data: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignerError(f"{path}: not valid key JSON ({one_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("privateKey"), str):
        raise SignerError(f'{path}: key JSON needs a "privateKey" string (base64 of 32 bytes)')
    raw = decode_strict_or_none(doc["privateKey"], length=32)
    if raw is None:
        raise SignerError(f"{path}: privateKey is not canonical base64 of exactly 32 bytes")
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if "publicKey" in doc:
        claimed = doc["publicKey"]
        pub = decode_strict_or_none(claimed, length=32) if isinstance(claimed, str) else None
        if pub is None:
            raise SignerError(f"{path}: publicKey is not canonical base64 of exactly 32 bytes")
        if pub != _raw_public(key):
            raise SignerError(f"{path}: publicKey does not belong to privateKey")
    return key


def _from_pem_like(
    path: Path, data: bytes, prompt: PromptFn | None, *, openssh: bool
) -> tuple[Ed25519PrivateKey, str]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    loader = serialization.load_ssh_private_key if openssh else serialization.load_pem_private_key
    kind = "OpenSSH private key" if openssh else "PEM private key"
    encrypted = False
    try:
        try:
            key = loader(data, None)
        except TypeError:  # cryptography's signal for "this one needs a password"
            encrypted = True
            secret = _passphrase_for(path, prompt)
            try:
                key = loader(data, secret)
            except (ValueError, TypeError):  # TypeError: an empty passphrase
                raise SignerError(f"{path}: wrong passphrase") from None
    except UnsupportedAlgorithm as exc:
        if "bcrypt" in str(exc):
            raise SignerError(
                f"{path}: passphrase-protected OpenSSH keys need the bcrypt package "
                "(pip install \"agent-rerun[ssh]\", or pip install bcrypt)"
            ) from None
        raise SignerError(f"{path}: unsupported key ({one_line(exc)})") from None
    except ValueError as exc:
        raise SignerError(f"{path}: cannot parse {kind} ({one_line(exc)})") from None
    ed_key = _require_ed25519(path, key)
    if not openssh:
        kind = "PKCS#8 PEM" if b"PRIVATE KEY-----" in data.split(b"\n", 1)[0] else kind
    return ed_key, f"{kind}, {'passphrase-encrypted' if encrypted else 'not encrypted'}"


def _require_ed25519(path: Path, key: object) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        what = f"an RSA-{key.key_size} key"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        what = f"an ECDSA ({key.curve.name}) key"
    elif isinstance(key, dsa.DSAPrivateKey):
        what = "a DSA key"
    elif isinstance(key, ed448.Ed448PrivateKey):
        what = "an Ed448 key"
    else:
        what = f"a {type(key).__name__}"
    raise SignerError(
        f"{path}: is {what}; rerun.json v0.1 bundles can only carry ed25519 signatures "
        "(create one with: rerun keygen PATH, or ssh-keygen -t ed25519)"
    )


def _passphrase_for(path: Path, prompt: PromptFn | None) -> bytes:
    """The passphrase for an encrypted file: the environment wins, then the user."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env.encode("utf-8")
    if prompt is None:
        raise SignerError(
            f"{path}: is encrypted; set {PASSPHRASE_ENV} or run on a terminal to be asked "
            "for the passphrase"
        )
    return prompt(f"Passphrase for {path}", False).encode("utf-8")


# ---------------------------------------------------------------- backend


class FileBackend:
    """The ``file`` scheme: one key per file; see the module docstring for formats."""

    scheme = "file"

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> FileKeySigner:
        path = key_path(uri)
        key, description = read_private_key(path, prompt=prompt)
        return FileKeySigner(key, path, description)

    def generate(self, uri: str, *, force: bool = False, prompt: PromptFn | None = None) -> KeyInfo:
        """Create a new key as PKCS#8 PEM, encrypted when a passphrase is supplied.

        PKCS#8 is the standard container every crypto library and ``openssl
        pkey`` read, and it carries passphrase encryption (PBES2) in the same
        format; the key is written completely before any old file is replaced.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from agent_rerun.atomic import write_atomic

        path = key_path(uri)
        if path.is_dir():
            raise SignerError(f"{path}: is a directory; give the path of the new key file")
        if not force and (path.exists() or path.is_symlink()):
            raise SignerError(f"{path}: already exists; not overwriting a key (use --force)")
        passphrase = _new_passphrase(path, prompt)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        _make_private_dirs(path.parent)
        try:
            write_atomic(path, pem, mode=0o600, replace=force)
        except FileExistsError:
            raise SignerError(
                f"{path}: already exists; not overwriting a key (use --force)"
            ) from None
        except OSError as exc:
            raise SignerError(f"{path}: cannot write key file: {exc.strerror or exc}") from None
        state = "passphrase-encrypted" if passphrase else "not encrypted"
        return KeyInfo(str(path), _raw_public(key), f"PKCS#8 PEM, {state}")

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
        path = key_path(uri)
        if path.is_dir():
            raise SignerError(
                f"{path}: is a directory; listing is for keyring and token backends, "
                "a file key URI names one key file"
            )
        key, description = read_private_key(path, prompt=prompt)
        return [KeyInfo(str(path), _raw_public(key), description)]


def _new_passphrase(path: Path, prompt: PromptFn | None) -> bytes:
    """Passphrase for a new key: the environment wins, then a confirmed prompt, else none."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env.encode("utf-8")
    if prompt is None:
        return b""
    answer = prompt(f"Passphrase for new key {path} (empty for no encryption)", True)
    return answer.encode("utf-8")


def _make_private_dirs(folder: Path) -> None:
    """Create missing parents with mode 0700 (chmod'ed, so the umask cannot widen it)."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise SignerError(f"{directory}: cannot create folder: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- helpers


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate key {name!r}")
        result[name] = value
    return result


#: The entry-point object (``agent_rerun.signers``: ``file = "agent_rerun.keyfile:backend"``).
backend = FileBackend()
