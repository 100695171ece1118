"""The vault: backend against a real ``bao server -dev``: keys, capture, sign, rotate, batch.

Verification of what it signed then runs in a process where hvac and the
backend cannot even be imported: a Transit-signed bundle needs only the core.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP, sample_actual, sample_step
from support import run_cli
from vault_support import (  # noqa: F401
    DevServer,
    api,
    bao_dev,
    fresh_key,
    new_key,
    ok,
    require_backend,
    use_server,
)

require_backend()

EXIT_KEY = 3

#: Runs the CLI with hvac, requests and the backend made unimportable.
PURE_VERIFY = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hvac", "requests", "agent_rerun_vault"):
            raise ImportError("blocked for the purity check: " + name)
        return None
sys.meta_path.insert(0, _Block())
from agent_rerun.cli import main
sys.argv = ["rerun", *sys.argv[1:]]
main()
"""



def pure_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PURE_VERIFY, "verify", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def write_step(path: Path, step: object = SAMPLE_STEP) -> Path:
    path.write_text(json.dumps(step), encoding="utf-8")
    return path


def public_key_of(server: DevServer, uri: str) -> str:
    result = run_cli("pubkey", "--format", "base64", uri, env=server.env())
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def capture_sample(server: DevServer, uri: str, tmp_path: Path) -> tuple[Path, Path]:
    """``rerun capture`` of the sample step signed with ``uri``: the bundle and its actual."""
    step = write_step(tmp_path / "step.json")
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL), encoding="utf-8")
    bundle = tmp_path / "b.rr"
    captured = run_cli("capture", step, "-o", bundle, "--key", uri, env=server.env())
    assert captured.returncode == 0, captured.stderr
    return bundle, actual


def test_keygen_list_pubkey_capture_sign_rotate_verify_without_backend(
        bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    name = fresh_key("k")
    uri = f"vault:{name}"
    made = run_cli("keygen", uri, env=bao_dev.env())
    assert made.returncode == 0, made.stderr
    assert f"key:          vault:{name}?version=1" in made.stdout
    v1 = public_key_of(bao_dev, uri)
    assert v1 in made.stdout

    listed = run_cli("keys", "list", "vault:", env=bao_dev.env())
    assert listed.returncode == 0, listed.stderr
    assert f"vault:{name}?version=1" in listed.stdout and v1 in listed.stdout

    bundle, actual = capture_sample(bao_dev, uri, tmp_path)
    assert json.loads(bundle.read_text())["signature"]["pubkey"] == v1

    rotated = run_cli("keys", "rotate", uri, env=bao_dev.env())
    assert rotated.returncode == 0, rotated.stderr
    assert f"vault:{name}?version=2" in rotated.stdout
    v2 = public_key_of(bao_dev, uri)
    assert v2 != v1 and v2 in rotated.stdout
    assert public_key_of(bao_dev, f"{uri}?version=1") == v1
    both = run_cli("keys", "list", uri, env=bao_dev.env())
    assert v1 in both.stdout and v2 in both.stdout

    resigned = tmp_path / "b2.rr"
    signed = run_cli("sign", bundle, "-o", resigned, "--key", uri, env=bao_dev.env())
    assert signed.returncode == 0, signed.stderr
    assert json.loads(resigned.read_text())["signature"]["pubkey"] == v2

    old = run_cli("sign", bundle, "-o", tmp_path / "b1.rr", "--key", f"{uri}?version=1",
                  env=bao_dev.env())
    assert old.returncode == 0, old.stderr

    for path, key in ((bundle, v1), (resigned, v2), (tmp_path / "b1.rr", v1)):
        run = pure_verify(str(path), str(actual), "--trusted-key", key)
        assert run.returncode == 0, run.stdout + run.stderr
        assert json.loads(run.stdout)["verified"] is True
    wrong = pure_verify(str(resigned), str(actual), "--trusted-key", v1)
    assert wrong.returncode == 1


def test_pure_verify_really_blocks_the_backend(tmp_path: Path) -> None:
    """The purity harness must not pass by accident: importing the backend there fails."""
    code = PURE_VERIFY.replace("from agent_rerun.cli import main", "import agent_rerun_vault")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode != 0 and "blocked for the purity check" in run.stderr


def test_batch_capture_signs_through_batch_input(bao_dev: DevServer,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """1,200 steps: a handful of sign requests (chunks under 500), every bundle valid."""
    from agent_rerun.capture import bundle_from_step, sign_bundles
    from agent_rerun.signer import load_signer
    from agent_rerun.verify import verify

    name = new_key(bao_dev, "k")
    steps = [sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i}) for i in range(1200)]
    bundles = [bundle_from_step(s) for s in steps]
    uri = f"vault:{name}?addr={bao_dev.addr}"
    use_server(monkeypatch, bao_dev)
    with load_signer(uri) as signer:
        before = signer._cluster.requests_sent  # type: ignore[attr-defined]
        signed = sign_bundles(bundles, signer)
        sent = signer._cluster.requests_sent - before  # type: ignore[attr-defined]
    assert sent == 3  # 400 + 400 + 400: under the ~500-string limit
    public = signed[0]["signature"]["pubkey"]
    for bundle, step in zip(signed[:50] + signed[-50:], steps[:50] + steps[-50:], strict=True):
        assert verify(bundle, sample_actual(step), trusted_keys=[public]).verified


