"""Where to connect and how to log in: the URI, then the ``[vault]`` config section, then env.

Secrets are only ever read here, from a file or an environment variable the
user pointed at, at the moment a login needs them: a CI that refreshes its
OIDC token file or hands out single-use secret ids is read afresh each time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent_rerun.errors import SignerError
from agent_rerun_vault.uri import VaultUri, check_addresses, check_auth, check_path

DEFAULT_MOUNT = "transit"
DEFAULT_AUTH_MOUNTS = {"approle": "approle", "jwt": "jwt", "token": ""}
#: ``[vault]`` config keys: defaults for the URI attribute of the same name.
CONFIG_KEYS = ("addr", "mount", "namespace", "ca", "auth", "auth_mount", "role", "role_id",
               "role_id_source", "token_source", "secret_id_source", "jwt_source")
ENV_SOURCE = "env:"
#: ``[vault]`` keys naming files: relative paths are anchored at the config's folder.
PATH_KEYS = ("ca", "role_id_source", "token_source", "secret_id_source", "jwt_source")


@dataclass(frozen=True)
class Settings:
    """Everything needed to talk to the server for one URI, secrets excluded."""

    uri: VaultUri
    addrs: tuple[str, ...]
    mount: str
    namespace: str
    ca: str
    auth: str
    auth_mount: str
    role: str
    role_id: str
    role_id_source: str
    token_source: str
    secret_id_source: str
    jwt_source: str

    @property
    def verify(self) -> str | bool:
        """What requests wants: a CA bundle path, or True for the system store."""
        return self.ca or True


def resolve(uri: VaultUri, environ: Mapping[str, str] | None = None) -> Settings:
    """Fill what the URI leaves out from the config file's ``[vault]`` section and env.

    Every value is checked where it comes from, and errors name that place
    (``addr=``, ``FILE: [vault] addr``, ``$VAULT_ADDR``): the user must know
    which of the three to fix.
    """
    env = os.environ if environ is None else environ
    section = _config_defaults()
    given = _Given(uri, section)
    addrs = uri.addrs or section.addrs
    if not addrs:
        for name in ("VAULT_ADDR", "BAO_ADDR"):
            addrs = check_addresses(env.get(name, ""), f"${name}")
            if addrs:
                break
    if not addrs:
        raise SignerError("vault: no server address: add addr=https://host:8200 to the URI "
                          "or set $VAULT_ADDR (or $BAO_ADDR)")
    auth = uri.auth or section.values.get("auth", "") or "token"
    given.refuse_other_methods(auth)
    role_id, _ = given.get("role_id")
    role_id_source, _ = given.get("role_id_source")
    if auth == "approle" and not (role_id or role_id_source or env.get("VAULT_ROLE_ID")):
        raise SignerError("vault: auth=approle needs role-id=ID or role-id-source=FILE in the "
                          "URI, or $VAULT_ROLE_ID")
    role, _ = given.get("role")
    if auth == "jwt" and not role:
        raise SignerError("vault: auth=jwt needs role=NAME (the JWT auth role to log in as)")
    ca, ca_where = given.get("ca")
    if not ca and env.get("VAULT_CACERT"):
        ca, ca_where = env["VAULT_CACERT"], "$VAULT_CACERT"
    if ca and any(a.startswith("https:") for a in addrs) and not os.path.isfile(ca):
        raise SignerError(f"vault: {ca_where} names the CA bundle {ca}, which is not a "
                          "readable file; point it at the PEM file of the server's CA")
    return Settings(
        uri=uri,
        addrs=addrs,
        mount=given.get("mount")[0] or DEFAULT_MOUNT,
        namespace=given.get("namespace")[0] or env.get("VAULT_NAMESPACE", ""),
        ca=ca,
        auth=auth,
        auth_mount=given.get("auth_mount")[0] or DEFAULT_AUTH_MOUNTS[auth],
        role=role,
        role_id=role_id,
        role_id_source=role_id_source,
        token_source=given.get("token_source")[0],
        secret_id_source=given.get("secret_id_source")[0],
        jwt_source=given.get("jwt_source")[0],
    )


#: The settings each login method reads. One given for another method is refused:
#: ``secret-id-source=`` without ``auth=approle`` would otherwise sign silently with
#: whatever token ``$VAULT_TOKEN`` or ``~/.vault-token`` holds, as another identity.
METHOD_SETTINGS = {
    "token": ("token_source",),
    "approle": ("role_id", "role_id_source", "secret_id_source"),
    "jwt": ("role", "jwt_source"),
}


@dataclass(frozen=True)
class _Section:
    """The ``[vault]`` values, checked, and where each one is written (for messages)."""

    values: Mapping[str, str]
    wheres: Mapping[str, str]
    addrs: tuple[str, ...] = ()


class _Given:
    """A setting's value and where it was given: the URI first, then the config section."""

    def __init__(self, uri: VaultUri, section: _Section) -> None:
        self.uri = uri
        self.section = section

    def get(self, key: str) -> tuple[str, str]:
        value = getattr(self.uri, key)
        if value:
            return value, f"{key.replace('_', '-')}="
        return self.section.values.get(key, ""), self.section.wheres.get(key, "")

    def refuse_other_methods(self, auth: str) -> None:
        for method, keys in METHOD_SETTINGS.items():
            for key in keys:
                value, where = self.get(key)
                if method != auth and value:
                    raise SignerError(
                        f"vault: {where} is for auth={method}, but this key logs in with "
                        f"auth={auth}; set auth={method} or drop it")


