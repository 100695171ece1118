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
from agent_rerun_vault.uri import VaultUri, check_address

DEFAULT_MOUNT = "transit"
DEFAULT_AUTH_MOUNTS = {"approle": "approle", "jwt": "jwt", "token": ""}
#: ``[vault]`` config keys: defaults for the URI attribute of the same name.
CONFIG_KEYS = ("addr", "mount", "namespace", "ca", "auth", "auth_mount", "role", "role_id",
               "role_id_source", "token_source", "secret_id_source", "jwt_source")
ENV_SOURCE = "env:"


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
    """Fill what the URI leaves out from the config file's ``[vault]`` section and env."""
    env = os.environ if environ is None else environ
    section = _config_defaults()
    addr_text = (",".join(uri.addrs) or section.get("addr", "") or env.get("VAULT_ADDR", "")
                 or env.get("BAO_ADDR", ""))
    if not addr_text:
        raise SignerError("vault: no server address: add addr=https://host:8200 to the URI "
                          "or set $VAULT_ADDR (or $BAO_ADDR)")
    addrs = tuple(check_address(a.strip(), "addr") for a in addr_text.split(","))
    auth = uri.auth or section.get("auth", "") or "token"
    if auth not in DEFAULT_AUTH_MOUNTS:
        raise SignerError("vault: [vault] auth must be one of token, approle, jwt")
    role_id = uri.role_id or section.get("role_id", "")
    role_id_source = uri.role_id_source or section.get("role_id_source", "")
    if auth == "approle" and not (role_id or role_id_source or env.get("VAULT_ROLE_ID")):
        raise SignerError("vault: auth=approle needs role-id=ID or role-id-source=FILE in the "
                          "URI, or $VAULT_ROLE_ID")
    role = uri.role or section.get("role", "")
    if auth == "jwt" and not role:
        raise SignerError("vault: auth=jwt needs role=NAME (the JWT auth role to log in as)")
    return Settings(
        uri=uri,
        addrs=addrs,
        mount=uri.mount or section.get("mount", "") or DEFAULT_MOUNT,
        namespace=uri.namespace or section.get("namespace", "") or env.get("VAULT_NAMESPACE", ""),
        ca=uri.ca or section.get("ca", "") or env.get("VAULT_CACERT", ""),
        auth=auth,
        auth_mount=uri.auth_mount or section.get("auth_mount", "") or DEFAULT_AUTH_MOUNTS[auth],
        role=role,
        role_id=role_id,
        role_id_source=role_id_source,
        token_source=uri.token_source or section.get("token_source", ""),
        secret_id_source=uri.secret_id_source or section.get("secret_id_source", ""),
        jwt_source=uri.jwt_source or section.get("jwt_source", ""),
    )


def read_secret(source: str, what: str, *, env_defaults: tuple[str, ...] = (),
                file_default: Path | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """The secret at ``source`` (a file, or ``env:NAME``), else the defaults, in order.

    Messages name where the secret was looked for, never any part of it.
    """
    env = os.environ if environ is None else environ
    if source.startswith(ENV_SOURCE):
        name = source[len(ENV_SOURCE):]
        value = env.get(name, "").strip()
        if not value:
            raise SignerError(f"vault: the {what} variable ${name} is empty or not set")
        return value
    if source:
        return _read_file(Path(source).expanduser(), what)
    for name in env_defaults:
        value = env.get(name, "").strip()
        if value:
            return value
    if file_default is not None and file_default.is_file():
        return _read_file(file_default, what)
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


def _config_defaults() -> dict[str, str]:
    from agent_rerun.config import backend_section

    section = backend_section("vault")
    if section is None:
        return {}
    section.refuse_unknown(CONFIG_KEYS)
    values: dict[str, str] = {}
    for key in CONFIG_KEYS:
        path_like = key in ("ca", "role_id_source", "token_source", "secret_id_source",
                           "jwt_source")
        text = section.string(key)
        if text is None:
            continue
        if path_like and not text.startswith(ENV_SOURCE):
            values[key] = str(section.path(key))
        else:
            values[key] = text
    return values
