"""``vault:KEY?attr=value&...`` URIs: parse them, refuse secrets in them, print them safely.

A key URI ends up in shell history, CI logs and config files, so it may name
where a secret lives (``token-source=FILE``) but never hold one: a token,
secret id or JWT written into it is refused, and :func:`redact` hides the
value of anything it does not know to be harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit

from agent_rerun.errors import SignerError

SCHEME = "vault"
AUTH_METHODS = ("token", "approle", "jwt")

#: Attributes a URI may carry; none of them holds a secret.
ATTRIBUTES = (
    "addr", "mount", "version", "namespace", "ca", "auth", "auth-mount", "role", "role-id",
    "role-id-source", "token-source", "secret-id-source", "jwt-source",
)
#: Attributes that would put a secret into the URI itself.
SECRET_ATTRIBUTES = {
    "token": "token-source=FILE or $VAULT_TOKEN",
    "secret-id": "secret-id-source=FILE or $VAULT_SECRET_ID",
    "jwt": "jwt-source=FILE or $VAULT_JWT",
}
HIDDEN = "<not shown>"


@dataclass(frozen=True)
class VaultUri:
    """A parsed key URI; empty strings and None mean "not given" (defaults apply later)."""

    key: str = ""
    addrs: tuple[str, ...] = ()
    mount: str = ""
    version: int | None = None
    namespace: str = ""
    ca: str = ""
    auth: str = ""
    auth_mount: str = ""
    role: str = ""
    role_id: str = ""
    role_id_source: str = ""
    token_source: str = ""
    secret_id_source: str = ""
    jwt_source: str = ""

    def with_key(self, key: str, version: int | None = None) -> VaultUri:
        return replace(self, key=key, version=version)

    def format(self) -> str:
        """The URI text, attributes in a fixed order; it holds no secret by construction."""
        pairs = [
            ("addr", ",".join(self.addrs)), ("mount", self.mount),
            ("version", "" if self.version is None else str(self.version)),
            ("namespace", self.namespace), ("ca", self.ca), ("auth", self.auth),
            ("auth-mount", self.auth_mount), ("role", self.role), ("role-id", self.role_id),
            ("role-id-source", self.role_id_source),
            ("token-source", self.token_source), ("secret-id-source", self.secret_id_source),
            ("jwt-source", self.jwt_source),
        ]
        query = "&".join(f"{name}={quote(value, safe='/:,.@~-_')}"
                         for name, value in pairs if value)
        return f"{SCHEME}:{quote(self.key, safe='')}" + (f"?{query}" if query else "")


def parse(uri: str) -> VaultUri:
    """Parse ``vault:KEY?...``; the message of any error never repeats a value."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() != SCHEME:
        raise SignerError("a vault key URI starts with 'vault:' (vault:KEY?addr=...)")
    key_text, _, query = rest.partition("?")
    key = unquote(key_text)
    if key and not _is_name(key):
        raise SignerError("vault: the key name may only hold letters, digits, '-', '_' and '.'")
    values: dict[str, str] = {}
    for piece in query.split("&") if query else []:
        name, has_value, raw = piece.partition("=")
        name = unquote(name).lower()
        if name in SECRET_ATTRIBUTES:
            raise SignerError(
                f"vault: a secret ({name}=) must not be written into the key URI, where "
                f"shell history and logs keep it; use {SECRET_ATTRIBUTES[name]}")
        if name not in ATTRIBUTES:
            raise SignerError(f"vault: unknown URI attribute {name!r} "
                              f"(known: {', '.join(ATTRIBUTES)})")
        if name in values:
            raise SignerError(f"vault: URI attribute {name!r} is given twice")
        if not has_value or not raw:
            raise SignerError(f"vault: URI attribute {name!r} needs a value")
        values[name] = unquote(raw)
    return VaultUri(
        key=key,
        addrs=check_addresses(values.get("addr", ""), "addr="),
        mount=check_path(values.get("mount", ""), "mount="),
        version=_version(values.get("version")),
        namespace=check_path(values.get("namespace", ""), "namespace="),
        ca=values.get("ca", ""),
        auth=check_auth(values.get("auth", ""), "auth="),
        auth_mount=check_path(values.get("auth-mount", ""), "auth-mount="),
        role=values.get("role", ""),
        role_id=values.get("role-id", ""),
        role_id_source=values.get("role-id-source", ""),
        token_source=values.get("token-source", ""),
        secret_id_source=values.get("secret-id-source", ""),
        jwt_source=values.get("jwt-source", ""),
    )


def redact(uri: str) -> str:
    """``uri`` with every value that could be a secret hidden; never raises.

    Known harmless attributes keep their value (addresses lose any user info);
    anything else, including a secret written into the URI by mistake, shows
    only its name.
    """
    try:
        _, _, rest = uri.partition(":")
        key_text, has_query, query = rest.partition("?")
        key = key_text if _is_name(unquote(key_text)) or not key_text else HIDDEN
        shown = []
        for piece in query.split("&") if query else []:
            name, _, value = piece.partition("=")
            lowered = unquote(name).lower()
            if lowered not in ATTRIBUTES:
                label = lowered if lowered in SECRET_ATTRIBUTES or _is_name(lowered) else "?"
                shown.append(f"{label}={HIDDEN}")
            elif lowered == "addr":
                shown.append("addr=" + ",".join(_strip_userinfo(a) for a in
                                                unquote(value).split(",")))
            else:
                shown.append(f"{lowered}={value}")
        return f"{SCHEME}:{key}" + (("?" + "&".join(shown)) if has_query else "")
    except Exception:  # a redactor must never turn an error message into a crash
        return f"{SCHEME}:{HIDDEN}"


def _is_name(text: str) -> bool:
    """Letters, digits, ``-_.``; never ``.`` or ``..``, which would walk up the API path."""
    return (bool(text) and text.isascii() and all(c.isalnum() or c in "-_." for c in text)
            and set(text) != {"."})


def check_path(value: str, where: str) -> str:
    """A mount or namespace path: names joined by ``/`` (``where`` names the setting)."""
    value = value.strip("/")
    if value and not all(_is_name(part) for part in value.split("/")):
        raise SignerError(f"vault: {where} must be a path of names (letters, digits, -_.)")
    return value


def _version(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise SignerError("vault: version= must be a key version number (1, 2, ...)")
    return int(value)


def check_auth(value: str, where: str) -> str:
    if value and value not in AUTH_METHODS:
        raise SignerError(f"vault: {where} must be one of {', '.join(AUTH_METHODS)}")
    return value


def check_addresses(value: str, where: str) -> tuple[str, ...]:
    """Comma-separated node URLs, each checked by :func:`check_address`."""
    if not value:
        return ()
    return tuple(check_address(part.strip(), where) for part in value.split(","))


def check_address(address: str, where: str) -> str:
    """A node URL ``http(s)://host[:port][/]``: no user info, path, query or fragment."""
    try:
        parts = urlsplit(address)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SignerError(f"vault: {where} needs node URLs like https://host:8200, "
                          "comma-separated")
    if "@" in parts.netloc:
        raise SignerError(f"vault: {where} must not hold user info (a secret) in a node URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SignerError(f"vault: {where} node URLs carry no path or query")
    return f"{parts.scheme}://{parts.netloc}"


def _strip_userinfo(address: str) -> str:
    scheme, sep, rest = address.partition("://")
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = HIDDEN + "@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{tail}" if sep else (HIDDEN if "@" in address
                                                              else address)
