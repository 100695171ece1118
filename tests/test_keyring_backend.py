"""The keyring signer backend: URIs, the entry encoding, refusals, and a real Secret Service.

Error paths a real daemon cannot easily show (locked, no keyring, insecure
store, a store that drops writes) run against a small in-memory keyring backend
installed with keyring.set_keyring. The rest runs against the Secret Service of
the session (gnome-keyring under dbus-run-session); without one these tests
skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import ClassVar

import pytest
from support import in_ci

try:
    import agent_rerun_keyring
    import keyring
    import keyring.errors
    from agent_rerun_keyring.entry_format import decode_entry, encode_entry
    from agent_rerun_keyring.uri import KeyringRef, parse_keyring_uri
    from keyring.backend import KeyringBackend
    from keyring.backends import chainer, fail, null
    from keyring.compat import properties
except ImportError as exc:  # pragma: no cover - depends on the installation
    if in_ci():
        raise
    pytest.skip(
        f"agent-rerun-keyring is not installed ({exc}); pip install -e signers/keyring",
        allow_module_level=True,
    )

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from keyring_support import fresh_entry_fixture, secret_service_fixture, unique_name

from agent_rerun.errors import SignerError
from agent_rerun.signer import backend_for, generate_key, list_keys, load_signer

SERVICE = "agent-rerun-tests"


# ------------------------------------------------------------------ helpers


def documented_public_key(entry: str) -> bytes:
    """Decode an entry by docs/keyring.md's description, independently of the package."""
    prefix, private_b64, public_b64 = entry.split(":")
    assert prefix == "agent-rerun-ed25519-v1"
    private = base64.b64decode(private_b64, validate=True)
    public = base64.b64decode(public_b64, validate=True)
    assert len(private) == 32 and len(public) == 32
    derived = Ed25519PrivateKey.from_private_bytes(private).public_key()
    assert derived.public_bytes(Encoding.Raw, PublicFormat.Raw) == public
    return public


def assert_verifies(public_key: bytes, data: bytes, signature: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)


def one_line(exc: pytest.ExceptionInfo[SignerError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text and text
    return text


class MemoryKeyring(KeyringBackend):
    """A keyring held in a dict, to show error paths; never chosen by keyring itself.

    Its priority is -1 (not viable) outside the ``memory`` fixture, so keyring's
    own detection and chainer never pick it up in this process.
    """

    active_priority: float = -1

    @properties.classproperty
    def priority(cls) -> float:
        return cls.active_priority

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.reads = 0
        self.locked = False
        self.drop_writes = False
        self.raise_on_read: BaseException | None = None

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        self.reads += 1
        if self.raise_on_read is not None:
            raise self.raise_on_read
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        if not self.drop_writes:
            self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)

    def _check(self) -> None:
        if self.locked:
            raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


@pytest.fixture
def memory() -> Iterator[MemoryKeyring]:
    """Install a recommended (priority 5) in-memory keyring for one test."""
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    MemoryKeyring.active_priority = 5
    keyring.set_keyring(kr)
    try:
        yield kr
    finally:
        MemoryKeyring.active_priority = -1
        keyring.set_keyring(previous)


@pytest.fixture
def installed() -> Iterator[None]:
    """Install a given keyring backend object for one test, restoring the previous one."""
    previous = keyring.get_keyring()
    try:
        yield
    finally:
        keyring.set_keyring(previous)


# ------------------------------------------------------------------ URIs


@pytest.mark.parametrize(
    ("uri", "name", "service"),
    [
        ("keyring:work", "work", "agent-rerun"),
        ("KEYRING:work", "work", "agent-rerun"),
        ("keyring:work?service=team", "work", "team"),
        ("keyring:a%3Fb%25c?service=x%26y", "a?b%c", "x&y"),
        ("keyring:caf%C3%A9+1", "café+1", "agent-rerun"),
        ("keyring:me@host/key", "me@host/key", "agent-rerun"),
    ],
)
def test_uri_parses_and_round_trips(uri: str, name: str, service: str) -> None:
    ref = parse_keyring_uri(uri)
    assert (ref.name, ref.service) == (name, service)
    assert parse_keyring_uri(ref.uri) == ref


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("keyring:", "NAME is missing"),
        ("keyring:?service=x", "NAME is missing"),
        ("keyring:work?servce=x", "unknown or malformed parameter"),
        ("keyring:work?service", "unknown or malformed parameter"),
        ("keyring:work?service=a&service=b", "twice"),
        ("keyring:work?service=", "must not be empty"),
        ("keyring:50%off", "not a %XX escape"),
        ("keyring:%ff", "UTF-8"),
        ("keyring:a%0Ab", "control character"),
        ("keyring://work", "not keyring://NAME"),
        ("file:work", "not a keyring key URI"),
    ],
)
def test_bad_uris_are_refused_in_one_line(uri: str, says: str) -> None:
    with pytest.raises(SignerError) as exc:
        parse_keyring_uri(uri)
    assert says in one_line(exc)


