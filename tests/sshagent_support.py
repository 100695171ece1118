"""Real SSH agents for the ssh-agent backend tests: OpenSSH's, started per test.

Imported as a sibling module (``from sshagent_support import ...``). Each agent
runs in the foreground (``ssh-agent -D``) as a child of the test, in its own
temporary folder, and is stopped by its pid afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conftest import require


def require_tools(*names: str) -> None:
    for name in names:
        require(shutil.which(name) is not None,
                f"{name} is not installed (./dev.sh test installs openssh-client, "
                "openssh-server and gnupg)")


def wait_for(path: Path, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not appear at {path}")
        time.sleep(0.02)


@dataclass
class SshKey:
    private: Path
    comment: str

    @property
    def pub(self) -> Path:
        return self.private.with_name(self.private.name + ".pub")

    @property
    def pub_line(self) -> str:
        return self.pub.read_text().strip()

    @property
    def fingerprint(self) -> str:
        out = subprocess.run(["ssh-keygen", "-lf", str(self.pub)], capture_output=True,
                             text=True, check=True).stdout
        return out.split()[1]


def make_key(folder: Path, name: str, kind: str = "ed25519", comment: str = "") -> SshKey:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", comment or name,
                    "-f", str(path)], check=True)
    return SshKey(path, comment or name)


@dataclass
class OpenSshAgent:
    """A running ``ssh-agent -D``; ``askpass_log`` records each confirmation it asked for."""

    socket: Path
    process: subprocess.Popen[bytes]
    askpass_log: Path
    env: dict[str, str] = field(default_factory=dict)

    def add(self, key: SshKey, *options: str) -> None:
        subprocess.run(["ssh-add", "-q", *options, str(key.private)], env=self.env,
                       check=True, capture_output=True, timeout=30)

    def ssh_add(self, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh-add", *args], env=self.env, input=input, text=True,
                              capture_output=True, timeout=30, check=False)

    def lock(self) -> None:
        """``ssh-add -x``: its password is read twice through an askpass that answers it."""
        answer = self.socket.parent / "lock-askpass"
        answer.write_text("#!/bin/sh\necho throwaway-lock-password\n")
        answer.chmod(0o755)
        env = {**self.env, "SSH_ASKPASS": str(answer), "SSH_ASKPASS_REQUIRE": "force"}
        subprocess.run(["ssh-add", "-x"], env=env, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=10)


def start_openssh_agent(folder: Path) -> OpenSshAgent:
    """An agent whose confirmations go to a real SSH_ASKPASS script that always refuses."""
    require_tools("ssh-agent", "ssh-add", "ssh-keygen")
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "askpass.log"
    askpass = folder / "refuse-askpass"
    askpass.write_text(f'#!/bin/sh\necho "$SSH_ASKPASS_PROMPT: $1" >> "{log}"\nexit 1\n')
    askpass.chmod(0o755)
    sock = folder / "agent.sock"
    agent_env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
                 "DISPLAY": ":0"}
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], env=agent_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(sock, "ssh-agent's socket")
    client_env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
    return OpenSshAgent(sock, process, log, client_env)


def agent_fixture(folder: Path) -> Iterator[OpenSshAgent]:
    agent = start_openssh_agent(folder)
    try:
        yield agent
    finally:
        agent.kill()
