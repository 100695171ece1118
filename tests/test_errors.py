"""agent_rerun.errors: the typed exceptions and the one-line message helper."""

from __future__ import annotations

import pytest

from agent_rerun.errors import one_line


@pytest.mark.parametrize(("text", "expected"), [
    ("a\n  b\tc", "a b c"), ("  ", ""), (ValueError("first\nsecond"), "first second"),
    (ValueError(), "ValueError"), (KeyError(), "KeyError"),
])
def test_one_line(text: str | BaseException, expected: str) -> None:
    assert one_line(text) == expected
