"""RFC 7512 ``pkcs11:`` URIs: parse, format, and keep the PIN out of every printout.

The URI is the only way users name a token key, so parsing is strict where a
mistake would select the wrong key (unknown path attributes, repeated
attributes, both ``pin-source`` and ``pin-value``) and percent-decoding follows
the RFC exactly: ``+`` stays ``+`` (a PIN or label with a plus sign must not
silently become a space, as form-decoding would do).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from agent_rerun.errors import SignerError
from agent_rerun.uri import PercentDecodeError, percent_decode, percent_decode_bytes

SCHEME = "pkcs11:"

#: Path attributes this backend understands, in the order it prints them.
TEXT_PATH_ATTRIBUTES = (
    "token",
    "manufacturer",
    "serial",
    "model",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
)
PATH_ATTRIBUTES = (*TEXT_PATH_ATTRIBUTES, "slot-id", "object", "id", "type")
QUERY_ATTRIBUTES = ("module-name", "module-path", "pin-source", "pin-value")
OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")

#: What a redacted ``pin-value`` looks like in messages and reprs.
REDACTED = "***"

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters RFC 7512 lets stand unencoded in each component (a safe subset).
_PATH_SAFE = _UNRESERVED | frozenset(":[]@!$'()*+,=")
_QUERY_SAFE = _UNRESERVED | frozenset(":[]/?|!$'()*+,=")
_PIN_VALUE = re.compile(r"(pin-value=)[^;&?#]*", re.IGNORECASE)


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI; ``str()`` and ``repr()`` never show ``pin-value``.

    Text attributes live in ``attrs`` (decoded UTF-8, keyed by RFC name);
    ``id`` is raw bytes because CKA_ID is binary; ``slot_id`` is an integer.
    """

    attrs: dict[str, str] = field(default_factory=dict)
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    slot_id: int | None = None
    module_name: str | None = None
    module_path: str | None = None
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)

    @property
    def token(self) -> str | None:
        return self.attrs.get("token")

    def format(self, *, pin: str = "redact") -> str:
        """Spell the URI; ``pin`` is ``"redact"`` (shows ``***``), ``"drop"`` or ``"keep"``.

        ``"keep"`` exists only so tests can build URIs; nothing user-facing uses it.
        """
        path: list[str] = []
        for name in TEXT_PATH_ATTRIBUTES:
            if name in self.attrs:
                path.append(f"{name}={_encode(self.attrs[name], _PATH_SAFE)}")
        if self.slot_id is not None:
            path.append(f"slot-id={self.slot_id}")
        if self.object is not None:
            path.append(f"object={_encode(self.object, _PATH_SAFE)}")
        if self.id is not None:
            path.append("id=" + "".join(f"%{b:02X}" for b in self.id))
        if self.type is not None:
            path.append(f"type={self.type}")
        query: list[str] = []
        for name, value in (
            ("module-name", self.module_name),
            ("module-path", self.module_path),
            ("pin-source", self.pin_source),
        ):
            if value is not None:
                query.append(f"{name}={_encode(value, _QUERY_SAFE)}")
        if self.pin_value is not None and pin != "drop":
            shown = _encode(self.pin_value, _QUERY_SAFE) if pin == "keep" else REDACTED
            query.append(f"pin-value={shown}")
        text = SCHEME + ";".join(path)
        return f"{text}?{'&'.join(query)}" if query else text

    def __str__(self) -> str:
        return self.format()

    def replace(self, **changes: Any) -> Pkcs11Uri:
        """A copy with some fields changed (dataclasses.replace, typed for callers)."""
        return dataclasses.replace(self, **changes)

    def key_uri(self) -> Pkcs11Uri:
        """The URI to print for users to paste: same lookup, no PIN value."""
        return self.replace(pin_value=None)


