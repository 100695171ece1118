"""Benchmark: batch capture of 1,000 small steps through an SSH agent vs raw agent signing.

The target (issue #12) is that a batch capture through ``ssh-agent:`` reaches
at least 0.7x of the agent's raw signing rate, measured on the same agent,
key and connection kind in the same run. The script starts its own OpenSSH
``ssh-agent`` with a fresh Ed25519 key in a temporary folder; nothing is
asserted, it prints the rates and ratios.

    .venv/bin/python bench/sshagent_batch.py [--steps 1000] [--rounds 5] [--cli]

Rows:
  raw agent sign       SSH_AGENTC_SIGN_REQUEST of a bundle-sized payload on one
                       connection, nothing else (our standard-library client)
  signer.sign + check  the backend's sign() plus the software check capture makes
  library batch        load_signer once + capture() of every step (one connection)
  library batch+write  the same, writing each bundle atomically as the CLI does
  cli batch            `rerun capture STEP... -o DIR --key ssh-agent:` (with --cli)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pkcs11_batch import cli_runner, report_interleaved, small_step


def start_agent(work: Path) -> subprocess.Popen[bytes]:
    sock = work / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline:
            agent.kill()
            raise SystemExit("ssh-agent did not start")
        time.sleep(0.02)
    os.environ["SSH_AUTH_SOCK"] = str(sock)
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-add", "-q", str(key)], check=True)
    return agent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cli", action="store_true", help="also time the rerun CLI batch")
    args = parser.parse_args()
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        print("ssh-agent is not installed (apt-get install openssh-client)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="rerun-agent-bench-"))
    agent = start_agent(work)
    try:
        return measure(work, args.steps, args.rounds, args.cli)
    finally:
        agent.kill()
        agent.wait()
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, steps: int, rounds: int, cli: bool) -> int:
    from agent_rerun.atomic import write_atomic
    from agent_rerun.canonical import jcs_bytes
    from agent_rerun.capture import CaptureOptions, capture
    from agent_rerun.signature import signing_payload
    from agent_rerun.signer import closing_signer, load_signer
    from agent_rerun.sshagent.protocol import AgentConnection

    records = [small_step(i) for i in range(steps)]
    payload = signing_payload(capture(records[0]))
    uri = "ssh-agent:"
    with AgentConnection(os.environ["SSH_AUTH_SOCK"]) as probe:
        blob = probe.identities()[0].blob

    def raw() -> None:
        with AgentConnection(os.environ["SSH_AUTH_SOCK"]) as connection:
            for _ in range(steps):
                connection.sign(blob, payload)

    def signer_only() -> None:
        with closing_signer(load_signer(uri)) as signer:
            for _ in range(steps):
                signer.sign(payload)

    def library_batch() -> None:
        with closing_signer(load_signer(uri)) as signer:
            options = CaptureOptions(signer=signer)
            for record in records:
                capture(record, options)

    out = work / "bundles"
    out.mkdir()

    def library_batch_write() -> None:
        with closing_signer(load_signer(uri)) as signer:
            options = CaptureOptions(signer=signer)
            for i, record in enumerate(records):
                write_atomic(out / f"step{i}.rr", jcs_bytes(capture(record, options)))

    contenders: list[tuple[str, Callable[[], None]]] = [
        ("raw agent sign", raw),
        ("signer.sign + check", signer_only),
        ("library batch (capture)", library_batch),
        ("library batch + write", library_batch_write),
    ]
    if cli:
        contenders.append(("cli batch (rerun capture)", cli_runner(work, records, uri)))
    with open("/proc/loadavg") as load:
        print(f"payload {len(payload)} bytes, {steps} steps, best of {rounds} interleaved "
              f"rounds, OpenSSH ssh-agent, load average {load.read().split()[0]}")
    report_interleaved(contenders, steps, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