def test_batch_capture_cli_writes_every_bundle(bao_dev: DevServer,  # noqa: F811
                                               tmp_path: Path) -> None:
    name = new_key(bao_dev, "k")
    steps = tmp_path / "steps"
    steps.mkdir()
    paths = [write_step(steps / f"s{i:04}.json",
                        sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i}))
             for i in range(1100)]
    write_step(steps / "bad.json", {"not": "a step"})
    out = tmp_path / "out"
    result = run_cli("capture", *paths, steps / "bad.json", "-o", f"{out}/",
                     "--key", f"vault:{name}", env=bao_dev.env())
    assert result.returncode == 1  # the bad step is reported, the rest are written
    assert "bad.json" in result.stderr and "1 of 1101 steps" in result.stderr
    assert len(list(out.glob("*.rr"))) == 1100
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL), encoding="utf-8")
    key = public_key_of(bao_dev, f"vault:{name}")
    run = pure_verify(str(out / "s0007.rr"), str(actual), "--trusted-key", key)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_namespace_holds_its_own_keys(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    """``namespace=`` (or ``$VAULT_NAMESPACE``) sends every request into that namespace."""
    namespace = fresh_key("ns")
    ok(bao_dev.addr, "POST", f"sys/namespaces/{namespace}")
    ok(bao_dev.addr, "POST", f"{namespace}/sys/mounts/transit", {"type": "transit"})
    name = fresh_key("k")
    uri = f"vault:{name}?namespace={namespace}"
    made = run_cli("keygen", uri, env=bao_dev.env())
    assert made.returncode == 0, made.stderr
    assert f"vault:{name}?version=1&namespace={namespace}" in made.stdout
    inside = ok(bao_dev.addr, "GET", f"{namespace}/transit/keys/{name}")
    assert inside["data"]["type"] == "ed25519"
    assert api(bao_dev.addr, "GET", f"transit/keys/{name}")[0] == 404

    public = public_key_of(bao_dev, uri)
    from_env = run_cli("pubkey", "--format", "base64", f"vault:{name}",
                       env=bao_dev.env(VAULT_NAMESPACE=namespace))
    assert from_env.returncode == 0 and from_env.stdout.strip() == public
    outside = run_cli("pubkey", f"vault:{name}", env=bao_dev.env())
    assert outside.returncode == EXIT_KEY and f"rerun keygen vault:{name}" in outside.stderr
    listed = run_cli("keys", "list", f"vault:?namespace={namespace}", env=bao_dev.env())
    assert listed.returncode == 0 and public in listed.stdout

    bundle, actual = capture_sample(bao_dev, uri, tmp_path)
    run = pure_verify(str(bundle), str(actual), "--trusted-key", public)
    assert run.returncode == 0, run.stdout + run.stderr


def test_keygen_refuses_an_existing_name_of_any_type(bao_dev: DevServer) -> None:  # noqa: F811
    name = fresh_key("k")
    ok(bao_dev.addr, "POST", f"transit/keys/{name}", {"type": "rsa-2048"})
    result = run_cli("keygen", f"vault:{name}", env=bao_dev.env())
    assert result.returncode == EXIT_KEY
    assert "already exists" in result.stderr and "rsa-2048" in result.stderr
    status, reply = 0, ok(bao_dev.addr, "GET", f"transit/keys/{name}")
    assert reply["data"]["type"] == "rsa-2048" and status == 0


def test_keys_list_lists_every_live_version(bao_dev: DevServer,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What an allowed-signers export needs: one public key per live version."""
    from agent_rerun.signer import list_keys

    name = new_key(bao_dev, "k")
    ok(bao_dev.addr, "POST", f"transit/keys/{name}/rotate", {})
    ok(bao_dev.addr, "POST", f"transit/keys/{name}/rotate", {})
    ok(bao_dev.addr, "POST", f"transit/keys/{name}/config",
       {"min_decryption_version": 2, "min_encryption_version": 2})
    ok(bao_dev.addr, "POST", f"transit/keys/{name}/trim", {"min_available_version": 2})
    use_server(monkeypatch, bao_dev)
    infos = list_keys(f"vault:{name}")
    assert [i.uri.split("version=")[1] for i in infos] == ["2", "3"]
    assert len({i.public_key for i in infos}) == 2


def test_a_batch_the_server_refuses_as_too_complex_is_split(bao_dev: DevServer,  # noqa: F811
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """The real listener refuses ~500 strings or more; the signer halves and remembers."""
    from agent_rerun.signer import load_signer

    name = new_key(bao_dev, "k")
    use_server(monkeypatch, bao_dev)
    with load_signer(f"vault:{name}") as signer:
        signer.batch_items = 900  # type: ignore[attr-defined]
        payloads = [b"payload %d" % i for i in range(1800)]
        signatures = signer.sign_many(payloads)  # type: ignore[attr-defined]
        assert len(signatures) == 1800
        assert signer.batch_items == 450  # type: ignore[attr-defined]


def test_config_section_supplies_defaults_and_refuses_typos(bao_dev: DevServer,  # noqa: F811
                                                            tmp_path: Path) -> None:
    name = new_key(bao_dev, "k")
    config = tmp_path / "config.toml"
    config.write_text(f'[sign]\nkey = "vault:{name}"\n\n[vault]\naddr = "{bao_dev.addr}"\n'
                      'mount = "transit"\n')
    step = write_step(tmp_path / "step.json")
    env = bao_dev.env(VAULT_ADDR=None, RERUN_CONFIG=str(config))
    good = run_cli("capture", step, "-o", tmp_path / "c.rr", env=env)
    assert good.returncode == 0, good.stderr
    assert json.loads((tmp_path / "c.rr").read_text())["signature"]["pubkey"] == \
        public_key_of(bao_dev, f"vault:{name}")
    config.write_text(f'[vault]\naddr = "{bao_dev.addr}"\nmonut = "transit"\n')
    bad = run_cli("capture", step, "-o", tmp_path / "d.rr", "--key", f"vault:{name}", env=env)
    assert bad.returncode == EXIT_KEY
    assert str(config) in bad.stderr and "unknown key 'monut'" in bad.stderr
