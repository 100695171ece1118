"""Issue 9 items 10-14 for PKCS#11, against a real SoftHSM2 token, mostly through the CLI.

10: a ``;`` in the query never lets a PIN, pin-source or module value reach any output.
11: a pin-source that is ``/dev/zero`` or a FIFO nobody writes is refused (exit 3), never
    read into memory or waited on forever; ``<(...)`` still works.
12: an empty PIN never reaches the token; a PIN file others can read gets the key-file warning.
13: ``rerun pubkey pkcs11:...`` needs no PIN when the public object is visible without login.
14: a public-key object left without its private key (a keygen killed midway) is shown by
    ``keys list``, named by keygen's refusal with the way out, and removed by ``--force``;
    a keygen that fails in-process removes what it made.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pkcs11_fixtures import (
    MAIN_TOKEN,
    USER_PIN,
    SoftHsm,
    assert_one_line_error,
    import_or_skip,
    key_field,
    rerun,
    sample_workdir,
    softhsm,
    token_session,
)

from agent_rerun.errors import SignerError
from agent_rerun.signer import generate_key

import_or_skip("agent_rerun_pkcs11")
pkcs11 = import_or_skip("pkcs11")

from agent_rerun_pkcs11 import keygen  # noqa: E402
from pkcs11 import Attribute, ObjectClass  # noqa: E402

__all__ = ["sample_workdir", "softhsm", "token_session"]  # fixtures used by name
field = key_field

pytestmark = pytest.mark.pkcs11

EXIT_KEY = 3


def label() -> str:
    return f"in-{uuid.uuid4().hex[:10]}"


def make_key(softhsm: SoftHsm, workdir: Path) -> tuple[str, str]:
    """A new key on the main token, made by ``rerun keygen``: its label and the printout."""
    name = label()
    made = rerun("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={name}"),
                 env=softhsm.env(), cwd=workdir)
    assert made.returncode == 0, made.stderr
    return name, made.stdout


def objects_labelled(session: Any, name: str) -> list[Any]:
    return list(session.get_objects({Attribute.LABEL: name}))


def bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A shell line (for ``<(...)``), with a timeout so a hang fails instead of stalling."""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60, stdin=subprocess.DEVNULL)


def rerun_cmd() -> str:
    return f"'{sys.executable}' -m agent_rerun"


# ------------------------------------------------------------------ item 4


def test_an_unusable_config_while_a_token_key_is_loaded_exits_3(
    softhsm: SoftHsm, workdir: Path
) -> None:
    """The module comes from the config's [pkcs11] section when the URI names none: a
    config that cannot be read is then a key error (exit 3), as for [sign] key."""
    config = workdir / "config.toml"
    config.symlink_to(workdir / "unmounted" / "config.toml")
    key = f"pkcs11:token={MAIN_TOKEN};object=any?pin-source={softhsm.pin_file}"
    env = softhsm.env(RERUN_CONFIG=str(config))
    for args in (["keygen", key], ["pubkey", key], ["keys", "list", key],
                 ["capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"),
                  "--key", key]):
        done = rerun(*args, env=env, cwd=workdir)
        assert_one_line_error(done, EXIT_KEY, f"{config}: cannot read config file: it is a "
                              "dangling symbolic link")
    assert not (workdir / "x.rr").exists()


# ------------------------------------------------------------------ item 10


SECRETS = {
    "pin-value": "S3cret-PIN-4321",
    "pin-source": "/secret/place/pin-7788",
    "module-name": "secret-module-9911",
}


@pytest.mark.parametrize("attribute", sorted(SECRETS))
def test_semicolon_in_the_query_shows_no_secret_in_any_command(
    softhsm: SoftHsm, workdir: Path, attribute: str
) -> None:
    secret = SECRETS[attribute]
    query = f"?module-path={softhsm.module};{attribute}={secret}"
    key = f"pkcs11:token={MAIN_TOKEN};object=signing{query}"
    env = softhsm.env()
    runs = [
        rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"), "--key", key,
              env=env, cwd=workdir),
        rerun("keygen", key, env=env, cwd=workdir),
        rerun("pubkey", key, env=env, cwd=workdir),
        rerun("keys", "list", f"pkcs11:token={MAIN_TOKEN}{query}", env=env, cwd=workdir),
    ]
    for done in runs:
        assert_one_line_error(done, EXIT_KEY, "malformed query: ';' after '?'")
        for text in (done.stdout, done.stderr):
            assert secret not in text and softhsm.module not in text, text
    assert not (workdir / "x.rr").exists()


