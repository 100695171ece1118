"""Trusted keys: base64 and OpenSSH spellings, allowed_signers files, namespaces, validity."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from support import OUR_VECTORS, run_cli

from agent_rerun import sign_bundle, verify
from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_public_key_line
from agent_rerun.trust import TrustedKey, find_trusted, parse_trust_file, parse_trusted_key


def _new_pub() -> bytes:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _ecdsa_ssh_line() -> str:
    """A fresh ECDSA P-256 public key in OpenSSH's one-line form (not Ed25519)."""
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


ALICE = _new_pub()
BOB = _new_pub()


def _trust_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- single keys


def test_parse_base64_key_with_and_without_name() -> None:
    assert parse_trusted_key(_b64(ALICE)) == TrustedKey(ALICE, None)
    assert parse_trusted_key(f"  {_b64(ALICE)}  alice at work ") == TrustedKey(
        ALICE, "alice at work"
    )


def test_parse_openssh_line() -> None:
    assert parse_trusted_key(ssh_public_key_line(ALICE, "alice@example")) == TrustedKey(
        ALICE, "alice@example"
    )
    assert parse_trusted_key(ssh_public_key_line(BOB)).name is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-base64!",
        _b64(ALICE).rstrip("="),  # missing padding
        _b64(ALICE)[:-2] + "x=",  # non-canonical trailing bits
        _b64(ALICE[:31]),  # 31 bytes
        "ssh-ed25519",  # no key
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",  # truncated blob
    ],
)
def test_bad_single_keys_refused(text: str) -> None:
    with pytest.raises(InputError, match="trusted key"):
        parse_trusted_key(text)


def test_non_ed25519_ssh_key_refused() -> None:
    line = _ecdsa_ssh_line()
    with pytest.raises(InputError, match=r"ecdsa-sha2-nistp256 is not supported.*ed25519 only"):
        parse_trusted_key(line)


def test_mismatched_key_type_refused() -> None:
    # An ecdsa blob labelled ssh-ed25519 must not be accepted.
    line = _ecdsa_ssh_line()
    with pytest.raises(InputError, match="malformed"):
        parse_trusted_key("ssh-ed25519 " + line.split()[1])


# ---------------------------------------------------------------- files


def test_allowed_signers_file(tmp_path: Path) -> None:
    path = _trust_file(
        tmp_path,
        "\n".join(
            [
                "# team signers",
                "",
                f"alice@example.com,alice@home {ssh_public_key_line(ALICE)} laptop key",
                f'"bob smith@example.com" namespaces="agent-rerun,git" {ssh_public_key_line(BOB)}',
                f'ci@example.com valid-after="20240101",valid-before="20300101Z" '
                f"{ssh_public_key_line(ALICE)}",
                f"   {_b64(BOB)} bob (raw)",
                f"{_b64(ALICE)}",
                "   # indented comment",
            ]
        )
        + "\n",
    )
    keys = parse_trust_file(path)
    assert [k.name for k in keys] == [
        "alice@example.com,alice@home",
        "bob smith@example.com",
        "ci@example.com",
        "bob (raw)",
        None,
    ]
    assert keys[0] == TrustedKey(ALICE, "alice@example.com,alice@home")
    assert keys[1].namespaces == ("agent-rerun", "git")
    assert keys[1].public_key == BOB
    assert keys[2].valid_after == datetime(2024, 1, 1).astimezone()
    assert keys[2].valid_before == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert keys[3] == TrustedKey(BOB, "bob (raw)")
    assert keys[4] == TrustedKey(ALICE, None)


def test_timestamp_forms(tmp_path: Path) -> None:
    path = _trust_file(
        tmp_path,
        f"a VALID-AFTER=202401021530,valid-before=20240102153045Z {ssh_public_key_line(ALICE)}\n",
    )
    (key,) = parse_trust_file(path)
    assert key.valid_after == datetime(2024, 1, 2, 15, 30).astimezone()
    assert key.valid_before == datetime(2024, 1, 2, 15, 30, 45, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("a cert-authority {key}", "option 'cert-authority' is not supported"),
        ('a namespaces="x",no-touch-required {key}', "option 'no-touch-required'"),
        ("a valid-after=2024 {key}", "valid-after"),
        ("a valid-after=20241301 {key}", "not a valid time"),
        ("a namespaces= {key}", "lists no namespace"),
        ("a namespaces=x,namespaces=y {key}", "given twice"),
        ("a valid-after {key}", "needs a value"),
        ('a namespaces="x {key}', "unterminated"),
        ("a ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", "ssh-rsa is not supported"),
        ("a@b", "expected"),
        ("a namespaces=x ssh-ed25519", "missing key"),
    ],
)
def test_bad_lines_name_file_line_and_option(tmp_path: Path, line: str, needle: str) -> None:
    path = _trust_file(tmp_path, "# first\n\n" + line.format(key=ssh_public_key_line(ALICE)))
    with pytest.raises(InputError) as caught:
        parse_trust_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert needle in message