def test_listing_accepts_an_empty_name() -> None:
    assert parse_keyring_uri("keyring:?service=x", name_required=False) == KeyringRef("", "x")


# ------------------------------------------------------------------ entry encoding


def test_entry_encoding_is_the_documented_one() -> None:
    private = bytes(range(32))
    entry = encode_entry(private)
    public = documented_public_key(entry)
    assert decode_entry(entry, "here") == private
    assert entry.startswith("agent-rerun-ed25519-v1:") and "\n" not in entry
    assert len(public) == 32


def _damaged_entries() -> list[tuple[str, str]]:
    good = encode_entry(bytes(range(32)))
    prefix, private_b64, public_b64 = good.split(":")
    other_public = encode_entry(bytes(32)).split(":")[2]
    return [
        ("hunter2", "not an agent-rerun key"),
        ("", "not an agent-rerun key"),
        ('{"privateKey": "AAAA"}', "not an agent-rerun key"),
        (f"agent-rerun-ed25519-v9:{private_b64}:{public_b64}", "cannot read"),
        (f"{prefix}:{private_b64}", "damaged"),
        (f"{prefix}:{private_b64}:{public_b64}:x", "damaged"),
        (f"{prefix}:{private_b64[:-2]}:{public_b64}", "private key is not"),
        (f"{prefix}:{private_b64} :{public_b64}", "private key is not base64"),
        (f"{prefix}:{private_b64}:{other_public}", "does not match"),
        (f"{prefix}:{base64.b64encode(bytes(31)).decode()}:{public_b64}", "not 32 bytes"),
    ]


@pytest.mark.parametrize(("entry", "says"), _damaged_entries())
def test_foreign_or_damaged_entries_are_refused_without_quoting_them(entry: str, says: str) -> None:
    with pytest.raises(SignerError) as exc:
        decode_entry(entry, "keyring entry 'k' in service 's'")
    text = one_line(exc)
    assert says in text
    assert "keyring entry 'k'" in text
    for secret_part in [*entry.split(":")[1:2], "hunter2"]:
        if len(secret_part) > 8:
            assert secret_part not in text


# ------------------------------------------------------------------ registry and purity


def test_registered_for_the_keyring_scheme() -> None:
    assert backend_for("keyring:anything") is agent_rerun_keyring.backend
    assert agent_rerun_keyring.backend.scheme == "keyring"