# ------------------------------------------------------------------ item 11


def test_pin_source_dev_zero_is_refused_with_one_line(softhsm: SoftHsm, workdir: Path) -> None:
    name, _ = make_key(softhsm, workdir)
    key = (f"pkcs11:token={MAIN_TOKEN};object={name}"
           f"?module-path={softhsm.module}&pin-source=/dev/zero")
    done = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"),
                 "--key", key, env=softhsm.env(), cwd=workdir)
    assert_one_line_error(done, EXIT_KEY, "/dev/zero: pin-source file is larger than 64 KiB")
    assert not (workdir / "x.rr").exists()


def test_pin_source_fifo_nobody_writes_times_out(softhsm: SoftHsm, workdir: Path) -> None:
    fifo = workdir / "pin.fifo"
    os.mkfifo(fifo)
    key = (f"pkcs11:token={MAIN_TOKEN};object=any"
           f"?module-path={softhsm.module}&pin-source={fifo}")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agent_rerun", "capture", str(workdir / "step.json"),
         "-o", str(workdir / "x.rr"), "--key", key],
        capture_output=True, text=True, cwd=workdir, stdin=subprocess.DEVNULL, timeout=60,
        env=softhsm.env(RERUN_INPUT_TIMEOUT="1"),
    )
    assert time.monotonic() - started < 30
    assert_one_line_error(done, EXIT_KEY, f"{fifo}: cannot read pin-source file: nothing "
                          "was written to it for 1 seconds")


def test_pin_source_from_process_substitution_is_read_as_a_stream(
    softhsm: SoftHsm, workdir: Path
) -> None:
    name, made = make_key(softhsm, workdir)
    key = f"pkcs11:token={MAIN_TOKEN};object={name}?module-path={softhsm.module}&pin-source="
    done = bash(f"{rerun_cmd()} capture step.json -o s.rr --key \"{key}\"<(sleep 0.5; "
                f"cat '{softhsm.pin_file}')", softhsm.env(), workdir)
    assert done.returncode == 0, done.stderr
    bundle = json.loads((workdir / "s.rr").read_bytes())
    assert bundle["signature"]["pubkey"] == field(made, "public key")


# ------------------------------------------------------------------ item 12


def test_empty_pin_value_is_refused_before_the_token(softhsm: SoftHsm, workdir: Path) -> None:
    key = f"pkcs11:token={MAIN_TOKEN};object=any?module-path={softhsm.module}&pin-value="
    done = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"),
                 "--key", key, env=softhsm.env(), cwd=workdir)
    line = assert_one_line_error(done, EXIT_KEY, "pin-value is empty")
    assert "wrong PIN" not in line and "nothing was sent to the token" in line


def test_empty_pin_file_is_refused(softhsm: SoftHsm, workdir: Path) -> None:
    pin = workdir / "empty.pin"
    pin.write_text("\n")
    pin.chmod(0o600)
    key = (f"pkcs11:token={MAIN_TOKEN};object=any"
           f"?module-path={softhsm.module}&pin-source={pin}")
    done = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"),
                 "--key", key, env=softhsm.env(), cwd=workdir)
    assert_one_line_error(done, EXIT_KEY, "is empty")


def test_pin_file_others_can_read_warns_like_a_key_file(
    softhsm: SoftHsm, workdir: Path
) -> None:
    name, _ = make_key(softhsm, workdir)
    pin = workdir / "shared.pin"
    pin.write_text(USER_PIN + "\n")
    pin.chmod(0o644)
    key = (f"pkcs11:token={MAIN_TOKEN};object={name}"
           f"?module-path={softhsm.module}&pin-source={pin}")
    done = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "w.rr"),
                 "--key", key, env=softhsm.env(), cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        f"rerun: warning: pin-source file {pin} is accessible by group or others "
        f"(mode 0644); fix with: chmod 600 {pin}")
    pin.chmod(0o600)
    quiet = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "q.rr"),
                  "--key", key, env=softhsm.env(), cwd=workdir)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


# ------------------------------------------------------------------ item 13


