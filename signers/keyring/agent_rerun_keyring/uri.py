"""``keyring:NAME[?service=S]`` key URIs: parsing and the canonical spelling.

NAME and S are percent-decoded (UTF-8, ``+`` stays a plus) so that any entry
name can be written, including ones holding ``?``, ``&`` or ``%``; a stray
``%`` that is not a valid escape is an error rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from agent_rerun.errors import SignerError
from agent_rerun.uri import PercentDecodeError, percent_decode

SCHEME = "keyring"
DEFAULT_SERVICE = "agent-rerun"

# Characters left readable in the canonical spelling; everything else is escaped.
_NAME_SAFE = ":@/+,;=&!$'()*"
_SERVICE_SAFE = ":@/+,;!$'()*"


@dataclass(frozen=True)
class KeyringRef:
    """Where a key lives: the keyring's (service, username) pair is (service, name)."""

    name: str
    service: str = DEFAULT_SERVICE

    @property
    def uri(self) -> str:
        """The canonical URI; the default service is left out so URIs stay short."""
        text = f"{SCHEME}:{quote(self.name, safe=_NAME_SAFE)}"
        if self.service != DEFAULT_SERVICE:
            text += f"?service={quote(self.service, safe=_SERVICE_SAFE)}"
        return text

    def describe(self) -> str:
        """How messages name the entry, so a user can find it in Seahorse or Keychain Access."""
        return f"keyring entry {self.name!r} in service {self.service!r}"


def parse_keyring_uri(uri: str, *, name_required: bool = True) -> KeyringRef:
    """Split a ``keyring:`` URI; listing accepts an empty NAME (``keyring:?service=S``)."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != SCHEME:
        raise SignerError(f"not a keyring key URI (expected keyring:NAME): {uri!r}")
    raw_name, _, raw_query = rest.partition("?")
    if raw_name.startswith("//"):
        raise SignerError(f"write keyring:NAME, not keyring://NAME: {uri!r}")
    name = _decode(raw_name, "NAME", uri)
    service = DEFAULT_SERVICE
    seen: set[str] = set()
    for part in raw_query.split("&") if raw_query else []:
        key, eq, value = part.partition("=")
        if key != "service" or not eq:
            raise SignerError(
                f"unknown or malformed parameter {part!r} in {uri!r} (only service=S is known)"
            )
        if key in seen:
            raise SignerError(f"service is given twice in {uri!r}")
        seen.add(key)
        service = _decode(value, "service", uri)
        if not service:
            raise SignerError(f"service must not be empty in {uri!r}")
    if name_required and not name:
        raise SignerError(f"the keyring entry NAME is missing in {uri!r} (keyring:NAME)")
    return KeyringRef(name=name, service=service)


def _decode(raw: str, what: str, uri: str) -> str:
    try:
        return percent_decode(raw)
    except PercentDecodeError as exc:
        raise SignerError(f"{what} in {uri!r} {exc}") from None
