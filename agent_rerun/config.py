"""CLI defaults from a TOML file: the signing key, trusted keys, the PKCS#11 module.

The file lives at ``$RERUN_CONFIG``, else in the user config folder
(``click.get_app_dir("agent-rerun")/config.toml``, e.g.
``~/.config/agent-rerun/config.toml``). Flags always win; the CLI merges.
Unknown sections and keys are errors, not ignored, because a misspelt
``trusted_keys`` would otherwise silently switch trust checks off.

Relative paths in the file are taken relative to the file's folder (so a config
means the same thing from any working directory), and ``~`` is expanded.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_rerun.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

#: Environment variable naming the config file; set to an empty string for none at all.
CONFIG_ENV = "RERUN_CONFIG"
APP_NAME = "agent-rerun"

_SCHEMA: dict[str, dict[str, str]] = {
    "sign": {"key": "string"},
    "verify": {
        "trusted_keys": "list of strings",
        "trusted_keys_file": "string",
        "revoked_keys_file": "string",
        "require_signature": "boolean",
    },
    "pkcs11": {"module": "string"},
}


@dataclass(frozen=True)
class Config:
    """Settings read from the config file; every field empty when there is none."""

    source: Path | None = None
    sign_key: str | None = None
    #: None when the config does not mention trusted keys; an empty tuple when it
    #: lists none, which still turns trust checking on (nobody is trusted).
    trusted_keys: tuple[str, ...] | None = None
    trusted_keys_file: Path | None = None
    #: Revocation lists (key lists or KRLs); they apply on top of any trust setting.
    revoked_keys_files: tuple[Path, ...] = ()
    require_signature: bool = False
    pkcs11_module: Path | None = None


def default_config_path() -> Path:
    """Where the config is looked for when ``$RERUN_CONFIG`` is not set."""
    from pathlib import Path

    import click

    return Path(click.get_app_dir(APP_NAME)) / "config.toml"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file.

    ``path`` or ``$RERUN_CONFIG`` name a file that must exist (a typo must not
    silently drop trusted keys); the default location may be absent, giving an
    empty Config. ``$RERUN_CONFIG=""`` means no config file.
    """
    # pathlib loads only once there is a file to read: every `rerun verify` asks.
    if path is not None:
        where, required = os.path.expanduser(path), True
    elif CONFIG_ENV in os.environ:
        named = os.environ[CONFIG_ENV]
        if not named:
            return Config()
        where, required = os.path.expanduser(named), True
    else:
        where, required = os.fspath(default_config_path()), False
    if not required and not os.path.lexists(where):
        return Config()
    _check_usable(where)
    try:
        with open(where, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"{where}: cannot read config file: {exc.strerror or exc}") from None
    from pathlib import Path

    return parse_config(data, Path(where))


def _check_usable(where: str) -> None:
    """A config that exists but cannot be read is an error, never "no config":
    a dotfiles link into an unmounted folder must not silently drop trust."""
    if os.path.islink(where) and not os.path.exists(where):
        raise InputError(f"{where}: cannot read config file: it is a dangling symbolic link "
                         f"(to {os.readlink(where)})")
    if os.path.isdir(where):
        raise InputError(f"{where}: cannot read config file: it is a folder")
    if os.path.exists(where) and not os.path.isfile(where):
        raise InputError(f"{where}: cannot read config file: it is not a regular file")


def parse_config(data: bytes, source: Path) -> Config:
    """Parse and check config bytes; ``source`` names the file in messages and anchors paths."""
    toml = _toml_module(source)
    try:
        doc = toml.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{source}: config file is not UTF-8 text") from None
    except toml.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML: {exc}") from None
    _check_shape(doc, source)
    sign = doc.get("sign", {})
    verify = doc.get("verify", {})
    pkcs11 = doc.get("pkcs11", {})
    base = source.parent
    trusted = tuple(verify["trusted_keys"]) if "trusted_keys" in verify else None
    if trusted is not None:
        _check_trusted_keys(trusted, source)
    return Config(
        source=source,
        sign_key=_key_uri(sign.get("key"), base),
        trusted_keys=trusted,
        trusted_keys_file=_path(verify.get("trusted_keys_file"), base),
        revoked_keys_files=tuple(
            path for path in [_path(verify.get("revoked_keys_file"), base)] if path is not None
        ),
        require_signature=verify.get("require_signature", False),
        pkcs11_module=_path(pkcs11.get("module"), base),
    )


def _toml_module(source: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(
            f"{source}: reading config files needs Python 3.11+ or the tomli package "
            "(pip install tomli)"
        ) from None
    return tomli


def _check_shape(doc: dict[str, Any], source: Path) -> None:
    for section, body in doc.items():
        fields = _SCHEMA.get(section)
        if fields is None:
            known = ", ".join(f"[{name}]" for name in _SCHEMA)
            raise InputError(f"{source}: unknown section [{section}] (known: {known})")
        if not isinstance(body, dict):
            raise InputError(f"{source}: {section} must be a [{section}] table")
        for key, value in body.items():
            kind = fields.get(key)
            if kind is None:
                known = ", ".join(fields)
                raise InputError(f"{source}: unknown key {section}.{key} (known: {known})")
            if not _is_kind(value, kind):
                raise InputError(f"{source}: {section}.{key} must be a {kind}")


def _is_kind(value: object, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str) and value != ""
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_trusted_keys(keys: tuple[str, ...], source: Path) -> None:
    """Fail at load time, naming the entry, rather than at the first verify."""
    from agent_rerun.trust import parse_trusted_key

    for index, text in enumerate(keys):
        try:
            parse_trusted_key(text)
        except InputError as exc:
            raise InputError(f"{source}: verify.trusted_keys[{index}]: {exc}") from None


def _path(value: str | None, base: Path) -> Path | None:
    from pathlib import Path

    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _key_uri(value: str | None, base: Path) -> str | None:
    """Anchor relative file-key paths at the config folder; other schemes pass through."""
    from pathlib import Path

    if value is None:
        return None
    from agent_rerun.signer import uri_scheme

    if uri_scheme(value) != "file" or value.startswith("file://"):
        return value
    prefix, raw = ("file:", value[5:]) if value[:5].lower() == "file:" else ("", value)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base / path
    return f"{prefix}{path}"
