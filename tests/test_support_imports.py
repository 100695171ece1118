"""Test helpers come from ``support`` (or another helper module), never ``from conftest import``.

pytest imports conftest itself; importing it again by name can load a second
copy, and a newcomer looking for a helper should find it in a module named for it.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_module_imports_conftest() -> None:
    offenders = sorted(path.name for path in TESTS.rglob("*.py")
                       if re.search(r"^\s*(from conftest import|import conftest)",
                                    path.read_text(encoding="utf-8"), re.MULTILINE))
    assert offenders == [], "move these imports to 'from support import ...'"
