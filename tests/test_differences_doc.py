"""docs/differences.md shows exactly the one list of differences in tests/differences.py."""

from __future__ import annotations

from differences import DIFFERENCES
from support import REPO


def test_every_difference_is_documented_and_nothing_else() -> None:
    text = (REPO / "docs" / "differences.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    expected = [f"| `{d.key}` | {d.implementation} | {d.theirs} | {d.ours} | {d.why} |"
                for d in DIFFERENCES]
    assert rows == expected
