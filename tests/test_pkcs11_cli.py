"""``rerun`` with a SoftHSM2 token, end to end in subprocesses.

keygen on the token, keys list, pubkey, capture with the pkcs11: URI, then
verify in a process where python-pkcs11 cannot be imported and no PIN or
module is configured. Every failure is one stderr line, exit 3, no PIN shown,
no bundle written.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from pkcs11_fixtures import (
    BLOCK_PKCS11,
    MAIN_TOKEN,
    USER_PIN,
    SoftHsm,
    assert_one_line_error,
    import_or_skip,
    key_field,
    rerun,
    sample_workdir,
    softhsm,
)
from samples import SAMPLE_STEP

from agent_rerun.pubkey import fingerprint

import_or_skip("agent_rerun_pkcs11")

__all__ = ["sample_workdir", "softhsm"]  # the imported fixtures are used by name
field = key_field

pytestmark = pytest.mark.pkcs11

EXIT_KEY = 3


def label() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def verify_without_pkcs11(workdir: Path, bundle: Path, pubkey_b64: str) -> None:
    """Verify in a process that cannot import python-pkcs11 and knows no PIN or module."""
    clean = {"PATH": "/usr/bin:/bin", "RERUN_CONFIG": "", "HOME": str(workdir)}
    done = rerun("verify", str(bundle), str(workdir / "actual.json"),
                 "--trusted-key", pubkey_b64, env=clean, cwd=workdir, preamble=BLOCK_PKCS11)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout)["verified"] is True
    assert "blocked-import" not in done.stderr  # verify never even tried


def test_the_verify_process_really_cannot_import_pkcs11(workdir: Path) -> None:
    done = rerun("--version", env={"PATH": "/usr/bin:/bin"}, cwd=workdir,
                 preamble=BLOCK_PKCS11 + "\nimport pkcs11\n")
    assert done.returncode != 0
    assert "blocked-import: pkcs11" in done.stderr


def test_keygen_list_pubkey_capture_then_verify_without_pkcs11(
    softhsm: SoftHsm, workdir: Path
) -> None:
    env = softhsm.env()
    name = label()
    made = rerun("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={name}"), env=env, cwd=workdir)
    assert made.returncode == 0, made.stderr
    key_uri = field(made.stdout, "key")
    pubkey_b64 = field(made.stdout, "public key")
    public_key = base64.b64decode(pubkey_b64)
    assert f"object={name};id=%" in key_uri
    assert field(made.stdout, "fingerprint") == fingerprint(public_key)

    listed = rerun("keys", "list", softhsm.uri(f"token={MAIN_TOKEN}"), env=env, cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert key_uri in listed.stdout and pubkey_b64 in listed.stdout

    shown = rerun("pubkey", key_uri, "--format", "base64", env=env, cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == pubkey_b64

    bundle = workdir / "step.rr"
    captured = rerun("capture", str(workdir / "step.json"), "-o", str(bundle), "--key", key_uri,
                     env=env, cwd=workdir)
    assert captured.returncode == 0, captured.stderr
    assert json.loads(bundle.read_bytes())["signature"]["pubkey"] == pubkey_b64
    verify_without_pkcs11(workdir, bundle, pubkey_b64)


def test_batch_capture_signs_every_step_with_the_token(softhsm: SoftHsm, workdir: Path) -> None:
    env = softhsm.env(RERUN_PKCS11_MODULE=softhsm.module)
    name = label()
    made = rerun("keygen", f"pkcs11:token={MAIN_TOKEN};object={name}"
                 f"?pin-source={softhsm.pin_file}", env=env, cwd=workdir)
    assert made.returncode == 0, made.stderr
    steps = []
    for i in range(5):
        path = workdir / f"step{i}.json"
        step = {**SAMPLE_STEP, "sampling": {**SAMPLE_STEP["sampling"], "seed": i}}
        path.write_text(json.dumps(step))
        steps.append(str(path))
    out = workdir / "bundles"
    done = rerun("capture", *steps, "-o", str(out), "--key", field(made.stdout, "key"),
                 env=env, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"step{i}.rr" for i in range(5)]
    for bundle in sorted(out.iterdir()):
        verify_without_pkcs11(workdir, bundle, field(made.stdout, "public key"))


def test_pin_from_environment_and_module_from_config(softhsm: SoftHsm, workdir: Path) -> None:
    config = workdir / "config.toml"
    config.write_text(f'[pkcs11]\nmodule = "{softhsm.module}"\n')
    env = softhsm.env(RERUN_CONFIG=str(config), RERUN_PKCS11_PIN=USER_PIN)
    name = label()
    made = rerun("keygen", f"pkcs11:token={MAIN_TOKEN};object={name}", env=env, cwd=workdir)
    assert made.returncode == 0, made.stderr
    assert "module-path" not in field(made.stdout, "key")
    bundle = workdir / "env.rr"
    done = rerun("capture", str(workdir / "step.json"), "-o", str(bundle),
                 "--key", field(made.stdout, "key"), env=env, cwd=workdir)
    assert done.returncode == 0, done.stderr
    verify_without_pkcs11(workdir, bundle, field(made.stdout, "public key"))


def test_keygen_refuses_an_existing_label_and_keeps_the_key(
    softhsm: SoftHsm, workdir: Path
) -> None:
    env = softhsm.env()
    uri = softhsm.uri(f"token={MAIN_TOKEN};object={label()}")
    first = rerun("keygen", uri, env=env, cwd=workdir)
    assert first.returncode == 0, first.stderr
    again = rerun("keygen", uri, "--force", env=env, cwd=workdir)
    assert_one_line_error(again, EXIT_KEY, "already holds an object with label")
    still = rerun("pubkey", field(first.stdout, "key"), "--format", "base64", env=env, cwd=workdir)
    assert still.stdout.strip() == field(first.stdout, "public key")


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("token={main};object=x?module-path={module}&pin-value=wrong-pin-77",
         "wrong PIN for token 'rerun-main' (not retried"),
        ("token=absent;object=x?module-path={module}&pin-source={pin}",
         "token not present: no initialised token matches token='absent'"),
        ("token={main};object=x?module-path=/nonexistent/libnothing.so",
         "/nonexistent/libnothing.so (from the URI's module-path) does not exist"),
        ("token={main};object=x?module-path={conf}",
         "is not a usable PKCS#11 module: invalid ELF header"),
        ("token={main};object=nothing-here?module-path={module}&pin-source={pin}",
         "no Ed25519 private key on token 'rerun-main' matches object='nothing-here'"),
        ("object=x?module-path={module}&pin-source={pin}", "2 tokens match the URI"),
        ("token={main};object=x?module-path={module}&pin-source={pin}&pin-value=hunter2",
         "give either pin-source or pin-value, not both"),
        ("token={main};object=x?module-path={module}", "needs a PIN"),
    ],
)
def test_key_errors_are_one_line_exit_3_and_write_nothing(
    softhsm: SoftHsm, workdir: Path, key: str, says: str
) -> None:
    uri = "pkcs11:" + key.format(main=MAIN_TOKEN, module=softhsm.module, pin=softhsm.pin_file,
                                 conf=softhsm.conf)
    out = workdir / "never.rr"
    done = rerun("capture", str(workdir / "step.json"), "-o", str(out), "--key", uri,
                 env=softhsm.env(), cwd=workdir)
    line = assert_one_line_error(done, EXIT_KEY, says)
    assert not out.exists()
    for secret in ("wrong-pin-77", "hunter2", USER_PIN):
        assert secret not in line and secret not in done.stdout


def test_several_matching_keys_are_listed_by_the_cli(softhsm: SoftHsm, workdir: Path) -> None:
    env = softhsm.env()
    name = label()
    for key_id in ("%0A%01", "%0A%02"):
        made = rerun("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={name}x{key_id[-1]}"
                                           f";id={key_id}"), env=env, cwd=workdir)
        assert made.returncode == 0, made.stderr
    done = rerun("pubkey", softhsm.uri(f"token={MAIN_TOKEN};id=%0A%01"), env=env, cwd=workdir)
    assert done.returncode == 0, done.stderr
    # Two keys share the token; naming neither label nor id is ambiguous.
    done = rerun("pubkey", softhsm.uri(f"token={MAIN_TOKEN}"), env=env, cwd=workdir)
    line = assert_one_line_error(done, EXIT_KEY, "Ed25519 keys on token 'rerun-main' match the URI")
    assert "id=%0A%01" in line and "id=%0A%02" in line


def test_pin_value_never_appears_in_any_output(softhsm: SoftHsm, workdir: Path) -> None:
    env = softhsm.env()
    encoded = USER_PIN.replace(" ", "%20")
    base = f"?module-path={softhsm.module}&pin-value={encoded}"
    name = label()
    runs = [
        rerun("keygen", f"pkcs11:token={MAIN_TOKEN};object={name}{base}", env=env, cwd=workdir),
        rerun("keys", "list", f"pkcs11:token={MAIN_TOKEN}{base}", env=env, cwd=workdir),
        rerun("pubkey", f"pkcs11:token={MAIN_TOKEN};object={name}{base}", env=env, cwd=workdir),
        rerun("pubkey", f"pkcs11:token={MAIN_TOKEN};object=missing{base}", env=env, cwd=workdir),
        rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "p.rr"),
              "--key", f"pkcs11:token={MAIN_TOKEN};object={name}{base}", env=env, cwd=workdir),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, EXIT_KEY, 0], [r.stderr for r in runs]
    for done in runs:
        for text in (done.stdout, done.stderr):
            assert USER_PIN not in text and encoded not in text, text


def test_a_token_without_eddsa_says_which_products_have_it(
    softhsm: SoftHsm, workdir: Path
) -> None:
    limited = workdir / "no-eddsa.conf"
    limited.write_text(softhsm.conf.read_text().replace(
        "slots.mechanisms = ALL", "slots.mechanisms = CKM_ECDSA,CKM_EC_KEY_PAIR_GEN"))
    env = softhsm.env(SOFTHSM2_CONF=str(limited))
    made = rerun("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={label()}"), env=env,
                 cwd=workdir)
    line = assert_one_line_error(made, EXIT_KEY, "cannot generate Ed25519 keys")
    assert "YubiKey firmware 5.7" in line and "vendor's tool" in line
    signing = softhsm.env()
    name = label()
    assert rerun("keygen", softhsm.uri(f"token={MAIN_TOKEN};object={name}"), env=signing,
                 cwd=workdir).returncode == 0
    done = rerun("capture", str(workdir / "step.json"), "-o", str(workdir / "x.rr"), "--key",
                 softhsm.uri(f"token={MAIN_TOKEN};object={name}"), env=env, cwd=workdir)
    assert_one_line_error(done, EXIT_KEY, "does not offer CKM_EDDSA (Ed25519 signing)")
    assert not (workdir / "x.rr").exists()
