"""The pieces of key URIs every backend reads the same way: percent-escapes and ``file:`` paths.

Each backend parses its own URI grammar, but decoding a component or a local
file location must not differ between them: a name that works in a keyring URI
must mean the same in a pkcs11 or ssh-agent one. Decoding uses
``unquote_to_bytes`` — never ``unquote_plus``: fingerprints, PINs and paths hold
``+`` and it must stay a plus.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes, urlsplit

from agent_rerun.errors import SignerError

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PercentDecodeError(SignerError):
    """Why a URI component does not decode; callers prefix which component of which URI.

    ``escape`` is the offending ``%..`` text (empty when the problem is not one
    escape), for messages that may show it.
    """

    def __init__(self, reason: str, escape: str = "") -> None:
        super().__init__(reason)
        self.escape = escape


def percent_decode_bytes(raw: str) -> bytes:
    """The bytes a percent-encoded component stands for (other characters as UTF-8).

    A ``%`` that does not start a ``%XX`` escape is refused rather than guessed at.
    """
    bad = _BAD_ESCAPE.search(raw)
    if bad:
        raise PercentDecodeError("has a '%' that is not a %XX escape (write %25)",
                                 raw[bad.start():bad.start() + 3])
    try:
        return unquote_to_bytes(raw)
    except UnicodeEncodeError:  # a lone surrogate from an undecodable argv byte
        raise PercentDecodeError("does not decode as UTF-8") from None


def percent_decode(raw: str, *, controls: bool = False) -> str:
    """A percent-encoded component as UTF-8 text; control characters refused unless ``controls``.

    A control character in a name or path would forge lines in messages and logs.
    """
    try:
        value = percent_decode_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise PercentDecodeError("does not decode as UTF-8") from None
    if not controls and _CONTROL.search(value):
        raise PercentDecodeError("contains a control character")
    return value


def is_file_url(location: str) -> bool:
    """True for the RFC 8089 spelling ``file://[host]/path`` (absolute, percent-encoded)."""
    return location[:7].lower() == "file://"


def file_location_path(location: str, what: str) -> str:
    """The path text a plain path, ``file:PATH`` or ``file://[localhost]/PATH`` names.

    ``file:PATH`` is a prefixed path, taken literally (relative, ``~`` and ``%``
    included), so a pasted path works; ``file://`` is an RFC 8089 URI, so it is
    percent-decoded and must name this host. ``what`` names the setting in errors.
    ``~`` is left for the caller to expand.
    """
    if is_file_url(location):
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise SignerError(f"{what} {location!r} names host {parts.netloc!r}; "
                              "only local files can be used")
        return percent_decode(parts.path, controls=True)
    if location[:5].lower() == "file:":
        return location[5:]
    return location