def test_pubkey_needs_no_pin_when_the_public_object_is_visible(
    softhsm: SoftHsm, workdir: Path
) -> None:
    name, made = make_key(softhsm, workdir)
    no_pin = softhsm.uri(f"token={MAIN_TOKEN};object={name}", pin=False)
    # No pin-source, no RERUN_PKCS11_PIN, no terminal: a login could not even be tried.
    done = rerun("pubkey", no_pin, "--format", "base64", env=softhsm.env(), cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == field(made, "public key")
    text = rerun("pubkey", no_pin, env=softhsm.env(), cwd=workdir)
    assert text.returncode == 0, text.stderr
    assert field(text.stdout, "fingerprint") == field(made, "fingerprint")


# ------------------------------------------------------------------ item 14


def make_orphan(session: Any, softhsm: SoftHsm, workdir: Path) -> tuple[str, str]:
    """A real key pair made by rerun, then its private half destroyed on the token.

    That is the state a keygen killed between the token's two object writes
    leaves (seen once in 25 kills); returns the label and the public key.
    """
    name, made = make_key(softhsm, workdir)
    for obj in session.get_objects({Attribute.LABEL: name,
                                    Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
        obj.destroy()
    remaining = objects_labelled(session, name)
    assert [o[Attribute.CLASS] for o in remaining] == [ObjectClass.PUBLIC_KEY]
    return name, field(made, "public key")


def test_orphaned_public_key_is_listed_named_by_keygen_and_removed_by_force(
    softhsm: SoftHsm, session: Any, workdir: Path
) -> None:
    name, old_public = make_orphan(session, softhsm, workdir)
    uri = softhsm.uri(f"token={MAIN_TOKEN};object={name}")
    env = softhsm.env()

    listed = rerun("keys", "list", softhsm.uri(f"token={MAIN_TOKEN};object={name}"),
                   env=env, cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert "unusable:     orphaned public-key object" in listed.stdout
    assert f"rerun keygen 'pkcs11:token={MAIN_TOKEN}" in listed.stdout
    assert "--force" in listed.stdout

    refused = rerun("keygen", uri, env=env, cwd=workdir)
    line = assert_one_line_error(refused, EXIT_KEY,
                                 f"holds a public-key object with label {name!r} but no "
                                 "private key")
    assert "--force" in line and f"object={name}" in line

    capture = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"),
                    "--key", uri, env=env, cwd=workdir)
    assert_one_line_error(capture, EXIT_KEY, "only an orphaned public-key object does")
    assert "--force" in capture.stderr and not (workdir / "x.rr").exists()

    forced = rerun("keygen", uri, "--force", env=env, cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    new_public = field(forced.stdout, "public key")
    assert new_public != old_public
    classes = sorted(int(o[Attribute.CLASS]) for o in objects_labelled(session, name))
    assert classes == sorted([int(ObjectClass.PUBLIC_KEY), int(ObjectClass.PRIVATE_KEY)])
    signed = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "y.rr"),
                   "--key", uri, env=env, cwd=workdir)
    assert signed.returncode == 0, signed.stderr
    assert json.loads((workdir / "y.rr").read_bytes())["signature"]["pubkey"] == new_public


def test_force_never_removes_a_real_private_key(softhsm: SoftHsm, session: Any,
                                                workdir: Path) -> None:
    name, made = make_key(softhsm, workdir)
    uri = softhsm.uri(f"token={MAIN_TOKEN};object={name}")
    again = rerun("keygen", uri, "--force", env=softhsm.env(), cwd=workdir)
    assert_one_line_error(again, EXIT_KEY, "already holds an object with label")
    assert len(objects_labelled(session, name)) == 2
    shown = rerun("pubkey", uri, "--format", "base64", env=softhsm.env(), cwd=workdir)
    assert shown.stdout.strip() == field(made, "public key")


def test_a_keygen_failing_between_the_two_objects_leaves_nothing(
    softhsm: SoftHsm, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one mock here: SoftHSM makes both halves in one C_GenerateKeyPair call and
    cannot be made to fail between them from outside (only a kill does that, which no
    cleanup can see). So the pair creation is replaced by one that stores a real public
    object on the real token and then fails as a full token would."""
    name = label()

    def public_then_fail(real_session: Any, obj_label: str, key_id: bytes) -> Any:
        real_session.create_object({
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS,
            Attribute.TOKEN: True,
            Attribute.LABEL: obj_label,
            Attribute.ID: key_id,
            Attribute.EC_PARAMS: keygen.EDWARDS25519_PARAMS,
            Attribute.EC_POINT: b"\x04\x20" + bytes(range(32)),
        })
        assert len(objects_labelled(real_session, obj_label)) == 1
        raise pkcs11.exceptions.DeviceMemory()

    monkeypatch.setattr(keygen, "_create_pair", public_then_fail)
    with pytest.raises(SignerError, match="generating an Ed25519 key pair"):
        generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    assert objects_labelled(session, name) == []
    monkeypatch.undo()
    info = generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    assert base64.b64encode(info.public_key)
