"""Revocation: a leaked key is refused everywhere, from every file form ssh-keygen writes.

Keys and KRLs are made by the real ``ssh-keygen`` (``-k``, ``-k -u``, KRL specs
with hash and sha1 lines, a CA's serial section); each decision we make is
cross-checked with ``ssh-keygen -Q`` and with ``ssh-keygen -Y verify -r`` on the
same files, for a signature the same key made with ``ssh-keygen -Y sign``.
Then RevokedSigner through the library, ``verify``, ``verify --batch`` and
``inspect``, with and without trust, and every way a revocation file can be
unusable, each failing closed with the file's name.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from samples import SAMPLE_ACTUAL, SAMPLE_STEP, sample_step
from sshagent_support import SshKey, require_tools
from sshsig_support import ssh_keygen_verify
from support import OUR_VECTORS, PUBLISHED_VECTORS, run_cli, vector_dirs

from agent_rerun.capture import CaptureOptions, capture
from agent_rerun.errors import InputError
from agent_rerun.krl import parse_krl
from agent_rerun.policy import make_policy
from agent_rerun.revocation import load_revocation_file
from agent_rerun.signer import InMemorySigner
from agent_rerun.verify import verify, verify_files

NAMES = ("a", "b", "c")


class Key(SshKey):
    """An ssh-keygen key pair, with the spellings agent-rerun compares."""

    @property
    def line(self) -> str:
        return self.pub_line

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.line.split()[1])[-32:]

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    def signer(self) -> InMemorySigner:
        key = load_ssh_private_key(self.private.read_bytes(), password=None)
        return InMemorySigner(key)  # type: ignore[arg-type]


def keygen(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, input=input,
                          timeout=30, check=False)


@dataclass(frozen=True)
class World:
    """Three ed25519 keys (a, b, c), an RSA key, bundles signed by each ed25519 key."""

    root: Path
    keys: dict[str, Key]
    rsa: Key
    bundles: dict[str, Path]
    actual: Path

    def sig(self, name: str) -> str:
        """``ssh-keygen -Y sign`` by key ``name`` over the shared message."""
        message = self.root / f"message-{name}"
        if not message.with_name(message.name + ".sig").exists():
            message.write_bytes(MESSAGE)
            done = keygen("-q", "-Y", "sign", "-f", str(self.keys[name].private), "-n",
                          "agent-rerun", str(message))
            assert done.returncode == 0, done.stderr
        return message.with_name(message.name + ".sig").read_text()

    def krl(self, name: str, *args: str) -> Path:
        path = self.root / name
        done = keygen("-k", *args)
        assert done.returncode == 0, done.stderr
        return path

    def allowed_signers(self) -> Path:
        path = self.root / "allowed_signers"
        path.write_text("".join(f"{n}@example.com {k.line}\n" for n, k in self.keys.items()))
        return path


MESSAGE = b"is this key revoked?\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    require_tools("ssh-keygen")
    root = tmp_path_factory.mktemp("revocation")
    keys: dict[str, Key] = {}
    for name in NAMES:
        assert keygen("-q", "-t", "ed25519", "-N", "", "-C", f"{name}@host",
                      "-f", str(root / name)).returncode == 0
        keys[name] = Key(root / name, f"{name}@host")
    assert keygen("-q", "-t", "rsa", "-b", "2048", "-N", "", "-f",
                  str(root / "rsa")).returncode == 0
    actual = root / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL))
    bundles = {}
    for name, key in keys.items():
        bundles[name] = root / f"{name}.rr"
        bundles[name].write_text(json.dumps(capture(SAMPLE_STEP,
                                                    CaptureOptions(signer=key.signer()))))
    return World(root, keys, Key(root / "rsa", "rsa"), bundles, actual)


# ---------------------------------------------------------------- the file forms


def _forms(world: World) -> dict[str, tuple[Path, set[str]]]:
    """Revocation files ssh-keygen also reads, and which of a, b, c each revokes."""
    k = world.keys
    root = world.root
    key_list = root / "keys.txt"
    key_list.write_text(f"# leaked on 2026-11-30\n\n   {k['a'].line}\r\n{world.rsa.line}\n"
                        f"# {k['c'].line} (a comment, not a revocation)\n")
    spec = root / "spec"
    spec.write_text(f"hash: {k['b'].fingerprint}\nsha1: {k['c'].line}\n")
    updated = world.krl("updated.krl", "-f", str(root / "updated.krl"), str(k["a"].pub))
    assert keygen("-k", "-u", "-f", str(updated), str(k["b"].pub)).returncode == 0
    return {
        "key list": (key_list, {"a"}),
        "krl -k": (world.krl("plain.krl", "-f", str(root / "plain.krl"), str(k["a"].pub)), {"a"}),
        "krl from a spec": (world.krl("spec.krl", "-f", str(root / "spec.krl"), str(spec)),
                            {"b", "c"}),
        "krl -k -u": (updated, {"a", "b"}),
        "empty krl": (world.krl("empty.krl", "-f", str(root / "empty.krl"), "/dev/null"),
                      set()),
    }


FORMS = ["key list", "krl -k", "krl from a spec", "krl -k -u", "empty krl"]


@pytest.mark.parametrize("form", FORMS)
def test_our_decisions_match_ssh_keygen(world: World, form: str) -> None:
    path, expected = _forms(world)[form]
    revoked = load_revocation_file(path)
    trust = world.allowed_signers()
    for name, key in world.keys.items():
        ours = revoked.is_revoked(key.raw)
        assert ours == (name in expected), (form, name)
        ssh = ssh_keygen_verify(trust, f"{name}@example.com", MESSAGE, world.sig(name),
                                revoked=path)
        assert (ssh.returncode != 0) == ours, (form, name, ssh.stdout, ssh.stderr)
        if path.suffix == ".krl":
            query = keygen("-Q", "-f", str(path), str(key.pub))
            assert ("REVOKED" in query.stdout) == ours, (form, name, query.stdout)
        result = verify_files(world.bundles[name], world.actual, revoked_keys=revoked)
        assert result.errors == ([f"RevokedSigner:{key.b64}"] if ours else []), (form, name)


def test_krl_sections_are_the_ones_ssh_keygen_wrote(world: World) -> None:
    forms = _forms(world)
    plain = parse_krl(forms["krl -k"][0].read_bytes())
    spec = parse_krl(forms["krl from a spec"][0].read_bytes())
    assert plain.key_blobs and not plain.sha1_fingerprints and not plain.sha256_fingerprints
    assert spec.sha1_fingerprints and spec.sha256_fingerprints and not spec.key_blobs


def test_our_own_line_forms(world: World, tmp_path: Path) -> None:
    a, b, c = (world.keys[n] for n in NAMES)
    listing = tmp_path / "revoked"
    listing.write_text(f"{a.b64}\n{b.b64} bob's laptop, leaked\n"
                       f"ops@example.com {c.line}\n")
    revoked = load_revocation_file(listing)
    assert all(revoked.is_revoked(k.raw) for k in (a, b, c))
    assert revoked.sources == (str(listing),)


# ---------------------------------------------------------------- RevokedSigner, library


def _bundle(world: World, name: str) -> Any:
    return json.loads(world.bundles[name].read_text())


def test_revoked_and_trusted_is_revoked(world: World) -> None:
    a, b = world.keys["a"], world.keys["b"]
    for revoked_keys in ([a.raw], [a.line], [a.b64], load_revocation_file(_forms(world)[
            "krl -k"][0])):
        result = verify(_bundle(world, "a"), SAMPLE_ACTUAL, trusted_keys=[a.line, b.line],
                        revoked_keys=revoked_keys)
        assert result.errors == [f"RevokedSigner:{a.b64}"]
        assert result.signer is not None
        assert result.signer.to_json()["trusted"] is False
        assert result.signer.revoked and result.signer.revocation_checked
        other = verify(_bundle(world, "b"), SAMPLE_ACTUAL, trusted_keys=[a.line, b.line],
                       revoked_keys=revoked_keys)
        assert other.verified and other.signer is not None
        assert other.signer.trusted and other.signer.revocation_checked
        assert not other.signer.revoked


def test_revoked_without_any_trust_is_revoked(world: World) -> None:
    a = world.keys["a"]
    result = verify(_bundle(world, "a"), SAMPLE_ACTUAL, revoked_keys=[a.raw])
    assert result.errors == [f"RevokedSigner:{a.b64}"]
    assert result.signer is not None and result.signer.trusted is None
    unchecked = verify(_bundle(world, "a"), SAMPLE_ACTUAL)
    assert unchecked.verified and unchecked.signer is not None
    assert unchecked.signer.revocation_checked is False


def test_revocation_does_not_make_unsigned_bundles_fail(world: World) -> None:
    unsigned = capture(sample_step(), CaptureOptions())
    result = verify(unsigned, SAMPLE_ACTUAL, revoked_keys=[world.keys["a"].raw])
    assert result.verified


def test_a_revoked_key_fails_whatever_else_fails(world: World) -> None:
    """Signature first: a revoked signer is named even when the replay also mismatches."""
    actual = json.loads(json.dumps(SAMPLE_ACTUAL))
    actual["output"]["transcript"]["messages"][0]["content"] = "bye"
    result = verify(_bundle(world, "a"), actual, revoked_keys=[world.keys["a"].raw])
    assert result.errors[0] == f"RevokedSigner:{world.keys['a'].b64}"
    assert "TranscriptHashMismatch" in result.errors


def test_unusable_library_revocation_fails_closed(world: World) -> None:
    result = verify(_bundle(world, "b"), SAMPLE_ACTUAL, revoked_keys=["not a key"])
    assert not result.verified
    assert result.errors[0].startswith("InvalidRevokedKeys:revoked key:")
    with pytest.raises(InputError, match="revoked_keys must be a list"):
        make_policy(revoked_keys=world.keys["a"].line)  # type: ignore[arg-type]


def _vector_cases() -> list[Any]:
    return [pytest.param(d, id=f"{d.parent.name}/{d.name}")
            for d in vector_dirs(OUR_VECTORS) + vector_dirs(PUBLISHED_VECTORS)]


@pytest.mark.parametrize("folder", _vector_cases())
def test_conformance_vectors_unchanged_by_a_revocation_list(world: World, folder: Path) -> None:
    plain = verify_files(folder / "bundle.rr", folder / "actual.json")
    for revoked in (load_revocation_file(_forms(world)["krl -k -u"][0]),
                    load_revocation_file(_forms(world)["key list"][0])):
        checked = verify_files(folder / "bundle.rr", folder / "actual.json",
                               revoked_keys=revoked)
        assert (checked.verified, checked.errors, checked.warnings) == (
            plain.verified, plain.errors, plain.warnings)
        if plain.signer is not None:
            assert checked.signer is not None and checked.signer.revocation_checked


# ---------------------------------------------------------------- RevokedSigner, CLI


def test_cli_verify_with_and_without_trust(world: World) -> None:
    krl = _forms(world)["krl -k"][0]
    a = world.keys["a"]
    for trust in ([], ["--trusted-keys", str(world.allowed_signers())]):
        done = run_cli("verify", world.bundles["a"], world.actual, "--revoked-keys", krl, *trust)
        assert done.returncode == 1
        assert done.json()["errors"] == [f"RevokedSigner:{a.b64}"]
        assert done.json()["signer"]["revoked"] is True
        assert done.stderr.strip() == f"rerun: not verified: RevokedSigner:{a.b64}"
        fine = run_cli("verify", world.bundles["b"], world.actual, "--revoked-keys", krl, *trust)
        assert fine.returncode == 0, fine.stdout
        signer = fine.json()["signer"]
        assert signer["revocation_checked"] is True and signer["revoked"] is False
        assert signer["principals"] == (["b@example.com"] if trust else None)


def test_cli_revocation_files_from_flags_and_config_all_apply(world: World,
                                                              tmp_path: Path) -> None:
    forms = _forms(world)
    config = tmp_path / "config.toml"
    shutil.copy(forms["krl from a spec"][0], tmp_path / "spec.krl")
    config.write_text('[verify]\nrevoked_keys_file = "spec.krl"\n')
    env: dict[str, str | None] = {"RERUN_CONFIG": str(config)}
    for name, revoked in (("a", True), ("b", True), ("c", True)):
        done = run_cli("verify", world.bundles[name], world.actual,
                       "--revoked-keys", forms["krl -k"][0], env=env)
        assert (done.returncode == 1) is revoked, (name, done.stdout)
    only_config = run_cli("verify", world.bundles["a"], world.actual, env=env)
    assert only_config.returncode == 0, only_config.stdout  # a is not in spec.krl


def test_cli_batch(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(world.bundles[name], folder / f"{name}.rr")
        shutil.copy(world.actual, folder / f"{name}.actual.json")
    krl = _forms(world)["krl -k -u"][0]
    for trust in ([], ["--trusted-keys", str(world.allowed_signers())]):
        done = run_cli("verify", "--batch", folder, "--revoked-keys", krl, *trust)
        assert done.returncode == 1
        rows = {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}
        assert rows["a"]["errors"] == [f"RevokedSigner:{world.keys['a'].b64}"]
        assert rows["b"]["errors"] == [f"RevokedSigner:{world.keys['b'].b64}"]
        assert rows["c"]["verified"] is True and rows["c"]["signer"]["revocation_checked"]
        assert "1 of 3 pairs verified, 2 failed" in done.stderr
    parallel = run_cli("verify", "--batch", folder, "--revoked-keys", krl, "--jobs", "2")
    assert [json.loads(r)["verified"] for r in parallel.stdout.splitlines()] == [
        False, False, True]


def test_cli_inspect(world: World) -> None:
    krl = _forms(world)["krl -k"][0]
    for trust in ([], ["--trusted-keys", str(world.allowed_signers())]):
        done = run_cli("inspect", world.bundles["a"], "--revoked-keys", krl, *trust)
        assert done.returncode == 0, done.stderr  # a reading aid: says so, exits 0
        assert f"revoked:        YES (listed in {krl}): verify fails with RevokedSigner" in (
            done.stdout)
        other = run_cli("inspect", world.bundles["b"], "--revoked-keys", krl, *trust)
        assert f"revoked:        no (checked against {krl})" in other.stdout
    plain = run_cli("inspect", world.bundles["a"])
    assert "revoked:        not checked" in plain.stdout


# ---------------------------------------------------------------- fail closed


def _broken(world: World, tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A revocation file that cannot be used, and what the message must say."""
    good = _forms(world)["krl -k"][0].read_bytes()
    path = tmp_path / f"revoked-{kind.replace(' ', '-')}"
    if kind == "missing":
        return path, "cannot read revocation file"
    if kind == "folder":
        path.mkdir()
        return path, "it is a folder"
    if kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere")
        return path, "cannot read revocation file"
    if kind == "certificate section":
        ca = world.root / "ca"
        if not ca.exists():
            assert keygen("-q", "-t", "ed25519", "-N", "", "-f", str(ca)).returncode == 0
        (tmp_path / "serials").write_text("serial: 5\n")
        done = keygen("-k", "-f", str(path), "-s", str(ca) + ".pub", str(tmp_path / "serials"))
        assert done.returncode == 0, done.stderr
        return path, "the KRL holds a certificate section"
    contents = {
        "truncated krl": (good[:-3], "truncated KRL"),
        "krl with a trailing byte": (good + b"\x00", "truncated KRL"),
        "krl with a bad length": (_overlong_section(good), "truncated KRL"),
        "krl of another version": (good[:8] + b"\x00\x00\x00\x02" + good[12:],
                                   "KRL format version 2 is not supported"),
        "unknown krl section": (good + b"\x09\x00\x00\x00\x00", "unknown section type 9"),
        "garbage line": (f"{world.keys['a'].line}\nnot a key at all\n".encode(),
                         ":2: "),
        "not utf-8": (b"\xff\xfe revoked\n", "neither an OpenSSH KRL nor UTF-8"),
        "bad base64": (b"ssh-ed25519 AAAA!!!!\n", ":1: the ssh-ed25519 key"),
    }
    data, says = contents[kind]
    path.write_bytes(data)
    return path, says


