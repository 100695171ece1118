"""``ssh-agent:[SHA256:<fingerprint>][?comment=C&socket=PATH]`` key URIs.

The selector is a fingerprint exactly as ``ssh-add -l`` prints it, or nothing
(the agent's only Ed25519 key). Values are percent-decoded as UTF-8 by
``agent_rerun.uri.percent_decode``, as every key URI is: fingerprints and paths
hold ``+`` and it stays a plus. Unknown or repeated parameters are refused, not ignored.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import quote

from agent_rerun.errors import SignerError
from agent_rerun.uri import PercentDecodeError, percent_decode

SCHEME = "ssh-agent"

_PARAMETERS = ("comment", "socket")


@dataclass(frozen=True)
class AgentKeyRef:
    """Which agent, and which of its keys; ``None`` means "not narrowed by this"."""

    fingerprint: str | None = None
    comment: str | None = None
    socket: str | None = None

    def uri_for(self, fingerprint: str) -> str:
        """The URI naming one key by fingerprint, keeping an explicit ``socket=``."""
        text = f"{SCHEME}:{fingerprint}"
        if self.socket is not None:
            text += "?socket=" + quote(self.socket, safe="/:@+,=~")
        return text


def parse_agent_uri(uri: str) -> AgentKeyRef:
    """Split an ``ssh-agent:`` URI, or fail in one line naming the part that is wrong."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != SCHEME:
        raise SignerError(f"not an ssh-agent key URI (expected ssh-agent:[SHA256:...]): {uri!r}")
    if "#" in rest:
        raise SignerError(f"ssh-agent URI {uri!r}: a fragment ('#') is not allowed; write %23")
    selector, _, query = rest.partition("?")
    if selector.startswith("//"):
        raise SignerError(f"write ssh-agent:SHA256:..., not ssh-agent://...: {uri!r}")
    fingerprint = _fingerprint(_decode(selector, "fingerprint", uri), uri) if selector else None
    values: dict[str, str] = {}
    for part in query.split("&") if query else []:
        name, eq, raw = part.partition("=")
        if name not in _PARAMETERS or not eq:
            raise SignerError(
                f"ssh-agent URI {uri!r}: unknown or malformed parameter {part!r} "
                "(known: comment=C, socket=PATH)"
            )
        if name in values:
            raise SignerError(f"ssh-agent URI {uri!r}: {name} is given twice")
        value = _decode(raw, name, uri)
        if not value:
            raise SignerError(f"ssh-agent URI {uri!r}: {name} must not be empty")
        values[name] = value
    return AgentKeyRef(fingerprint, values.get("comment"), values.get("socket"))


def _fingerprint(text: str, uri: str) -> str:
    """Accept ``SHA256:`` + 43 base64 characters (a SHA-256), as ssh-add prints it."""
    head, sep, digest = text.partition(":")
    if not sep or head.upper() != "SHA256":
        raise SignerError(
            f"ssh-agent URI {uri!r}: the key is named by its SHA256:... fingerprint "
            "(ssh-add -l prints it)"
        )
    try:
        raw = base64.b64decode(digest + "=" * (-len(digest) % 4), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32 or "=" in digest:
        raise SignerError(
            f"ssh-agent URI {uri!r}: {text!r} is not a SHA256 fingerprint "
            "(43 base64 characters after SHA256:)"
        )
    return "SHA256:" + digest


def _decode(raw: str, what: str, uri: str) -> str:
    try:
        return percent_decode(raw)
    except PercentDecodeError as exc:
        raise SignerError(f"ssh-agent URI {uri!r}: {what} {exc}") from None
