"""Where the config file is, found without importing click, pathlib or the config parser.

Every ``rerun verify`` asks, and when there is no file (the common case in CI)
the answer "none" should cost nothing; ``agent_rerun.config`` reads the file
when there is one.
"""

from __future__ import annotations

import os
import sys

#: Environment variable naming the config file; set to an empty string for none at all.
CONFIG_ENV = "RERUN_CONFIG"
APP_NAME = "agent-rerun"


def config_file_to_read(path: str | os.PathLike[str] | None = None) -> str | None:
    """The config file to read, or None when there is none to read.

    ``path`` or ``$RERUN_CONFIG`` name a file that must exist, so they are
    returned whether or not it does (reading it then fails, naming it: a typo
    must not silently drop trusted keys). The default location counts only when
    something is there. ``$RERUN_CONFIG=""`` means no config file.
    """
    if path is not None:
        return os.path.expanduser(path)
    if CONFIG_ENV in os.environ:
        named = os.environ[CONFIG_ENV]
        return os.path.expanduser(named) if named else None
    where = default_config_location()
    return where if os.path.lexists(where) else None


def default_config_location() -> str:
    """``agent_rerun.config.default_config_path()`` as text, without click or pathlib.

    Every ``rerun verify`` asks, and importing those two costs more than the
    rest of a small verify. Outside Windows this spells out what
    ``click.get_app_dir(APP_NAME)`` returns, then joins and normalises as
    ``pathlib`` does; tests/test_config.py compares the two.
    """
    if sys.platform == "win32":  # APPDATA and drive letters: leave those to click
        from pathlib import Path

        import click

        return str(Path(click.get_app_dir(APP_NAME)) / "config.toml")
    if sys.platform == "darwin":
        folder = os.path.join(os.path.expanduser("~/Library/Application Support"), APP_NAME)
    else:
        folder = os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")),
                              APP_NAME)
    return _as_pathlib_writes(folder + "/config.toml")


def _as_pathlib_writes(path: str) -> str:
    """A POSIX path as ``str(PurePosixPath(path))`` spells it: no empty or ``.``
    parts, a leading ``//`` kept (POSIX leaves its meaning to the system), ``.`` when empty."""
    root = "//" if path.startswith("//") and not path.startswith("///") else (
        "/" if path.startswith("/") else "")
    return root + "/".join(part for part in path.split("/") if part not in ("", ".")) or "."
