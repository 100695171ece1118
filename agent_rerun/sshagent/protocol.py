"""The two agent-protocol exchanges signing needs, over one stream (UNIX socket or pipe).

draft-miller-ssh-agent: every message is ``uint32 length || byte type || body``;
strings are ``uint32 length || bytes``. Listing keys is REQUEST_IDENTITIES (11)
answered by IDENTITIES_ANSWER (12); signing is SIGN_REQUEST (13) answered by
SIGN_RESPONSE (14). Any request may be answered by FAILURE (5), which carries no
reason, so callers diagnose refusals themselves (see ``backend``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

from agent_rerun.errors import SignerError

SSH_AGENT_FAILURE = 5
SSH_AGENT_SUCCESS = 6
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENTC_EXTENSION = 27
SSH_AGENT_EXTENSION_FAILURE = 28

#: OpenSSH's ssh-agent drops any message whose body is longer than this (AGENT_MAX_LEN);
#: we refuse replies longer than it too, so a broken peer cannot make us allocate freely.
OPENSSH_MAX_MESSAGE = 256 * 1024

ED25519 = "ssh-ed25519"

#: OpenSSH for Windows' agent, used when SSH_AUTH_SOCK is unset on Windows.
WINDOWS_PIPE = r"\\.\pipe\openssh-ssh-agent"


class AgentProtocolError(SignerError):
    """The peer broke the protocol or the stream; ``closed`` when it hung up."""

    def __init__(self, message: str, *, closed: bool = False) -> None:
        super().__init__(message)
        self.closed = closed


class AgentRefused(SignerError):
    """The agent answered FAILURE: it will not do what was asked, and says no more."""


class _Stream(Protocol):
    def send_all(self, data: bytes) -> None: ...
    def receive(self, size: int) -> bytes: ...
    def close(self) -> None: ...


class _UnixStream:
    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError:
            self._sock.close()
            raise

    def send_all(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self, size: int) -> bytes:
        return self._sock.recv(size)

    def close(self) -> None:
        self._sock.close()


class _PipeStream:
    """A Windows named pipe opened as a file: the standard library's only way to reach it."""

    def __init__(self, path: str) -> None:
        self._pipe = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed in close()

    def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._pipe.write(view)
            view = view[written or 0:]

    def receive(self, size: int) -> bytes:
        return self._pipe.read(size) or b""

    def close(self) -> None:
        self._pipe.close()


@dataclass(frozen=True)
class Identity:
    """One key the agent holds: its wire blob, its comment, and what it is."""

    blob: bytes
    comment: str

    @property
    def key_type(self) -> str:
        """The blob's type name (``ssh-ed25519``, ``ssh-rsa``, ``…-cert-v01@openssh.com``)."""
        try:
            name, _ = _read_string(self.blob, 0)
        except AgentProtocolError:
            return "unknown"
        return name.decode("ascii", "replace")

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` exactly as ``ssh-add -l`` prints it, for every key type."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    @property
    def ed25519_public_key(self) -> bytes | None:
        """The raw 32-byte key when this is a plain ``ssh-ed25519`` key, else ``None``."""
        try:
            name, offset = _read_string(self.blob, 0)
            if name != ED25519.encode():
                return None
            key, offset = _read_string(self.blob, offset)
        except AgentProtocolError:
            return None
        return key if len(key) == 32 and offset == len(self.blob) else None


class AgentConnection:
    """One open connection to an agent; requests are answered in order on it."""

    def __init__(self, path: str) -> None:
        """Connect to ``path`` (UNIX socket; named pipe on Windows); OSError if nobody is there."""
        self.path = path
        self._stream: _Stream | None = (
            _PipeStream(path) if os.name == "nt" else _UnixStream(path)
        )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __enter__(self) -> AgentConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def identities(self) -> list[Identity]:
        """Every key the agent lists (a locked OpenSSH agent lists none)."""
        kind, body = self.request(SSH_AGENTC_REQUEST_IDENTITIES, b"")
        if kind != SSH_AGENT_IDENTITIES_ANSWER:
            raise AgentProtocolError(f"unexpected answer type {kind} to a key listing")
        (count,), offset = _read_uint32(body, 0), 4
        found: list[Identity] = []
        for _ in range(count):
            blob, offset = _read_string(body, offset)
            comment, offset = _read_string(body, offset)
            found.append(Identity(blob, comment.decode("utf-8", "replace")))
        return found

    def sign(self, blob: bytes, data: bytes) -> tuple[str, bytes]:
        """The agent's signature of ``data`` with key ``blob``: (format name, raw signature)."""
        kind, body = self.request(SSH_AGENTC_SIGN_REQUEST, sign_request_body(blob, data))
        if kind != SSH_AGENT_SIGN_RESPONSE:
            raise AgentProtocolError(f"unexpected answer type {kind} to a sign request")
        signature, _ = _read_string(body, 0)
        name, offset = _read_string(signature, 0)
        raw, _ = _read_string(signature, offset)
        return name.decode("ascii", "replace"), raw

    def extension(self, name: str, contents: bytes) -> bool:
        """Send an EXTENSION request; True when the agent answers SUCCESS."""
        try:
            kind, _ = self.request(SSH_AGENTC_EXTENSION, _string(name.encode()) + contents)
        except AgentRefused:
            return False
        return kind == SSH_AGENT_SUCCESS

    def request(self, kind: int, body: bytes) -> tuple[int, bytes]:
        """Send one message and read its answer; FAILURE becomes ``AgentRefused``."""
        if self._stream is None:
            raise AgentProtocolError("the agent connection was closed", closed=True)
        self._stream.send_all(struct.pack(">IB", len(body) + 1, kind) + body)
        (length,) = struct.unpack(">I", self._read_exactly(4))
        if length == 0 or length > OPENSSH_MAX_MESSAGE:
            raise AgentProtocolError(f"the agent sent a message of {length} bytes")
        message = self._read_exactly(length)
        if message[0] in (SSH_AGENT_FAILURE, SSH_AGENT_EXTENSION_FAILURE):
            raise AgentRefused()
        return message[0], message[1:]

    def _read_exactly(self, size: int) -> bytes:
        assert self._stream is not None
        chunks: list[bytes] = []
        while size:
            chunk = self._stream.receive(min(size, 65536))
            if not chunk:
                raise AgentProtocolError("the agent closed the connection", closed=True)
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def sign_request_body(blob: bytes, data: bytes) -> bytes:
    """SIGN_REQUEST's body: key blob, data, flags (none: Ed25519 has no variants)."""
    return _string(blob) + _string(data) + struct.pack(">I", 0)


def ssh_string(value: bytes) -> bytes:
    """The protocol's ``string``: a big-endian length and the bytes."""
    return _string(value)


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _read_uint32(data: bytes, offset: int) -> tuple[int]:
    if offset + 4 > len(data):
        raise AgentProtocolError("the agent's answer is truncated")
    return struct.unpack_from(">I", data, offset)


def _read_string(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = _read_uint32(data, offset)
    start = offset + 4
    if start + length > len(data):
        raise AgentProtocolError("the agent's answer is truncated")
    return data[start:start + length], start + length
