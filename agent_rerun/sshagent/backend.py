"""The ``ssh-agent`` scheme: find the key in the agent, sign through it, explain refusals.

The agent protocol answers every refusal with the same bare FAILURE, so this
module works out the reason a user can act on: a listing that is empty (locked
or empty agent), a request too large for the agent, a key restricted to
destinations (it disappears once the connection is bound to a host), else a
declined confirmation. Every message is one line and names the agent's socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent_rerun.errors import SignerError
from agent_rerun.signer import KeyInfo, PromptFn, SignerBase
from agent_rerun.sshagent.protocol import (
    ED25519,
    OPENSSH_MAX_MESSAGE,
    WINDOWS_PIPE,
    AgentConnection,
    AgentProtocolError,
    AgentRefused,
    Identity,
    sign_request_body,
    ssh_string,
)
from agent_rerun.sshagent.uri import SCHEME, AgentKeyRef, parse_agent_uri

#: gpg-agent refuses sign requests whose data is longer than this (measured, 2.2.40).
GPG_AGENT_MAX_DATA = 63_743

_ADD_HINT = "ssh-add ~/.ssh/id_ed25519"


class AgentError(SignerError):
    """An agent could not be reached or would not sign; exit code 3 like every key error."""


class SshAgentSigner(SignerBase):
    """Signs through one agent connection, kept open so a batch costs one connect."""

    def __init__(self, connection: AgentConnection, identity: Identity, public_key: bytes,
                 uri: str) -> None:
        self._connection: AgentConnection | None = connection
        self._identity = identity
        self._public_key = public_key
        self.uri = uri

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        # No ``checks_signatures``: sign_bundle checks every agent signature in software.
        connection = self._connection
        if connection is None:
            raise AgentError("this ssh-agent signer was closed; load the key again")
        try:
            name, signature = connection.sign(self._identity.blob, data)
        except AgentRefused:
            raise _refusal(connection.path, self._identity, len(data), closed=False) from None
        except AgentProtocolError as exc:
            if exc.closed:
                raise _refusal(connection.path, self._identity, len(data), closed=True) from None
            raise AgentError(f"SSH agent at {connection.path}: {exc}") from None
        except OSError:  # a peer that drops an oversized request breaks the pipe mid-send
            raise _refusal(connection.path, self._identity, len(data), closed=True) from None
        if name != ED25519 or len(signature) != 64:
            raise AgentError(
                f"SSH agent at {connection.path} answered with a {name!r} signature of "
                f"{len(signature)} bytes, not an Ed25519 signature"
            )
        return signature

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __repr__(self) -> str:
        return f"SshAgentSigner({self.uri!r})"


class SshAgentBackend:
    """Entry point ``ssh-agent``: load and list keys an agent holds; never creates any."""

    scheme = SCHEME

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> SshAgentSigner:
        ref = parse_agent_uri(uri)
        connection = connect(ref)
        try:
            identity, public_key = _select(ref, connection)
        except BaseException:
            connection.close()
            raise
        return SshAgentSigner(connection, identity, public_key, ref.uri_for(identity.fingerprint))

    def generate(self, uri: str, *, force: bool = False, prompt: PromptFn | None = None) -> KeyInfo:
        parse_agent_uri(uri)
        raise AgentError(
            "an SSH agent only holds keys made elsewhere: create one with "
            "ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519, add it with "
            f"{_ADD_HINT}, then use ssh-agent: (rerun keys list ssh-agent: shows its URI)"
        )

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
        ref = parse_agent_uri(uri)
        with connect(ref) as connection:
            identities = _identities(connection)
        infos: list[KeyInfo] = []
        for identity in identities:
            if not _matches(ref, identity):
                continue
            public_key = identity.ed25519_public_key
            infos.append(KeyInfo(
                uri=ref.uri_for(identity.fingerprint),
                public_key=public_key or b"",
                description=f"{identity.key_type} {identity.fingerprint} {identity.comment}"
                .rstrip(),
                unusable="" if public_key else _unusable_reason(identity),
            ))
        return infos


def socket_path(ref: AgentKeyRef) -> str:
    """``socket=`` if given, else ``$SSH_AUTH_SOCK``, else (Windows only) OpenSSH's pipe."""
    if ref.socket is not None:
        return str(Path(ref.socket).expanduser())
    from_env = os.environ.get("SSH_AUTH_SOCK")
    if from_env:
        return from_env
    if os.name == "nt":
        return WINDOWS_PIPE
    raise AgentError(
        "no SSH agent: SSH_AUTH_SOCK is not set (start one with: eval \"$(ssh-agent -s)\" "
        f"&& {_ADD_HINT}; or name it with ssh-agent:?socket=PATH)"
    )


