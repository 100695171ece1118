"""Real SSH agents for the ssh-agent backend tests: OpenSSH's, started per test.

Imported as a sibling module (``from sshagent_support import ...``). Each agent
runs in the foreground (``ssh-agent -D``) as a child of the test, in its own
temporary folder, and is stopped by its pid afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import require


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


@dataclass
class GpgAgent:
    """A gpg-agent with ``enable-ssh-support`` serving one Ed25519 key without a passphrase."""

    home: Path
    socket: Path
    public_key: bytes
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, check=False,
                       capture_output=True, timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)


def start_gpg_agent() -> GpgAgent:
    """Make a key in a fresh GNUPGHOME, list it in sshcontrol, launch the agent.

    GNUPGHOME lives in a short folder under /tmp: the agent's socket path must
    fit a UNIX socket address (108 bytes), which pytest's tmp_path can exceed.
    The key gets the ``auth`` capability, which gpg-agent needs to offer it over SSH.
    """
    require_tools("gpg", "gpg-agent", "gpgconf")
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="rerun-gpg."))
    env = {**os.environ, "GNUPGHOME": str(home)}
    (home / "gpg-agent.conf").write_text("enable-ssh-support\n")

    def gpg(*args: str) -> str:
        return subprocess.run(["gpg", "--batch", "--quiet", *args], env=env, check=True,
                              capture_output=True, text=True, timeout=60).stdout

    try:
        gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
            "Alice Gpg <alice@gpg.invalid>", "ed25519", "auth", "never")
        listing = gpg("--with-keygrip", "--with-colons", "-K")
        grip = next(line.split(":")[9] for line in listing.splitlines()
                    if line.startswith("grp:"))
        (home / "sshcontrol").write_text(f"{grip} 0\n")
        subprocess.run(["gpgconf", "--launch", "gpg-agent"], env=env, check=True,
                       capture_output=True, timeout=30)
        socket = Path(subprocess.run(["gpgconf", "--list-dirs", "agent-ssh-socket"], env=env,
                                     check=True, capture_output=True, text=True,
                                     timeout=30).stdout.strip())
        wait_for(socket, "gpg-agent's ssh socket")
        env["SSH_AUTH_SOCK"] = str(socket)
        listed = subprocess.run(["ssh-add", "-L"], env=env, check=True, capture_output=True,
                                text=True, timeout=30).stdout.split()
    except BaseException:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False,
                       capture_output=True, timeout=30)
        shutil.rmtree(home, ignore_errors=True)
        raise
    import base64

    blob = base64.b64decode(listed[1])
    return GpgAgent(home, socket, blob[-32:], env)


@dataclass
class Sshd:
    """A real OpenSSH server on a loopback port that lets ``client_key`` in with ``ssh -A``."""

    port: int
    client_key: Path
    process: subprocess.Popen[bytes]
    log: Path

    def ssh_command(self, remote: str) -> list[str]:
        import getpass

        return ["ssh", "-A", "-p", str(self.port), "-i", str(self.client_key),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", f"{getpass.getuser()}@127.0.0.1", remote]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_sshd(folder: Path) -> Sshd:
    """sshd in the foreground with host key, authorized_keys and config all in ``folder``.

    Only 127.0.0.1 is listened on. As root, sshd needs its privilege-separation
    folder (/run/sshd), which a container may lack; it is created when missing.
    """
    require_tools("ssh", "ssh-keygen")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    require(Path(sshd).exists(), "sshd is not installed (./dev.sh test installs openssh-server)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    host = make_key(folder, "host_key")
    client = make_key(folder, "client_key")
    (folder / "authorized_keys").write_text(client.pub_line + "\n")
    port = _free_loopback_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host.private}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "AllowAgentForwarding yes", "",
    ]))
    log = folder / "sshd.log"
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    server = Sshd(port, client.private, process, log)
    deadline = time.monotonic() + 10
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"sshd did not start: {log.read_text()}") from None
            time.sleep(0.05)


class CountingProxy:
    """A UNIX-socket relay in front of a real agent that counts the connections it accepts.

    Not a mock: every byte goes to and from the real agent. It only makes visible
    how many times a client connected, which the agent itself does not report.
    """

    def __init__(self, target: Path, path: Path) -> None:
        import socket
        import threading

        self.target, self.path, self.connections = target, path, 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        import socket

        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self._listener.close()


def _pump(source: Any, sink: Any) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(2)
