"""CLI defaults from a TOML file: the signing key, trusted keys, and backends' own sections.

The file lives at ``$RERUN_CONFIG``, else in the user config folder
(``click.get_app_dir("agent-rerun")/config.toml``, e.g.
``~/.config/agent-rerun/config.toml``). Flags always win; the CLI merges.
Unknown sections and keys are errors, not ignored, because a misspelt
``trusted_keys`` would otherwise silently switch trust checks off.

Core owns ``[sign]`` and ``[verify]``. Any other section must be named after
the scheme of an installed signer backend (``[pkcs11]``); the core keeps it as
a :class:`BackendSection`, unread, and the backend checks and reads it (see
docs/backends.md). Telling a backend section from a typo needs the installed
schemes, so the entry points are listed (never imported) only when such a
section is present.

Relative paths in the file are taken relative to the file's folder (so a config
means the same thing from any working directory), and ``~`` is expanded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_rerun.configpath import APP_NAME as APP_NAME
from agent_rerun.configpath import CONFIG_ENV as CONFIG_ENV
from agent_rerun.configpath import config_file_to_read, default_config_location
from agent_rerun.errors import InputError, SignerError

if TYPE_CHECKING:
    from pathlib import Path


_SCHEMA: dict[str, dict[str, str]] = {
    "sign": {"key": "string"},
    "verify": {
        "trusted_keys": "list of strings",
        "trusted_keys_file": "string",
        "revoked_keys_file": "string",
        "require_signature": "boolean",
    },
}


#: Schemes whose backends have no settings, so a section for them is a mistake.
_NO_SECTION = ("file",)


@dataclass(frozen=True)
class BackendSection:
    """A backend's own ``[scheme]`` table, passed on unread: the backend checks it.

    The readers refuse what they cannot use with a ``SignerError`` (exit 3:
    a key cannot be loaded) naming the file and ``[scheme] key``; a backend
    calls :meth:`refuse_unknown` with the keys it knows first, because an
    ignored misspelt setting silently changes behaviour.
    """

    scheme: str
    table: Mapping[str, Any]
    source: Path

    def where(self, key: str | None = None) -> str:
        """``FILE: [scheme] key`` (or the section alone) for messages."""
        return f"{self.source}: [{self.scheme}]" + (f" {key}" if key else "")

    def refuse_unknown(self, known: Iterable[str]) -> None:
        known = tuple(known)
        for key in self.table:
            if key not in known:
                names = ", ".join(known) or "none"
                raise SignerError(f"{self.where()}: unknown key {key!r} (known: {names})")

    def string(self, key: str) -> str | None:
        """A non-empty string setting, or None when absent."""
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise SignerError(f"{self.where(key)} must be a non-empty string")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.table.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise SignerError(f"{self.where(key)} must be true or false")

    def path(self, key: str) -> Path | None:
        """A path setting, ``~`` expanded and relative paths anchored at the config's folder."""
        value = self.string(key)
        return None if value is None else _path(value, self.source.parent)


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
    #: Sections owned by signer backends, by scheme; see :func:`backend_section`.
    backend_sections: Mapping[str, BackendSection] = field(default_factory=dict)

    def backend_section(self, scheme: str) -> BackendSection | None:
        return self.backend_sections.get(scheme)


def default_config_path() -> Path:
    """Where the config is looked for when ``$RERUN_CONFIG`` is not set."""
    from pathlib import Path

    return Path(default_config_location())


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config file.

    ``path`` or ``$RERUN_CONFIG`` name a file that must exist (a typo must not
    silently drop trusted keys); the default location may be absent, giving an
    empty Config. ``$RERUN_CONFIG=""`` means no config file.
    """
    where = config_file_to_read(path)
    if where is None:
        return Config()
    # A config that exists but cannot be read (a dotfiles link into an unmounted
    # folder, a folder, no permission) is an error, never "no config": trust fails closed.
    from agent_rerun.inputs import LIST_LIMIT, read_input

    data = read_input(where, "config file", limit=LIST_LIMIT)
    from pathlib import Path

    return parse_config(data, Path(where))


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
        backend_sections={
            name: BackendSection(name, body, source)
            for name, body in doc.items()
            if name not in _SCHEMA
        },
    )


def backend_section(scheme: str) -> BackendSection | None:
    """The ``[scheme]`` section of the user's config file, for the backend of that scheme.

    Reads the file the CLI would (``$RERUN_CONFIG`` or the default location),
    so a backend's settings apply to library use as well; None when there is
    no such section or no config. A backend reads its section while a key is
    being loaded or made, so an unusable config file is a ``SignerError`` here
    (exit 3), as the CLI's ``[sign] key`` lookup makes it.
    """
    try:
        return load_config().backend_section(scheme)
    except InputError as exc:
        raise SignerError(str(exc)) from None


def _toml_module(source: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    else:  # an else, so that mypy skips this branch on 3.11+ where tomli may be absent
        try:
            import tomli
        except ImportError:
            raise InputError(
                f"{source}: reading config files needs Python 3.11+ or the tomli package "
                "(pip install tomli)"
            ) from None
        return tomli


def _check_shape(doc: dict[str, Any], source: Path) -> None:
    claimed: list[str] | None = None
    for section, body in doc.items():
        if not isinstance(body, dict):
            raise InputError(f"{source}: {section} must be a [{section}] table")
        fields = _SCHEMA.get(section)
        if fields is None:
            if claimed is None:
                from agent_rerun.signer import installed_schemes

                claimed = [s for s in installed_schemes() if s not in (*_SCHEMA, *_NO_SECTION)]
            if section in claimed:
                continue  # the backend of that scheme checks its own section
            known = ", ".join(f"[{name}]" for name in (*_SCHEMA, *claimed))
            raise InputError(
                f"{source}: unknown section [{section}] (known: {known}; a backend's "
                "section needs that backend installed)"
            )
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
    from agent_rerun.uri import file_location_path, is_file_url

    if uri_scheme(value) != "file" or is_file_url(value):
        return value
    prefix = "file:" if value[:5].lower() == "file:" else ""
    path = Path(file_location_path(value, "sign.key")).expanduser()
    if not path.is_absolute():
        path = base / path
    return f"{prefix}{path}"
