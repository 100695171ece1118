"""The ssh-agent backend against a real OpenSSH ssh-agent started by each test."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samples import sample_step
from sshagent_support import (
    CountingProxy,
    GpgAgent,
    OpenSshAgent,
    agent_fixture,
    make_key,
    start_gpg_agent,
    start_sshd,
)
from support import run_cli

from agent_rerun.errors import SignerError
from agent_rerun.sshagent.uri import parse_agent_uri


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[OpenSshAgent]:
    yield from agent_fixture(tmp_path / "agent")


def _step(tmp_path: Path) -> Path:
    path = tmp_path / "step.json"
    path.write_text(json.dumps(sample_step()))
    return path


def test_capture_through_the_agent_verifies_with_the_pub_line(
    agent: OpenSshAgent, tmp_path: Path
) -> None:
    ed = make_key(tmp_path / "keys", "ed", comment="alice@laptop")
    agent.add(ed)
    agent.add(make_key(tmp_path / "keys", "rsa", kind="rsa"))
    forms = ["ssh-agent:", f"ssh-agent:{ed.fingerprint}", "ssh-agent:?comment=alice@laptop",
             f"ssh-agent:{ed.fingerprint.replace('+', '%2B')}"]
    for index, uri in enumerate(forms):
        out = tmp_path / f"b{index}.rr"
        run = run_cli("capture", _step(tmp_path), "-o", out, "--key", uri, env=agent.env)
        assert run.returncode == 0, (uri, run.stderr)
        actual = tmp_path / "actual.json"
        step = sample_step()
        actual.write_text(json.dumps({"inputs": step["inputs"],
                                      "output": {"transcript": step["expected"]["transcript"]}}))
        check = run_cli("verify", out, actual, "--trusted-key", ed.pub_line,
                        env={"SSH_AUTH_SOCK": None})
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.json()["verified"] is True


def test_socket_parameter_replaces_ssh_auth_sock(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "ed"))
    run = run_cli("capture", _step(tmp_path), "-o", tmp_path / "b.rr",
                  "--key", f"ssh-agent:?socket={agent.socket}", env={"SSH_AUTH_SOCK": None})
    assert run.returncode == 0, run.stderr


def test_keys_list_shows_rsa_as_unusable(agent: OpenSshAgent, tmp_path: Path) -> None:
    ed = make_key(tmp_path / "keys", "ed")
    rsa = make_key(tmp_path / "keys", "rsa", kind="rsa")
    agent.add(ed)
    agent.add(rsa)
    run = run_cli("keys", "list", "ssh-agent:", env=agent.env)
    assert run.returncode == 0, run.stderr
    assert f"key:          ssh-agent:{ed.fingerprint}" in run.stdout
    assert f"ssh-agent:{rsa.fingerprint}" in run.stdout
    assert "unusable:     key type ssh-rsa" in run.stdout


def test_pubkey_matches_the_pub_file(agent: OpenSshAgent, tmp_path: Path) -> None:
    ed = make_key(tmp_path / "keys", "ed")
    agent.add(ed)
    run = run_cli("pubkey", "--format", "ssh", "ssh-agent:", env=agent.env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:2] == ed.pub_line.split()[:2]


def _fails(run_args: list[str], env: dict[str, str | None], needle: str) -> None:
    run = run_cli(*run_args, env=env)
    assert run.returncode == 3, run.stdout + run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert needle in run.stderr, run.stderr


def test_keygen_explains_ssh_keygen_and_ssh_add() -> None:
    _fails(["keygen", "ssh-agent:"], {}, "ssh-keygen -t ed25519")


def test_no_agent(tmp_path: Path) -> None:
    _fails(["pubkey", "ssh-agent:"], {"SSH_AUTH_SOCK": None}, "SSH_AUTH_SOCK is not set")


def test_dead_socket(agent: OpenSshAgent, tmp_path: Path) -> None:
    import signal

    agent.kill(signal.SIGKILL)  # the socket file stays behind, nobody listens
    assert agent.socket.exists()
    _fails(["pubkey", "ssh-agent:"], agent.env, "no SSH agent answers at")


def test_locked_agent(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "ed"))
    agent.lock()
    _fails(["pubkey", "ssh-agent:"], agent.env, "ssh-add -X")


def test_key_not_in_agent_names_ssh_add(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "ed"))
    home = tmp_path / "home"
    missing = make_key(home / ".ssh", "id_ed25519")
    _fails(["pubkey", f"ssh-agent:{missing.fingerprint}"], {**agent.env, "HOME": str(home)},
           f"add it with: ssh-add {missing.private}")


def test_only_rsa_keys(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "rsa", kind="rsa"))
    _fails(["pubkey", "ssh-agent:"], agent.env, "holds no Ed25519 key")


def test_several_ed25519_keys_are_listed_with_their_uris(
    agent: OpenSshAgent, tmp_path: Path
) -> None:
    one, two = make_key(tmp_path / "k", "one"), make_key(tmp_path / "k", "two")
    agent.add(one)
    agent.add(two)
    run = run_cli("pubkey", "ssh-agent:", env=agent.env)
    assert run.returncode == 3
    assert f"ssh-agent:{one.fingerprint}" in run.stderr
    assert f"ssh-agent:{two.fingerprint}" in run.stderr


def test_refused_confirmation(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "ed"), "-c")
    _fails(["capture", str(_step(tmp_path)), "-o", str(tmp_path / "b.rr"), "--key",
            "ssh-agent:"], agent.env, "needs confirmation (ssh-add -c)")
    assert agent.askpass_log.read_text().strip(), "the agent must have asked the askpass"
    assert not (tmp_path / "b.rr").exists()


def test_destination_restricted_key(agent: OpenSshAgent, tmp_path: Path) -> None:
    host = make_key(tmp_path / "host", "host_key")  # ssh-add -h needs the host's key
    known = tmp_path / "known_hosts"
    known.write_text("build.example.invalid " + host.pub_line + "\n")
    agent.add(make_key(tmp_path / "keys", "ed"), "-H", str(known), "-h", "build.example.invalid")
    _fails(["capture", str(_step(tmp_path)), "-o", str(tmp_path / "b.rr"), "--key",
            "ssh-agent:"], agent.env, "restricted to destinations (ssh-add -h)")


def test_oversized_bundle_names_size_and_limit(agent: OpenSshAgent, tmp_path: Path) -> None:
    from agent_rerun.embedding import encode_embedding

    agent.add(make_key(tmp_path / "keys", "ed"))
    step = sample_step(expected={"semantic_embedding": encode_embedding([0.5] * 75_000)},
                       tolerance={"level": "semantic", "threshold": 0.9})
    path = tmp_path / "big.json"
    path.write_text(json.dumps(step))
    _fails(["capture", str(path), "-o", str(tmp_path / "b.rr"), "--key", "ssh-agent:"],
           agent.env, "262,080 an OpenSSH agent accepts")


@pytest.mark.parametrize("uri, needle", [
    ("ssh-agent:?color=red", "unknown or malformed parameter"),
    ("ssh-agent:?comment=a&comment=b", "given twice"),
    ("ssh-agent:SHA256:short", "not a SHA256 fingerprint"),
    ("ssh-agent:?comment=%zz", "not a %XX escape"),
])
def test_bad_uris_are_refused(uri: str, needle: str) -> None:
    with pytest.raises(SignerError) as caught:
        parse_agent_uri(uri)
    assert needle in str(caught.value)


def test_plus_is_never_a_space() -> None:
    ref = parse_agent_uri("ssh-agent:?comment=a+b%20c&socket=/tmp/x+y")
    assert ref.comment == "a+b c" and ref.socket == "/tmp/x+y"


def _actual_for(step: dict[str, Any], tmp_path: Path) -> Path:
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps({"inputs": step["inputs"],
                                  "output": {"transcript": step["expected"]["transcript"]}}))
    return actual


def _trusted_line(public_key: bytes) -> str:
    return base64.b64encode(public_key).decode() + " signer"


def test_a_batch_uses_one_agent_connection(agent: OpenSshAgent, tmp_path: Path) -> None:
    agent.add(make_key(tmp_path / "keys", "ed"))
    proxy = CountingProxy(agent.socket, tmp_path / "proxy.sock")
    try:
        steps = []
        for index in range(5):
            path = tmp_path / f"step{index}.json"
            path.write_text(json.dumps(sample_step(expected={"transcript": {"n": index}})))
            steps.append(path)
        run = run_cli("capture", *steps, "-o", tmp_path / "out",
                      "--key", f"ssh-agent:?socket={proxy.path}", env={"SSH_AUTH_SOCK": None})
        assert run.returncode == 0, run.stderr
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            f"step{index}.rr" for index in range(5)]
        assert proxy.connections == 1
    finally:
        proxy.close()


@pytest.fixture
def gpg_agent() -> Iterator[GpgAgent]:
    agent = start_gpg_agent()
    try:
        yield agent
    finally:
        agent.stop()


def test_gpg_agent_signs_and_the_bundle_verifies(gpg_agent: GpgAgent, tmp_path: Path) -> None:
    step = sample_step()
    out = tmp_path / "b.rr"
    run = run_cli("capture", _step(tmp_path), "-o", out, "--key", "ssh-agent:",
                  env=gpg_agent.env)
    assert run.returncode == 0, run.stderr
    check = run_cli("verify", out, _actual_for(step, tmp_path),
                    "--trusted-key", _trusted_line(gpg_agent.public_key),
                    env={"SSH_AUTH_SOCK": None})
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.json()["signer"]["trusted"] is True


def test_gpg_agent_oversized_bundle_names_its_limit(gpg_agent: GpgAgent, tmp_path: Path) -> None:
    from agent_rerun.embedding import encode_embedding

    step = sample_step(expected={"semantic_embedding": encode_embedding([0.5] * 20_000)},
                       tolerance={"level": "semantic", "threshold": 0.9})
    path = tmp_path / "big.json"
    path.write_text(json.dumps(step))
    _fails(["capture", str(path), "-o", str(tmp_path / "b.rr"), "--key", "ssh-agent:"],
           {**gpg_agent.env}, "63,743 gpg-agent accepts")
    assert not (tmp_path / "b.rr").exists()


def test_forwarded_agent_signs_on_the_far_side(agent: OpenSshAgent, tmp_path: Path) -> None:
    near = make_key(tmp_path / "keys", "near", comment="near@laptop")
    agent.add(near)
    server = start_sshd(tmp_path / "sshd")
    try:
        step_path, out = _step(tmp_path), tmp_path / "far.rr"
        # sshd passes no environment through, so the far side is told its config here.
        remote = " ".join(shlex.quote(part) for part in [
            "env", f"RERUN_CONFIG={os.environ.get('RERUN_CONFIG', '')}", sys.executable, "-m",
            "agent_rerun", "capture", str(step_path), "-o", str(out), "--key", "ssh-agent:"])
        forwarded = (f'test -n "$SSH_AUTH_SOCK" && '
                     f'test "$SSH_AUTH_SOCK" != {shlex.quote(str(agent.socket))}')
        ran = subprocess.run(
            server.ssh_command(f"{forwarded} && cd {shlex.quote(os.getcwd())} && {remote}"),
            env=agent.env, capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr + server.log.read_text()
    finally:
        server.stop()
    check = run_cli("verify", out, _actual_for(sample_step(), tmp_path),
                    "--trusted-key", near.pub_line, env={"SSH_AUTH_SOCK": None})
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.json()["signer"]["trusted"] is True


def test_agent_benchmark_runs_end_to_end() -> None:
    """bench/sshagent_batch.py on a tiny workload: every row is printed (no timing asserted)."""
    from sshagent_support import require_tools

    require_tools("ssh-agent", "ssh-add", "ssh-keygen")
    script = Path(__file__).resolve().parent.parent / "bench" / "sshagent_batch.py"
    done = subprocess.run([sys.executable, str(script), "--steps", "5", "--rounds", "1", "--cli"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SSH_AUTH_SOCK": ""})
    assert done.returncode == 0, done.stderr
    for row in ("raw agent sign", "signer.sign + check", "library batch (capture)",
                "cli batch (rerun capture)"):
        assert row in done.stdout, done.stdout