def _overlong_section(krl: bytes) -> bytes:
    """``krl`` with its first section claiming more bytes than the file holds."""
    at = 8 + 4 + 8 + 8 + 8  # magic, format version, KRL version, date, flags
    for _ in range(2):  # the reserved and comment strings
        at += 4 + int.from_bytes(krl[at:at + 4], "big")
    at += 1  # the section type
    return krl[:at] + (0xFFFFFFF0).to_bytes(4, "big") + krl[at + 4:]


BROKEN = ["missing", "folder", "dangling link", "certificate section", "truncated krl",
          "krl with a trailing byte", "krl with a bad length", "krl of another version",
          "unknown krl section", "garbage line", "not utf-8", "bad base64"]


@pytest.mark.parametrize("kind", BROKEN)
def test_unusable_revocation_file_fails_closed_everywhere(world: World, tmp_path: Path,
                                                          kind: str) -> None:
    path, says = _broken(world, tmp_path, kind)
    with pytest.raises(InputError) as caught:
        load_revocation_file(path)
    assert str(caught.value).startswith(str(path)) and says in str(caught.value)

    single = run_cli("verify", world.bundles["b"], world.actual, "--revoked-keys", path)
    assert single.returncode == 1
    result = single.json()
    assert result["verified"] is False
    assert result["errors"] == [f"ConfigError:{caught.value}"]
    assert "Traceback" not in single.stderr

    folder = tmp_path / "pairs"
    folder.mkdir()
    shutil.copy(world.bundles["b"], folder / "b.rr")
    shutil.copy(world.actual, folder / "b.actual.json")
    batch = run_cli("verify", "--batch", folder, "--revoked-keys", path)
    assert batch.returncode == 1 and batch.stdout == ""
    assert batch.stderr.strip().splitlines() == [f"rerun: error: {caught.value}"]

    inspect = run_cli("inspect", world.bundles["b"], "--revoked-keys", path)
    assert inspect.returncode == 1 and inspect.stdout == ""
    assert inspect.stderr.strip() == f"rerun: error: {caught.value}"

    if kind not in ("missing", "dangling link"):
        # ssh-keygen refuses these too (a missing -r file it treats as nothing revoked).
        ssh = ssh_keygen_verify(world.allowed_signers(), "b@example.com", MESSAGE,
                                world.sig("b"), revoked=path)
        assert (ssh.returncode == 0) is (kind in SSH_UNDERSTANDS), (kind, ssh.stdout)


#: The one broken-for-us file ssh-keygen can use: it reads certificate serials (and
#: the key b, not a certificate, is then not revoked); we trust no certificates.
SSH_UNDERSTANDS = {"certificate section"}


def test_unusable_revocation_file_in_config_fails_closed(world: World, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[verify]\nrevoked_keys_file = "gone.krl"\n')
    done = run_cli("verify", world.bundles["b"], world.actual, env={"RERUN_CONFIG": str(config)})
    assert done.returncode == 1
    [error] = done.json()["errors"]
    assert error.startswith(f"ConfigError:{tmp_path / 'gone.krl'}: cannot read revocation file")