def connect(ref: AgentKeyRef) -> AgentConnection:
    """Open the agent named by ``ref``; a missing or dead socket is one line, exit 3."""
    path = socket_path(ref)
    origin = "socket=" if ref.socket is not None else (
        "SSH_AUTH_SOCK" if os.environ.get("SSH_AUTH_SOCK") else "default pipe")
    try:
        return AgentConnection(path)
    except AttributeError:  # no AF_UNIX (an old Windows Python): say so plainly
        raise AgentError(
            f"cannot reach the SSH agent at {path}: this Python has no UNIX sockets"
        ) from None
    except OSError as exc:
        raise AgentError(
            f"no SSH agent answers at {path} ({origin}): {exc.strerror or exc}; "
            "is the agent running? (eval \"$(ssh-agent -s)\")"
        ) from None


def _identities(connection: AgentConnection) -> list[Identity]:
    try:
        return connection.identities()
    except AgentRefused:
        raise AgentError(f"the SSH agent at {connection.path} refused to list its keys") from None
    except (AgentProtocolError, OSError) as exc:
        raise AgentError(f"SSH agent at {connection.path}: {exc}") from None


def _matches(ref: AgentKeyRef, identity: Identity) -> bool:
    if ref.fingerprint is not None and identity.fingerprint != ref.fingerprint:
        return False
    return ref.comment is None or identity.comment == ref.comment


def _select(ref: AgentKeyRef, connection: AgentConnection) -> tuple[Identity, bytes]:
    """The one usable key ``ref`` names, or an error that says what the agent holds."""
    identities = _identities(connection)
    where = f"the SSH agent at {connection.path}"
    if not identities:
        raise AgentError(
            f"{where} lists no keys: it is locked (unlock it with: ssh-add -X) "
            f"or holds none (add one with: {_ADD_HINT})"
        )
    chosen = [identity for identity in identities if _matches(ref, identity)]
    holds = "; ".join(_summary(identity) for identity in identities)
    if not chosen:
        wanted = " ".join(filter(None, [ref.fingerprint, ref.comment and f"comment={ref.comment}"]))
        raise AgentError(
            f"{where} does not hold key {wanted} (it holds: {holds}); "
            f"add it with: ssh-add {_key_file_for(ref.fingerprint)}"
        )
    usable = [(identity, key) for identity in chosen
              if (key := identity.ed25519_public_key) is not None]
    if not usable:
        if ref.fingerprint is not None or ref.comment is not None:
            identity = chosen[0]
            raise AgentError(
                f"{where}: key {identity.fingerprint} is {_unusable_reason(identity)}"
            )
        raise AgentError(
            f"{where} holds no Ed25519 key (it holds: {holds}); rerun.json v0.1 bundles "
            f"carry only ed25519 signatures: ssh-keygen -t ed25519 and {_ADD_HINT}"
        )
    if len(usable) > 1:
        choices = "; ".join(f"{ref.uri_for(identity.fingerprint)} ({identity.comment})"
                            for identity, _ in usable)
        raise AgentError(f"{where} holds {len(usable)} Ed25519 keys; choose one: {choices}")
    return usable[0]


def _summary(identity: Identity) -> str:
    return f"{identity.key_type} {identity.fingerprint} {identity.comment}".rstrip()


def _unusable_reason(identity: Identity) -> str:
    kind = identity.key_type
    if kind.startswith("sk-"):
        return (f"a FIDO security-key key ({kind}): its signatures cover more than the "
                "bundle, so they are not plain ed25519 signatures")
    if "-cert-" in kind:
        return f"an OpenSSH certificate ({kind}); sign with its plain ssh-ed25519 key"
    return (f"key type {kind}; rerun.json v0.1 bundles can only carry ed25519 signatures "
            "(ssh-keygen -t ed25519)")


