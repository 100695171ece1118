"""docs/api.md, the list of what is stable, matches the code: every name exists, none is missing."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import agent_rerun

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_HEADING = re.compile(r"^## `([\w.]+)`")
_ITEM = re.compile(r"^- `(\w+)` — \S")


def _listed() -> dict[str, list[str]]:
    listed: dict[str, list[str]] = {}
    module = None
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            module = heading.group(1)
            listed[module] = []
        elif line.startswith("- "):
            item = _ITEM.match(line)
            assert item and module, f"docs/api.md: {line!r} is not '- `name` — what it is'"
            listed[module].append(item.group(1))
    return listed


def test_every_listed_name_exists() -> None:
    missing = [f"{module}.{name}" for module, names in _listed().items() for name in names
               if not hasattr(importlib.import_module(module), name)]
    assert missing == []


def test_everything_agent_rerun_exports_is_listed_once() -> None:
    names = _listed()["agent_rerun"]
    assert sorted(names) == sorted(agent_rerun.__all__)