def test_importing_agent_rerun_does_not_import_the_keyring() -> None:
    code = (
        "import sys, agent_rerun, agent_rerun.signer\n"
        "bad = [m for m in ('keyring', 'agent_rerun_keyring', 'secretstorage') "
        "if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


# ------------------------------------------------------------------ in-memory keyring


def test_generate_stores_the_documented_entry_and_loads_it(memory: MemoryKeyring) -> None:
    info = generate_key("keyring:dev?service=team")
    entry = memory.entries[("team", "dev")]
    assert documented_public_key(entry) == info.public_key
    assert info.uri == "keyring:dev?service=team"
    with load_signer("keyring:dev?service=team") as signer:
        assert signer.public_key == info.public_key
        assert_verifies(info.public_key, b"data", signer.sign(b"data"))


def test_the_entry_is_read_once_per_signer_and_forgotten_on_close(
    memory: MemoryKeyring,
) -> None:
    generate_key("keyring:once")
    memory.reads = 0
    signer = load_signer("keyring:once")
    for i in range(5):
        signer.sign(bytes([i]))
    assert memory.reads == 1
    signer.close()  # type: ignore[attr-defined]
    with pytest.raises(SignerError) as exc:
        signer.sign(b"after close")
    assert "closed" in one_line(exc)
    assert memory.reads == 1


def test_repr_names_the_key_not_the_secret(memory: MemoryKeyring) -> None:
    generate_key("keyring:shown")
    private_b64 = memory.entries[("agent-rerun", "shown")].split(":")[1]
    with load_signer("keyring:shown") as signer:
        text = repr(signer)
    assert "keyring:shown" in text and "SHA256:" in text
    assert private_b64 not in text


def test_generate_refuses_to_overwrite_unless_forced(memory: MemoryKeyring) -> None:
    first = generate_key("keyring:mine")
    before = memory.entries[("agent-rerun", "mine")]
    with pytest.raises(SignerError) as exc:
        generate_key("keyring:mine")
    assert "already exists" in one_line(exc) and "--force" in str(exc.value)
    assert memory.entries[("agent-rerun", "mine")] == before
    second = generate_key("keyring:mine", force=True)
    assert second.public_key != first.public_key
    assert documented_public_key(memory.entries[("agent-rerun", "mine")]) == second.public_key


def test_generate_never_replaces_another_programs_entry(memory: MemoryKeyring) -> None:
    memory.entries[("agent-rerun", "taken")] = "someone's password"
    with pytest.raises(SignerError) as exc:
        generate_key("keyring:taken")
    assert "already exists" in one_line(exc)
    assert memory.entries[("agent-rerun", "taken")] == "someone's password"


def test_loading_another_programs_entry_is_refused(memory: MemoryKeyring) -> None:
    memory.entries[("agent-rerun", "pw")] = "correct horse battery staple"
    with pytest.raises(SignerError) as exc:
        load_signer("keyring:pw")
    text = one_line(exc)
    assert "not an agent-rerun key" in text and "'pw'" in text
    assert "horse" not in text


def test_a_missing_entry_says_how_to_create_it(memory: MemoryKeyring) -> None:
    with pytest.raises(SignerError) as exc:
        load_signer("keyring:absent?service=team")
    assert "rerun keygen keyring:absent?service=team" in one_line(exc)


def test_a_locked_keyring_is_one_clear_line(memory: MemoryKeyring) -> None:
    memory.locked = True
    for action in (lambda: load_signer("keyring:k"), lambda: generate_key("keyring:k")):
        with pytest.raises(SignerError) as exc:
            action()
        assert "locked" in one_line(exc) and "unlock" in str(exc.value)
    assert memory.entries == {}


def test_a_store_that_drops_writes_is_caught(memory: MemoryKeyring) -> None:
    memory.drop_writes = True
    with pytest.raises(SignerError) as exc:
        generate_key("keyring:lost")
    assert "did not keep" in one_line(exc) and "not saved" in str(exc.value)


def test_backend_failures_become_one_line(memory: MemoryKeyring) -> None:
    memory.raise_on_read = RuntimeError("org.freedesktop.DBus.Error.NoReply:\n timeout")
    with pytest.raises(SignerError) as exc:
        load_signer("keyring:k")
    assert "NoReply" in one_line(exc) and "'k'" in str(exc.value)


def test_no_keyring_error_from_a_backend_explains_what_to_do(memory: MemoryKeyring) -> None:
    memory.raise_on_read = keyring.errors.NoKeyringError("nothing")
    with pytest.raises(SignerError) as exc:
        load_signer("keyring:k")
    assert "no usable OS keyring" in one_line(exc)


def test_list_keys_with_a_name_and_without_enumeration(memory: MemoryKeyring) -> None:
    info = generate_key("keyring:listed")
    [only] = list_keys("keyring:listed")
    assert only.public_key == info.public_key and only.uri == "keyring:listed"
    with pytest.raises(SignerError) as exc:
        list_keys("keyring:")
    assert "cannot list" in one_line(exc)


# ------------------------------------------------------------------ no keyring, insecure keyring


class _EmptyChainer(chainer.ChainerBackend):
    backends: ClassVar[list[KeyringBackend]] = []  # type: ignore[misc]


@pytest.mark.parametrize("make", [fail.Keyring, null.Keyring, _EmptyChainer])
def test_no_usable_keyring_says_why_and_what_would_help(
    installed: None, make: type[KeyringBackend]
) -> None:
    keyring.set_keyring(make())
    for action in (lambda: load_signer("keyring:k"), lambda: generate_key("keyring:k")):
        with pytest.raises(SignerError) as exc:
            action()
        text = one_line(exc)
        assert text.startswith("no usable OS keyring")
        for hint in ("gnome-keyring-daemon", "PYTHON_KEYRING_BACKEND", "file key", "HSM"):
            assert hint in text


def test_a_broken_keyring_configuration_is_one_line() -> None:
    code = (
        "from agent_rerun.errors import SignerError\n"
        "from agent_rerun.signer import load_signer\n"
        "try:\n    load_signer('keyring:k')\n"
        "except SignerError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "no.such.module.Keyring"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "PYTHON_KEYRING_BACKEND=no.such.module.Keyring cannot be used" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_unrecommended_backend_is_refused_unless_allowed(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(agent_rerun_keyring.ALLOW_INSECURE_ENV, raising=False)
    MemoryKeyring.active_priority = 0.5  # what keyrings.alt's PlaintextKeyring declares
    with pytest.raises(SignerError) as exc:
        generate_key("keyring:weak")
    text = one_line(exc)
    assert "refusing the keyring backend" in text and "priority 0.5 < 1" in text
    assert "RERUN_KEYRING_ALLOW_INSECURE=1" in text
    assert memory.entries == {}
    monkeypatch.setenv(agent_rerun_keyring.ALLOW_INSECURE_ENV, "1")
    info = generate_key("keyring:weak")
    with load_signer("keyring:weak") as signer:
        assert signer.public_key == info.public_key


def test_keyrings_alt_backends_are_refused_whatever_their_priority(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(agent_rerun_keyring.ALLOW_INSECURE_ENV, raising=False)
    monkeypatch.setattr(MemoryKeyring, "__module__", "keyrings.alt.file")
    with pytest.raises(SignerError) as exc:
        load_signer("keyring:k")
    assert "keyrings.alt" in one_line(exc)


# ------------------------------------------------------------------ a real Secret Service


secret_service = secret_service_fixture(SERVICE)
entry_name = fresh_entry_fixture(SERVICE, "key")


@pytest.mark.keyring
def test_secret_service_generate_load_sign(secret_service: KeyringBackend, entry_name: str) -> None:
    uri = f"keyring:{entry_name}?service={SERVICE}"
    info = generate_key(uri)
    stored = secret_service.get_password(SERVICE, entry_name)
    assert stored is not None
    assert documented_public_key(stored) == info.public_key
    with load_signer(uri) as signer:
        signature = signer.sign(b"bundle bytes")
    assert_verifies(info.public_key, b"bundle bytes", signature)
    with pytest.raises(InvalidSignature):
        assert_verifies(info.public_key, b"other bytes", signature)


@pytest.mark.keyring
def test_secret_service_overwrite_refused_then_forced(
    secret_service: KeyringBackend, entry_name: str
) -> None:
    uri = f"keyring:{entry_name}?service={SERVICE}"
    generate_key(uri)
    before = secret_service.get_password(SERVICE, entry_name)
    with pytest.raises(SignerError) as exc:
        generate_key(uri)
    assert "already exists" in one_line(exc)
    assert secret_service.get_password(SERVICE, entry_name) == before
    forced = generate_key(uri, force=True)
    after = secret_service.get_password(SERVICE, entry_name)
    assert after != before and after is not None
    assert documented_public_key(after) == forced.public_key


@pytest.mark.keyring
def test_secret_service_foreign_entry_refused(
    secret_service: KeyringBackend, entry_name: str
) -> None:
    secret_service.set_password(SERVICE, entry_name, "a password, not a key")
    with pytest.raises(SignerError) as exc:
        load_signer(f"keyring:{entry_name}?service={SERVICE}")
    text = one_line(exc)
    assert "not an agent-rerun key" in text and "a password" not in text


@pytest.mark.keyring
def test_secret_service_percent_encoded_name(
    secret_service: KeyringBackend, entry_name: str
) -> None:
    name = f"{entry_name}?/é"
    uri = f"keyring:{entry_name}%3F/%C3%A9?service={SERVICE}"
    try:
        info = generate_key(uri)
        stored = secret_service.get_password(SERVICE, name)
        assert stored is not None and documented_public_key(stored) == info.public_key
        assert parse_keyring_uri(info.uri) == KeyringRef(name, SERVICE)
    finally:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            secret_service.delete_password(SERVICE, name)


@pytest.mark.keyring
def test_secret_service_lists_agent_rerun_entries_only(
    secret_service: KeyringBackend, entry_name: str
) -> None:
    service = unique_name("agent-rerun-list")
    foreign = unique_name("foreign")
    try:
        info = generate_key(f"keyring:{entry_name}?service={service}")
        secret_service.set_password(service, foreign, "not a key")
        listed = list_keys(f"keyring:?service={service}")
        assert [(k.uri, k.public_key) for k in listed] == [
            (f"keyring:{entry_name}?service={service}", info.public_key)
        ]
    finally:
        for name in (entry_name, foreign):
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                secret_service.delete_password(service, name)
