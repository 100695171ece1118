"""``rerun inspect``: what a bundle says, who signed it, whether that key is trusted,
shown so that nothing inside the bundle can forge or reorder a line of the output."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from samples import SAMPLE_STEP
from support import invoke_cli as run
from support import output_fields as _fields
from support import run_cli as run_process

from agent_rerun.capture import CaptureOptions, capture
from agent_rerun.cli.common import EXIT_FAILED
from agent_rerun.keyfile import PASSPHRASE_ENV, backend
from agent_rerun.pubkey import fingerprint, ssh_public_key_line


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv("RERUN_CONFIG", "")





def _bundle(tmp_path: Path, key_path: Path | None, name: str = "b.rr") -> Path:
    signer = backend.load(str(key_path)) if key_path else None
    bundle = capture(SAMPLE_STEP, CaptureOptions(signer=signer))
    out = tmp_path / name
    out.write_text(json.dumps(bundle))
    return out


def test_inspect_unsigned(tmp_path: Path) -> None:
    result = run("inspect", str(_bundle(tmp_path, None)))
    assert result.exit_code == 0
    fields = _fields(result.stdout)
    assert fields["rerun_version"] == "0.1"
    assert fields["model"] == "anthropic / claude-opus-4-7 (fingerprint fp_test)"
    assert fields["sampling"] == "seed=42 temperature=0 top_p=1"
    assert fields["tolerance"] == "byte"
    assert fields["signature"] == "none (unsigned bundle)"
    assert fields["transcript_sha256      sha256"].startswith("d5665818")


def test_inspect_signed_trusted_and_untrusted(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    run("keygen", str(key))
    bundle = _bundle(tmp_path, key)
    pub = backend.load(str(key)).public_key
    plain = _fields(run("inspect", str(bundle)).stdout)
    assert plain["signature"] == "valid (ed25519)"
    assert plain["signer"] == base64.b64encode(pub).decode()
    assert plain["fingerprint"] == fingerprint(pub)
    assert plain["trusted"].startswith("unknown")

    trusted = run("inspect", str(bundle), "--trusted-key", ssh_public_key_line(pub, "alice"))
    assert _fields(trusted.stdout)["trusted"].startswith('yes, as "alice"')

    other = tmp_path / "other.pem"
    run("keygen", str(other))
    other_pub = base64.b64encode(backend.load(str(other)).public_key).decode()
    untrusted = run("inspect", str(bundle), "--trusted-key", other_pub)
    assert untrusted.exit_code == 0
    assert _fields(untrusted.stdout)["trusted"].startswith("NO")


def test_inspect_trust_from_config_file(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    run("keygen", str(key))
    bundle = _bundle(tmp_path, key)
    pub = backend.load(str(key)).public_key
    (tmp_path / "allowed_signers").write_text(
        f'ci@example.com namespaces="agent-rerun" {ssh_public_key_line(pub)}\n'
    )
    config = tmp_path / "config.toml"
    config.write_text('[verify]\ntrusted_keys_file = "allowed_signers"\n')
    result = run("inspect", str(bundle), env={"RERUN_CONFIG": str(config)})
    assert result.exit_code == 0
    assert _fields(result.stdout)["trusted"] == (
        f'yes, as "ci@example.com", namespaces agent-rerun (by config {config})')


def test_inspect_tampered_bundle_fails(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    run("keygen", str(key))
    path = _bundle(tmp_path, key)
    bundle = json.loads(path.read_text())
    bundle["sampling"]["temperature"] = 0.7
    path.write_text(json.dumps(bundle))
    result = run("inspect", str(path))
    assert result.exit_code == EXIT_FAILED
    assert _fields(result.stdout)["signature"].startswith("INVALID")


def test_inspect_bad_input_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rr"
    broken.write_text('{"rerun_version": "0.1", "rerun_version": "0.1"}')
    result = run("inspect", str(broken))
    assert result.exit_code == EXIT_FAILED
    assert result.stdout == ""
    assert result.stderr.startswith("rerun: error: ")
    assert result.stderr.count("\n") == 1
    missing = run("inspect", str(tmp_path / "absent.rr"))
    assert missing.exit_code == EXIT_FAILED
    assert "absent.rr" in missing.stderr


#: Characters that reorder or break what a terminal shows: bidi embeddings and
#: overrides (U+202A-U+202E), isolates (U+2066-U+2069), line/paragraph separators.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
REORDERING = BIDI + "\u2028\u2029"


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def test_inspect_escapes_bidi_controls_and_line_separators(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """``rerun inspect`` (a real process) shows every reordering character as an escape.

    They sit in the model's vendor, id and fingerprint, a tool name and
    its version, the trusted key's name, the bundle's file name, and (for stderr) a field
    name the schema refuses: a U+202E in any of them could make a line read as
    something else, e.g. an untrusted signer as trusted.
    """
    key = tmp_path / "k.pem"
    assert run("keygen", str(key)).exit_code == 0
    signer = backend.load(str(key))
    step = json.loads(json.dumps(SAMPLE_STEP))
    step["model"] = {"vendor": f"ven{REORDERING}dor", "id": f"model{REORDERING}id",
                     "fingerprint": f"fp{REORDERING}"}
    step["runtime"] = {"class": "cloud",
                       "tool_versions": {f"py{REORDERING}": f"3.12{REORDERING}"}}
    bundle = tmp_path / f"b{REORDERING}.rr"
    bundle.write_text(json.dumps(capture(step, CaptureOptions(signer=signer))),
                      encoding="utf-8")
    name = f"alice{BIDI}"  # trust lines refuse U+2028/U+2029 themselves
    trusted = f"{base64.b64encode(signer.public_key).decode()} {name}"
    result = run_cli("inspect", bundle, "--trusted-key", trusted)
    assert result.returncode == 0, result.stderr
    assert not set(REORDERING) & set(result.stdout), result.stdout
    for shown in (f"ven{_escaped(REORDERING)}dor", f"model{_escaped(REORDERING)}id",
                  f"fp{_escaped(REORDERING)}",
                  f"3.12{_escaped(REORDERING)}", f"alice{_escaped(BIDI)}",
                  f"b{_escaped(REORDERING)}.rr"):
        assert shown in result.stdout, (shown, result.stdout)

    hostile = json.loads(bundle.read_text(encoding="utf-8"))
    hostile["model"][f"x{REORDERING}"] = "y"
    refused = tmp_path / "refused.rr"
    refused.write_text(json.dumps(hostile), encoding="utf-8")
    failed = run_cli("inspect", refused)
    assert failed.returncode == EXIT_FAILED
    assert failed.stderr.startswith("rerun: error: ") and failed.stderr.count("\n") == 1
    assert not set(REORDERING) & set(failed.stderr), failed.stderr
    assert f"x{_escaped(REORDERING)}" in failed.stderr, failed.stderr


def test_inspect_escapes_control_characters_from_the_bundle(tmp_path: Path) -> None:
    step = copy.deepcopy(SAMPLE_STEP)
    step["runtime"]["tool_versions"]["python"] = "3.12\nsignature:      valid\x1b[8m"
    path = tmp_path / "spoof.rr"
    path.write_text(json.dumps(capture(step)))
    run = run_process("inspect", path)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert not any(line.startswith("signature:      valid") for line in run.stdout.splitlines())
    assert "3.12\\nsignature:      valid\\x1b[8m" in run.stdout