def test_unreadable_trust_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read trust file"):
        parse_trust_file(tmp_path / "absent")
    bad = tmp_path / "latin1"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8"):
        parse_trust_file(bad)


def test_file_written_for_ssh_keygen_is_read(tmp_path: Path) -> None:
    """The same allowed_signers file must work for ssh-keygen -Y verify and for us."""
    tool = shutil.which("ssh-keygen")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("required under CI: ssh-keygen (openssh-client)")
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key_file = tmp_path / "id"
    subprocess.run([tool, "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    pub_line = (key_file.with_suffix(".pub")).read_text().strip()
    allowed = _trust_file(tmp_path, f'dev@example.com namespaces="agent-rerun" {pub_line}\n')
    message = tmp_path / "msg"
    message.write_bytes(b"hello")
    subprocess.run(
        [tool, "-q", "-Y", "sign", "-f", str(key_file), "-n", "agent-rerun", str(message)],
        check=True,
    )
    with message.open("rb") as stdin:
        subprocess.run(
            [
                tool,
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                "dev@example.com",
                "-n",
                "agent-rerun",
                "-s",
                f"{message}.sig",
            ],
            stdin=stdin,
            check=True,
            capture_output=True,
        )
    (key,) = parse_trust_file(allowed)
    assert key.name == "dev@example.com"
    assert key.public_key == base64.b64decode(pub_line.split()[1])[-32:]
    assert find_trusted([key], key.public_key) == key


# ---------------------------------------------------------------- decisions


def test_find_trusted_by_key() -> None:
    keys = [TrustedKey(ALICE, "alice"), TrustedKey(BOB, "bob")]
    assert find_trusted(keys, BOB) == keys[1]
    assert find_trusted(keys, _new_pub()) is None
    assert find_trusted([], ALICE) is None


def test_namespaces_restrict() -> None:
    git_only = TrustedKey(ALICE, "alice", namespaces=("git", "file"))
    assert find_trusted([git_only], ALICE) is None
    assert find_trusted([git_only], ALICE, namespace="git") == git_only
    wildcard = TrustedKey(ALICE, "alice", namespaces=("agent-*",))
    assert find_trusted([wildcard], ALICE) == wildcard
    vetoed = TrustedKey(ALICE, "alice", namespaces=("*", "!agent-rerun"))
    assert find_trusted([vetoed], ALICE) is None
    assert find_trusted([vetoed], ALICE, namespace="git") == vetoed


def test_later_entry_can_trust_when_earlier_does_not() -> None:
    git_only = TrustedKey(ALICE, "alice-git", namespaces=("git",))
    ours = TrustedKey(ALICE, "alice-rerun", namespaces=("agent-rerun",))
    assert find_trusted([git_only, ours], ALICE) == ours


def test_validity_window_inclusive() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    end = datetime(2025, 1, 1, tzinfo=timezone.utc)
    key = TrustedKey(ALICE, "alice", valid_after=start, valid_before=end)
    assert find_trusted([key], ALICE, now=start - timedelta(seconds=1)) is None
    assert find_trusted([key], ALICE, now=start) == key
    assert find_trusted([key], ALICE, now=end) == key
    assert find_trusted([key], ALICE, now=end + timedelta(seconds=1)) is None


def test_validity_against_current_time(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    past = (now - timedelta(days=2)).strftime("%Y%m%d")
    future = (now + timedelta(days=2)).strftime("%Y%m%d")
    path = _trust_file(
        tmp_path,
        f"expired valid-before={past}Z {ssh_public_key_line(ALICE)}\n"
        f"current valid-after={past}Z,valid-before={future}Z {ssh_public_key_line(BOB)}\n"
        f"pending valid-after={future}Z {ssh_public_key_line(BOB)}\n",
    )
    keys = parse_trust_file(path)
    assert find_trusted(keys, ALICE) is None
    found = find_trusted(keys, BOB)
    assert found is not None
    assert found.name == "current"


def test_local_time_without_z(tmp_path: Path) -> None:
    path = _trust_file(tmp_path, f"a valid-after=20240601 {ssh_public_key_line(ALICE)}\n")
    (key,) = parse_trust_file(path)
    local_midnight = datetime(2024, 6, 1).astimezone()
    assert find_trusted([key], ALICE, now=local_midnight) == key
    assert find_trusted([key], ALICE, now=local_midnight - timedelta(seconds=1)) is None
    # a naive "now" is local time too
    assert find_trusted([key], ALICE, now=datetime(2024, 6, 1)) == key


C1 = OUR_VECTORS / "c1-byte-replay-passes"
ATTACKER_KEY = bytes(range(1, 33))


@pytest.fixture
def attacker_bundle(tmp_path: Path) -> Path:
    """The C1 bundle re-signed by a key nobody trusts."""
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    path = tmp_path / "attacker.rr"
    path.write_text(json.dumps(sign_bundle(bundle, ATTACKER_KEY)))
    return path


def test_empty_trust_file_option_fails_closed(attacker_bundle: Path) -> None:
    run = run_cli("verify", attacker_bundle, C1 / "actual.json", "--trusted-keys", "")
    assert run.returncode == 1
    assert run.json()["verified"] is False


def test_empty_trusted_keys_in_config_trusts_nobody(attacker_bundle: Path,
                                                    tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[verify]\ntrusted_keys = []\n")
    run = run_cli("verify", attacker_bundle, C1 / "actual.json",
                  env={"RERUN_CONFIG": str(config)})
    assert run.returncode == 1
    assert run.json()["errors"][0].startswith("UntrustedSigner:")


def test_library_rejects_a_single_string_as_the_trust_list() -> None:
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    actual = json.loads((C1 / "actual.json").read_bytes())
    key_of_c1 = bundle["signature"]["pubkey"]
    result = verify(bundle, actual, trusted_keys=key_of_c1)  # type: ignore[arg-type]
    assert not result.verified
    assert result.errors == ["InvalidTrustedKeys:trusted_keys must be a list of keys, "
                             "not a single key"]
    assert verify(bundle, actual, trusted_keys=[key_of_c1]).verified


def test_allowed_signers_line_without_principals_says_so(tmp_path: Path) -> None:
    trust = tmp_path / "allowed_signers"
    trust.write_text(ssh_public_key_line(bytes(range(32)), "me") + "\n")
    with pytest.raises(InputError, match="start with the principals"):
        parse_trust_file(trust)


def _pub() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()


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


# ---------------------------------------------------------------- one policy, many bundles


def _seeded(seed: int) -> tuple[bytes, bytes]:
    """(private seed, raw public key) of a fixed test key."""
    private = bytes([seed]) * 32
    return private, ed25519.Ed25519PrivateKey.from_private_bytes(private).public_key(
    ).public_bytes_raw()


def test_a_signer_met_before_is_still_held_to_its_validity_window() -> None:
    """A policy keeps what it learnt about a key, but never the clock's verdict."""
    import time

    from agent_rerun.policy import make_policy

    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    actual = json.loads((C1 / "actual.json").read_bytes())
    private, public = _seeded(5)
    signed = sign_bundle(bundle, private)
    ends = datetime.now(timezone.utc) + timedelta(seconds=1)
    policy = make_policy([TrustedKey(public, "soon-expired", valid_before=ends)])
    first = verify(signed, actual, policy=policy)
    assert first.verified, first.errors
    assert first.signer is not None and first.signer.valid_before == ends.isoformat()
    assert list(policy.known_signers) == [public]
    time.sleep(max(0.0, (ends - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    later = verify(signed, actual, policy=policy)
    assert later.errors == [f"UntrustedSigner:{_b64(public)}"]
    assert later.signer is not None and later.signer.trusted is False


def test_what_a_policy_keeps_per_signer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound, signers are judged afresh each time, with the same results."""
    import importlib

    from agent_rerun.policy import make_policy

    # The package's ``verify`` function hides its module of the same name.
    verify_module = importlib.import_module("agent_rerun.verify")
    monkeypatch.setattr(verify_module, "_MAX_KNOWN_SIGNERS", 2)
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    actual = json.loads((C1 / "actual.json").read_bytes())
    keys = [_seeded(seed) for seed in range(10, 15)]
    revoked = keys[3][1]
    policy = make_policy([public for _, public in keys[:4]], [revoked])
    for _ in range(2):
        for index, (private, public) in enumerate(keys):
            result = verify(sign_bundle(bundle, private), actual, policy=policy)
            expected = ([] if index < 3 else [f"RevokedSigner:{_b64(revoked)}"] if index == 3
                        else [f"UntrustedSigner:{_b64(public)}"])
            assert result.errors == expected
            assert result.signer is not None
            assert result.signer.trusted is (index < 3)
            assert result.signer.revoked is (index == 3)
            assert result.signer.revocation_checked
    assert len(policy.known_signers) == 2