def parse(text: str) -> Pkcs11Uri:
    """Parse a ``pkcs11:`` URI or fail with a one-line SignerError that shows no PIN."""
    if not text[: len(SCHEME)].lower() == SCHEME:
        raise SignerError(f"not a pkcs11: URI: {_unparsed(text)}")
    body = text[len(SCHEME) :]
    path_part, _, query_part = body.partition("?")
    if "#" in query_part or "#" in path_part:
        raise SignerError("pkcs11 URI: a fragment ('#') is not allowed; percent-encode it as %23")

    fields: dict[str, object] = {}
    attrs: dict[str, str] = {}
    seen: set[str] = set()
    for name, raw in _pairs(path_part, ";", "path"):
        if name in seen:
            raise SignerError(f"pkcs11 URI: path attribute {name!r} appears twice")
        seen.add(name)
        if name in TEXT_PATH_ATTRIBUTES:
            attrs[name] = _decode_text(raw, name)
        elif name == "object":
            fields["object"] = _decode_text(raw, name)
        elif name == "id":
            fields["id"] = _decode_bytes(raw, name)
        elif name == "type":
            value = _decode_text(raw, name)
            if value not in OBJECT_TYPES:
                raise SignerError(
                    f"pkcs11 URI: type={value!r} is not one of {', '.join(OBJECT_TYPES)}"
                )
            fields["type"] = value
        elif name == "slot-id":
            value = _decode_text(raw, name)
            if not value.isdigit() or not value.isascii():
                raise SignerError(f"pkcs11 URI: slot-id must be a decimal number, not {value!r}")
            fields["slot_id"] = int(value)
        else:
            raise SignerError(
                f"pkcs11 URI: unsupported path attribute {name!r} "
                f"(supported: {', '.join(PATH_ATTRIBUTES)})"
            )

    if ";" in query_part:
        # RFC 7512 separates query attributes with '&'; taking ';' as part of a
        # value would put a PIN into a module path and then into messages.
        raise SignerError(
            "pkcs11 URI: malformed query: ';' after '?' (query attributes are "
            "separated by '&', e.g. ?module-path=...&pin-source=...)"
        )
    for name, raw in _pairs(query_part, "&", "query"):
        if name.startswith("x-"):
            continue  # vendor query attributes are hints another tool may use
        if name not in QUERY_ATTRIBUTES:
            raise SignerError(
                f"pkcs11 URI: unsupported query attribute {name!r} "
                f"(supported: {', '.join(QUERY_ATTRIBUTES)})"
            )
        key = name.replace("-", "_")
        if key in fields:
            raise SignerError(f"pkcs11 URI: query attribute {name!r} appears twice")
        fields[key] = _decode_text(raw, name)

    if "pin_source" in fields and "pin_value" in fields:
        raise SignerError(
            "pkcs11 URI: give either pin-source or pin-value, not both "
            "(pin-source=FILE is the safer one)"
        )
    if "module_path" in fields and "module_name" in fields:
        raise SignerError("pkcs11 URI: give either module-path or module-name, not both")
    return Pkcs11Uri(attrs=attrs, **fields)  # type: ignore[arg-type]


def redact(text: str) -> str:
    """``text`` fit to print: the parsed URI with ``pin-value`` shown as ``***``.

    Text that does not parse keeps only its path part, itself redacted: a
    malformed query may hold a PIN anywhere (``;pin-value=`` is an easy slip).
    """
    try:
        return parse(text).format(pin="redact")
    except SignerError:
        return _unparsed(text)


def _pairs(component: str, separator: str, where: str) -> list[tuple[str, str]]:
    pairs = []
    for item in component.split(separator):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq or not name:
            # A malformed query element may be a mistyped PIN: never echo it.
            shown = f" {_shown(item)!r}" if where == "path" else ""
            raise SignerError(f"pkcs11 URI: {where} element{shown} is not of the form name=value")
        pairs.append((name, value))
    return pairs


def _decode_bytes(raw: str, name: str) -> bytes:
    try:
        return percent_decode_bytes(raw)
    except PercentDecodeError as exc:
        raise _decode_error(exc, name) from None


def _decode_text(raw: str, name: str) -> str:
    # Control characters pass: RFC 7512 attributes may hold any byte, and a
    # pin-value must reach the token unchanged.
    try:
        return percent_decode(raw, controls=True)
    except PercentDecodeError as exc:
        raise _decode_error(exc, name) from None


def _decode_error(exc: PercentDecodeError, name: str) -> SignerError:
    """Our message for a component that does not decode; a pin-value's text is never shown."""
    if exc.escape:
        where = "" if name == "pin-value" else f" near {exc.escape!r}"
        return SignerError(f"pkcs11 URI: bad percent-encoding in {name}{where}")
    return SignerError(f"pkcs11 URI: {name} is not valid UTF-8 after percent-decoding")


def _encode(value: str, safe: frozenset[str]) -> str:
    return "".join(
        char if char in safe else "".join(f"%{b:02X}" for b in char.encode("utf-8"))
        for char in value
    )


def _unparsed(text: str) -> str:
    path, query_sep, _ = text.partition("?")
    return _shown(path) + (f"?{REDACTED}" if query_sep else "")


def _shown(text: str) -> str:
    """Hide every ``pin-value=`` value in text we could not parse."""
    return _PIN_VALUE.sub(f"\\1{REDACTED}", text)
