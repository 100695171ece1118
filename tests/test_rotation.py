"""Rotation: ``pubkey``/``keys list --format allowed-signers`` print trust lines that work.

Each printed line is read back by our trust parser with the same restrictions,
and handed to the real ``ssh-keygen -Y verify``/``-Y find-principals`` with a
signature made by the same key through its own backend (file, keyring,
PKCS#11 token, ssh-agent), including ssh's namespace and validity checks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pkcs11_fixtures import MAIN_TOKEN, SoftHsm, softhsm
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from sshagent_support import OpenSshAgent, agent_fixture, make_key, require_tools
from sshsig_support import (
    SubprocessSigner,
    ssh_keygen_find_principals,
    ssh_keygen_verify,
    sshsig,
)
from support import REPO, run_cli

from agent_rerun.signer import Signer, load_signer
from agent_rerun.trust import TrustedKey, parse_trust_file

__all__ = ["softhsm"]  # the imported fixture is used by name

MESSAGE = b"rotate me\n"
PRINCIPAL = "ci@example.com"


@pytest.fixture(autouse=True)
def _ssh_keygen() -> None:
    require_tools("ssh-keygen")


def _one_entry(line: str, tmp_path: Path) -> tuple[Path, TrustedKey]:
    trust = tmp_path / f"allowed_signers-{uuid.uuid4().hex[:6]}"
    trust.write_text(line + "\n")
    entries = parse_trust_file(trust)
    assert len(entries) == 1
    return trust, entries[0]


def assert_line_admits(line: str, signer: Signer, tmp_path: Path,
                       principals: tuple[str, ...] = (PRINCIPAL,)) -> TrustedKey:
    """Our parser and ssh-keygen both read ``line`` as trusting ``signer`` for agent-rerun."""
    trust, entry = _one_entry(line, tmp_path)
    assert entry.public_key == signer.public_key
    assert entry.principals == principals
    assert entry.namespaces == ("agent-rerun",)
    signature = sshsig(signer, MESSAGE)
    for principal in principals:
        done = ssh_keygen_verify(trust, principal, MESSAGE, signature)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert f'Good "agent-rerun" signature for {principal}' in done.stdout
    assert ssh_keygen_find_principals(trust, signature) == [",".join(principals)]
    # ssh's own namespace test: the same key signing for git is not admitted.
    other = ssh_keygen_verify(trust, principals[0], MESSAGE, sshsig(signer, MESSAGE, "git"),
                              namespace="git")
    assert other.returncode != 0, other.stdout
    return entry


def _keygen(path: Path) -> None:
    made = run_cli("keygen", path)
    assert made.returncode == 0, made.stderr


def _signed_bundle(tmp_path: Path, key: str) -> tuple[Path, Path]:
    step, actual, bundle = tmp_path / "step.json", tmp_path / "actual.json", tmp_path / "b.rr"
    step.write_text(json.dumps(SAMPLE_STEP))
    actual.write_text(json.dumps(SAMPLE_ACTUAL))
    done = run_cli("capture", step, "-o", bundle, "--key", key)
    assert done.returncode == 0, done.stderr
    return bundle, actual


# ---------------------------------------------------------------- pubkey


def test_pubkey_line_is_accepted_by_ssh_keygen_and_by_verify(tmp_path: Path) -> None:
    key = tmp_path / "new.pem"
    _keygen(key)
    done = run_cli("pubkey", key, "--format", "allowed-signers", "--principal", PRINCIPAL,
                   "--valid-after", "20200101Z")
    assert done.returncode == 0, done.stderr
    line = done.stdout.rstrip("\n")
    assert "\n" not in line
    assert line.startswith(f'{PRINCIPAL} namespaces="agent-rerun",valid-after="20200101Z" '
                           "ssh-ed25519 AAAA")
    entry = assert_line_admits(line, load_signer(str(key)), tmp_path)
    assert entry.valid_after == datetime(2020, 1, 1, tzinfo=timezone.utc)

    trust = tmp_path / "allowed_signers"
    trust.write_text(line + "\n")
    bundle, actual = _signed_bundle(tmp_path, str(key))
    verified = run_cli("verify", bundle, actual, "--trusted-keys", trust)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    signer = verified.json()["signer"]
    assert signer["trusted"] is True and signer["principals"] == [PRINCIPAL]
    assert signer["valid_after"] == "2020-01-01T00:00:00+00:00"


@pytest.mark.parametrize("flags", [["--valid-before", "20200101Z"],
                                   ["--valid-after", "20990101Z"]])
def test_a_line_outside_its_window_is_refused_by_both(tmp_path: Path, flags: list[str]) -> None:
    key = tmp_path / "old.pem"
    _keygen(key)
    done = run_cli("pubkey", key, "--format", "allowed-signers", "--principal", PRINCIPAL,
                   *flags)
    assert done.returncode == 0, done.stderr
    trust, _ = _one_entry(done.stdout.strip(), tmp_path)
    refused = ssh_keygen_verify(trust, PRINCIPAL, MESSAGE, sshsig(load_signer(str(key)), MESSAGE))
    assert refused.returncode != 0, refused.stdout
    bundle, actual = _signed_bundle(tmp_path, str(key))
    ours = run_cli("verify", bundle, actual, "--trusted-keys", trust)
    assert ours.returncode == 1
    assert ours.json()["errors"] == [f"UntrustedSigner:{ours.json()['signer']['public_key']}"]


def test_now_is_spelled_in_utc_and_several_principals_join(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    _keygen(key)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    done = run_cli("pubkey", key, "--format", "allowed-signers", "--principal", "alice",
                   "--principal", "ci@example.com", "--valid-after", "now",
                   "--namespaces", "git,agent-rerun")
    assert done.returncode == 0, done.stderr
    _, entry = _one_entry(done.stdout.strip(), tmp_path)
    assert entry.principals == ("alice", "ci@example.com")
    assert entry.namespaces == ("git", "agent-rerun")
    assert entry.valid_after is not None
    assert before <= entry.valid_after <= datetime.now(timezone.utc)
    assert entry.valid_after.tzinfo == timezone.utc


BAD_FLAGS = [
    ([], "needs --principal"),
    (["--principal", "a b"], "must not hold spaces"),
    (["--principal", "a,b"], "give --principal once per name"),
    (["--principal", '"a"'], "double quotes"),
    (["--principal", "#a"], "must not start with '#'"),
    (["--principal", "!a"], "a negation"),
    (["--principal", "ssh-ed25519"], "looks like a key type"),
    (["--principal", base64.b64encode(bytes(32)).decode()], "looks like a base64 public key"),
    (["--principal", "a\u202eb"], "control character U+202E"),
    (["--principal", ""], "must not be empty"),
    (["--principal", "a", "--namespaces", "git"], "does not admit 'agent-rerun'"),
    (["--principal", "a", "--namespaces", "agent-rerun,"], "comma-separated list"),
    (["--principal", "a", "--namespaces", 'a"b'], "comma-separated list"),
    (["--principal", "a", "--valid-after", "2026-01-01"], "is not YYYYMMDD"),
    (["--principal", "a", "--valid-after", "20261301"], "is not a valid time"),
    (["--principal", "a", "--valid-before", "20260230Z"], "is not a valid time"),
    (["--principal", "a", "--valid-after", "20270101Z", "--valid-before", "20260101Z"],
     "would never be trusted"),
]


@pytest.mark.parametrize(("flags", "says"), BAD_FLAGS, ids=[s for _, s in BAD_FLAGS])
@pytest.mark.parametrize("command", [["pubkey"], ["keys", "list"]])
def test_bad_trust_line_flags_are_usage_errors(tmp_path: Path, command: list[str],
                                               flags: list[str], says: str) -> None:
    # The key does not exist: the flags are refused before any key is looked at.
    done = run_cli(*command, tmp_path / "missing.pem", "--format", "allowed-signers", *flags)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "missing.pem").exists()


@pytest.mark.parametrize("flag", [["--principal", "a"], ["--valid-after", "20260101"],
                                  ["--namespaces", "agent-rerun"]])
def test_line_flags_without_the_allowed_signers_format(tmp_path: Path, flag: list[str]) -> None:
    done = run_cli("pubkey", tmp_path / "k.pem", "--format", "ssh", *flag)
    assert done.returncode == 2
    assert "go with --format allowed-signers" in done.stderr


# ---------------------------------------------------------------- keys list, every backend


def _listed_lines(*args: str | Path, env: dict[str, str | None] | None = None) -> list[str]:
    done = run_cli("keys", "list", *args, "--format", "allowed-signers", "--principal",
                   PRINCIPAL, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_keys_list_file_backend(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    _keygen(key)
    [line] = _listed_lines(key)
    assert line.endswith(f" {key}")  # the comment says where the key lives
    assert_line_admits(line, load_signer(str(key)), tmp_path)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[OpenSshAgent]:
    yield from agent_fixture(tmp_path / "agent")


def test_keys_list_ssh_agent_skips_rsa_on_stderr(agent: OpenSshAgent, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_key(tmp_path / "keys", "first", comment="first@host")
    second = make_key(tmp_path / "keys", "second", comment="second@host")
    rsa = make_key(tmp_path / "keys", "rsa", kind="rsa")
    for key in (first, rsa, second):
        agent.add(key)
    done = run_cli("keys", "list", "ssh-agent:", "--format", "allowed-signers", "--principal",
                   PRINCIPAL, env=agent.env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert f"skipped ssh-agent:{rsa.fingerprint}: key type ssh-rsa" in done.stderr
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.socket))
    for key, line in zip((first, second), lines, strict=True):
        with load_signer(f"ssh-agent:{key.fingerprint}") as signer:
            assert_line_admits(line, signer, tmp_path)
        # And a signature ssh-keygen itself makes with the key file, no code of ours.
        message = tmp_path / "message"
        message.write_bytes(MESSAGE)
        (tmp_path / "message.sig").unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key.private), "-n",
                        "agent-rerun", str(message)], check=True, capture_output=True)
        trust, _ = _one_entry(line, tmp_path)
        done = ssh_keygen_verify(trust, PRINCIPAL, MESSAGE,
                                 (tmp_path / "message.sig").read_text())
        assert done.returncode == 0, done.stderr


@pytest.mark.pkcs11
def test_keys_list_pkcs11_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    label = f"rot-{uuid.uuid4().hex[:8]}"
    env: dict[str, str | None] = dict(softhsm.env())
    made = run_cli("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={label}"), env=env)
    assert made.returncode == 0, made.stderr
    lines = [line for line in _listed_lines(softhsm.uri(f"token={MAIN_TOKEN}"), env=env)
             if f"object={label};" in line]
    assert len(lines) == 1
    assert "pin-source" in lines[0] and softhsm.pin_file.read_text().strip() not in lines[0]
    uri = lines[0].split(" ", 4)[4]  # the comment is the key's own URI
    assert_line_admits(lines[0], SubprocessSigner(uri, softhsm.env()), tmp_path)


@pytest.mark.keyring
def test_keys_list_keyring(tmp_path: Path) -> None:
    try:
        import keyring
        import keyring_support
    except ImportError as exc:
        from support import require

        require(False, f"keyring is not installed ({exc})")
        return
    service = "agent-rerun-rotation-tests"
    problem = keyring_support.secret_service_problem(service)
    from support import require

    require(problem is None, f"no usable Secret Service: {problem}")
    name = keyring_support.unique_name("rot")
    env: dict[str, str | None] = {"PYTHON_KEYRING_BACKEND": None,
                                  "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    try:
        made = run_cli("keygen", f"keyring:{name}?service={service}", env=env)
        assert made.returncode == 0, made.stderr
        lines = [line for line in _listed_lines(f"keyring:?service={service}", env=env)
                 if name in line]
        assert len(lines) == 1
        with load_signer(f"keyring:{name}?service={service}") as signer:
            assert_line_admits(lines[0], signer, tmp_path)
    finally:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(service, name)


# ---------------------------------------------------------------- the versions hook

VERSIONED_BACKEND = textwrap.dedent('''
    """Test-only backend listing each live key version as its own key, as Transit does."""
    import hashlib

    from agent_rerun.signer import InMemorySigner, KeyInfo


    def _signer(name, version):
        return InMemorySigner(hashlib.sha256(f"{name}/{version}".encode()).digest())


    class Backend:
        scheme = "testver"

        def load(self, uri, *, prompt=None):
            name, _, version = uri.partition(":")[2].partition("@")
            return _signer(name, version or "3")

        def generate(self, uri, *, force=False, prompt=None):
            raise NotImplementedError

        def list_keys(self, uri, *, prompt=None):
            return [KeyInfo(f"testver:k@{v}", _signer("k", str(v)).public_key, f"version {v}")
                    for v in (2, 3)] + [
                KeyInfo("testver:plain@1", _signer("plain", "1").public_key, "one version"),
                KeyInfo("testver:rsa", b"", "", unusable="key type ssh-rsa")]


    backend = Backend()
''')


def test_keys_list_prints_a_line_per_live_version(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "rerun_testver-1.0.dist-info").mkdir(parents=True)
    (site / "rerun_testver.py").write_text(VERSIONED_BACKEND)
    (site / "rerun_testver-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rerun-testver\nVersion: 1.0\n")
    (site / "rerun_testver-1.0.dist-info" / "entry_points.txt").write_text(
        "[agent_rerun.signers]\ntestver = rerun_testver:backend\n")
    env: dict[str, str | None] = {"PYTHONPATH": os.pathsep.join(
        filter(None, [str(site), str(REPO), os.environ.get("PYTHONPATH")]))}
    lines = _listed_lines("testver:", env=env)
    assert [line.split(" ", 4)[4] for line in lines] == [
        "testver:k@2", "testver:k@3", "testver:plain@1"]
    import sys

    sys.path.insert(0, str(site))
    try:
        import rerun_testver

        expected = [("k", "2"), ("k", "3"), ("plain", "1")]
        for line, (name, version) in zip(lines, expected, strict=True):
            assert_line_admits(line, rerun_testver._signer(name, version), tmp_path)
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("rerun_testver", None)