def _key_file_for(fingerprint: str | None) -> str:
    """The private key file in ~/.ssh whose .pub matches, so the hint is a command to paste."""
    if fingerprint is None:
        return "~/.ssh/id_ed25519"
    import base64
    import binascii
    import hashlib

    folder = Path.home() / ".ssh"
    try:
        candidates = sorted(folder.glob("*.pub"))
    except OSError:
        candidates = []
    from agent_rerun.errors import InputError
    from agent_rerun.inputs import KEY_FILE_LIMIT, read_input

    for pub in candidates:
        try:
            # Bounded and FIFO-safe: a hint must never hang or fill the memory.
            data = read_input(pub, "public key file", limit=KEY_FILE_LIMIT)
            fields = data.decode("utf-8", errors="replace").split()
            blob = base64.b64decode(fields[1], validate=True)
        except (InputError, IndexError, binascii.Error):
            continue
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        if "SHA256:" + digest == fingerprint and pub.with_suffix("").exists():
            return str(pub.with_suffix(""))
    return "PATH-TO-ITS-PRIVATE-KEY"


def _refusal(path: str, identity: Identity, size: int, *, closed: bool) -> AgentError:
    """Why the agent said FAILURE (or hung up) to a sign request, as far as it can be known."""
    key = f"{identity.fingerprint} ({identity.comment})" if identity.comment else \
        identity.fingerprint
    message_size = len(sign_request_body(identity.blob, b"")) + 1 + size
    gpg = "gpg-agent" in Path(path).name or Path(path).name.startswith("S.gpg-agent")
    if message_size > OPENSSH_MAX_MESSAGE:
        limit = OPENSSH_MAX_MESSAGE - (message_size - size)
        return AgentError(
            f"the bundle's signed bytes are {size:,} bytes, more than the {limit:,} an "
            f"OpenSSH agent accepts (agent at {path}); sign it with a file or token key, "
            "or keep large embeddings out of the bundle"
        )
    if gpg and size > GPG_AGENT_MAX_DATA:
        return AgentError(
            f"the bundle's signed bytes are {size:,} bytes, more than the {GPG_AGENT_MAX_DATA:,} "
            f"gpg-agent accepts (agent at {path}); sign it with a file or token key"
        )
    if closed:
        return AgentError(f"the SSH agent at {path} hung up while signing with {key}")
    listed = _relist(path)
    if listed is not None and identity.blob not in {entry.blob for entry in listed}:
        if not listed:
            return AgentError(
                f"the SSH agent at {path} was locked or emptied while signing "
                "(unlock it with: ssh-add -X)"
            )
        return AgentError(f"key {key} was removed from the SSH agent at {path}; add it again "
                          "with ssh-add")
    if _restricted_to_destinations(path, identity.blob):
        return AgentError(
            f"the SSH agent at {path} will not sign with {key}: it was added restricted to "
            "destinations (ssh-add -h), which allows only SSH logins; add it without -h "
            "to sign bundles"
        )
    return AgentError(
        f"the SSH agent at {path} refused to sign with {key}: the key needs confirmation "
        "(ssh-add -c) and it was declined or no SSH_ASKPASS program could ask"
        + (", or the pinentry was cancelled" if gpg else "")
    )


def _relist(path: str) -> list[Identity] | None:
    try:
        with AgentConnection(path) as connection:
            return connection.identities()
    except (AgentRefused, AgentProtocolError, OSError):
        return None


def _restricted_to_destinations(path: str, blob: bytes) -> bool:
    """True when ``blob`` vanishes from the listing once a connection is bound to a host.

    OpenSSH hides destination-restricted keys (``ssh-add -h``) from a connection
    bound (``session-bind@openssh.com``) to a host they are not allowed for. A
    throwaway host key binds a fresh probe connection, so nothing is changed for
    any other connection; an agent without the extension simply answers False.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    host_key = Ed25519PrivateKey.generate()
    host_public = host_key.public_key().public_bytes_raw()
    host_blob = ssh_string(ED25519.encode()) + ssh_string(host_public)
    session_id = os.urandom(32)
    signature = ssh_string(ED25519.encode()) + ssh_string(host_key.sign(session_id))
    contents = (ssh_string(host_blob) + ssh_string(session_id) + ssh_string(signature)
                + b"\x00")
    try:
        with AgentConnection(path) as probe:
            if not probe.extension("session-bind@openssh.com", contents):
                return False
            bound = probe.identities()
    except (AgentRefused, AgentProtocolError, OSError):
        return False
    return blob not in {entry.blob for entry in bound}


#: The entry-point object (``agent_rerun.signers``: ``ssh-agent``).
backend = SshAgentBackend()