def read_secret(source: str, what: str, *, env_defaults: tuple[str, ...] = (),
                file_default: Path | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """The secret at ``source`` (a file, or ``env:NAME``), else the defaults, in order.

    Messages name where the secret was looked for, never any part of it. A
    value that holds spaces, control or non-ASCII characters is no token,
    secret id or JWT (a wrong file, a pasted line): it is refused here, in
    words, rather than by the HTTP layer, which cannot put it in a header.
    """
    value, where = _locate(source, what, env_defaults, file_default,
                           os.environ if environ is None else environ)
    if not (value.isascii() and value.isprintable() and " " not in value):
        raise SignerError(f"vault: the {what} in {where} holds spaces, control or non-ASCII "
                          f"characters, which no {what} has; is it the right "
                          f"{'variable' if where.startswith('$') else 'file'}?")
    return value


def _locate(source: str, what: str, env_defaults: tuple[str, ...], file_default: Path | None,
            env: Mapping[str, str]) -> tuple[str, str]:
    """The secret and where it was found (``$NAME`` or a path)."""
    if source.startswith(ENV_SOURCE):
        name = source[len(ENV_SOURCE):]
        value = env.get(name, "").strip()
        if not value:
            raise SignerError(f"vault: the {what} variable ${name} is empty or not set")
        return value, f"${name}"
    if source:
        path = Path(source).expanduser()
        return _read_file(path, what), str(path)
    for name in env_defaults:
        value = env.get(name, "").strip()
        if value:
            return value, f"${name}"
    if file_default is not None and file_default.is_file():
        return _read_file(file_default, what), str(file_default)
    looked = ", ".join([f"${n}" for n in env_defaults]
                       + ([str(file_default)] if file_default else []))
    raise SignerError(f"vault: no {what} found (looked at {looked}); "
                      f"point {what.replace(' ', '-')}-source=FILE at one")


def _read_file(path: Path, what: str) -> str:
    """A secret from a file: bounded, and a FIFO nobody writes times out (docs/inputs.md)."""
    from agent_rerun.inputs import SECRET_LIMIT, read_input

    data = read_input(path, f"vault {what} file", limit=SECRET_LIMIT, error=SignerError)
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SignerError(f"vault: cannot read the {what} from {path}: not UTF-8 text") from None
    if not value:
        raise SignerError(f"vault: {path} holds no {what}")
    return value


def _config_defaults() -> _Section:
    """The ``[vault]`` section's values, each checked as its URI attribute is."""
    from agent_rerun.config import backend_section

    section = backend_section("vault")
    if section is None:
        return _Section({}, {})
    section.refuse_unknown(CONFIG_KEYS)
    values: dict[str, str] = {}
    wheres: dict[str, str] = {}
    for key in CONFIG_KEYS:
        text = section.string(key)
        if text is None:
            continue
        where = section.where(key)
        wheres[key] = where
        if key in ("mount", "namespace", "auth_mount"):
            text = check_path(text, where)
        elif key == "auth":
            text = check_auth(text, where)
        elif key in PATH_KEYS and not text.startswith(ENV_SOURCE):
            text = str(section.path(key))
        values[key] = text
    return _Section(values, wheres, check_addresses(values.get("addr", ""), section.where("addr")))
