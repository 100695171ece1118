"""Regression tests from a hostile review: each one was a way to get a wrong answer,
a crash, or misleading output from the CLI or the library."""

from __future__ import annotations

import copy
import json
import os
import pty
import time
from pathlib import Path
from typing import Any

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import OUR_VECTORS, run_cli

from agent_rerun import CaptureOptions, capture, sign_bundle, verify, verify_files
from agent_rerun.errors import InputError
from agent_rerun.pubkey import ssh_public_key_line
from agent_rerun.trust import parse_trust_file

C1 = OUR_VECTORS / "c1-byte-replay-passes"
ATTACKER_KEY = bytes(range(1, 33))


@pytest.fixture
def attacker_bundle(tmp_path: Path) -> Path:
    """The C1 bundle re-signed by a key nobody trusts."""
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    path = tmp_path / "attacker.rr"
    path.write_text(json.dumps(sign_bundle(bundle, ATTACKER_KEY)))
    return path


# ---------------------------------------------------------------- trust fails closed


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


# ---------------------------------------------------------------- never raise


@pytest.mark.parametrize("path", ["bad\0name.rr", None, 42])
def test_verify_files_reports_unusable_paths(path: Any) -> None:
    result = verify_files(path, C1 / "actual.json")
    assert not result.verified
    assert result.errors[0].startswith("SchemaViolation:bundle: ")


def test_batch_goes_on_after_an_unusable_manifest_line(tmp_path: Path) -> None:
    good = {"bundle": str(C1 / "bundle.rr"), "actual": str(C1 / "actual.json")}
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join([
        json.dumps({**good, "name": "first"}),
        json.dumps({"bundle": "x\0y.rr", "actual": "a.json", "name": "nul"}),
        '{"bundle": "a.rr", "actual": "a.json", "bundle": "b.rr"}',
        json.dumps({**good, "name": "last"}),
    ]) + "\n")
    run = run_cli("verify", "--batch", manifest)
    assert run.returncode == 1
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["verified"] for r in results] == [True, False, False, True]
    assert "duplicate object key 'bundle'" in results[2]["errors"][0]
    assert "Traceback" not in run.stderr


def test_manifest_with_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "pairs.txt"
    manifest.write_text(f"\ufeff{C1 / 'bundle.rr'} {C1 / 'actual.json'}\n")
    run = run_cli("verify", "--batch", manifest)
    assert run.returncode == 1
    assert "byte-order mark" in run.stderr


# ---------------------------------------------------------------- output cannot be forged


def test_inspect_escapes_control_characters_from_the_bundle(tmp_path: Path) -> None:
    step = copy.deepcopy(SAMPLE_STEP)
    step["runtime"]["tool_versions"]["python"] = "3.12\nsignature:      valid\x1b[8m"
    path = tmp_path / "spoof.rr"
    path.write_text(json.dumps(capture(step)))
    run = run_cli("inspect", path)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert not any(line.startswith("signature:      valid") for line in run.stdout.splitlines())
    assert "3.12\\nsignature:      valid\\x1b[8m" in run.stdout


def test_verify_stderr_stays_one_line_for_hostile_field_names(tmp_path: Path) -> None:
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    bundle["runtime"]["tool_versions"] = {"py\nthon": 3}
    path = tmp_path / "b.rr"
    path.write_text(json.dumps(bundle))
    run = run_cli("verify", path, C1 / "actual.json")
    assert run.returncode == 1
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert str(path) in run.stderr  # the file is named, as for reading errors


# ---------------------------------------------------------------- strict everywhere


def test_a_byte_bundle_cannot_carry_a_malformed_embedding() -> None:
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    bundle["expected"]["semantic_embedding"] = "AAAAAA=="  # a zero vector, signed
    bundle = sign_bundle(bundle, bytes([1]) * 32)
    result = verify(bundle, SAMPLE_ACTUAL | {"inputs": json.loads(
        (C1 / "actual.json").read_bytes())["inputs"]})
    assert any(error.startswith("ZeroEmbedding:bundle.expected.semantic_embedding")
               for error in result.errors), result.errors


def test_capture_refuses_a_string_as_the_signing_key() -> None:
    with pytest.raises(TypeError, match="not a str"):
        capture(SAMPLE_STEP, CaptureOptions(signing_key="abc"))  # type: ignore[arg-type]


# ---------------------------------------------------------------- batch capture


def test_batch_capture_goes_on_after_a_write_error(tmp_path: Path) -> None:
    steps = []
    for name in ("a", "b", "c"):
        steps.append(tmp_path / f"{name}.json")
        steps[-1].write_text(json.dumps(SAMPLE_STEP))
    out = tmp_path / "out"
    (out / "b.rr").mkdir(parents=True)  # cannot be replaced by a file
    run = run_cli("capture", *steps, "-o", out, "--unsigned")
    assert run.returncode == 1
    assert f"rerun: error: {out / 'b.rr'}: Is a directory" in run.stderr
    assert "1 of 3 steps could not be captured" in run.stderr
    assert (out / "a.rr").is_file() and (out / "c.rr").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_output_with_a_trailing_slash_is_a_folder(tmp_path: Path) -> None:
    step = tmp_path / "one.json"
    step.write_text(json.dumps(SAMPLE_STEP))
    run = run_cli("capture", step, "-o", f"{tmp_path / 'new'}{os.sep}", "--unsigned")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "new" / "one.rr").is_file()


# ---------------------------------------------------------------- prompts


def test_keygen_accepts_an_empty_passphrase_at_the_prompt(tmp_path: Path) -> None:
    """The prompt offers 'empty for no encryption'; an empty answer must be taken."""
    key = tmp_path / "k.pem"
    pid, fd = pty.fork()
    if pid == 0:  # child: the real CLI on a real terminal
        os.environ.pop("RERUN_KEY_PASSPHRASE", None)
        os.execv(os.sys.executable, [os.sys.executable, "-m", "agent_rerun", "keygen", str(key)])
    seen = b""
    deadline = time.monotonic() + 30
    answered = 0
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if answered < 2 and seen.count(b":") > answered and (
                b"Passphrase" in seen if answered == 0 else b"Repeat" in seen):
            os.write(fd, b"\r")
            answered += 1
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
