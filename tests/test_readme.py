"""README.md stays the front page: its library example type-checks, its links resolve.

The README's first ```python block is also ``tests/typing/readme_library.py`` (below its
docstring), which ``./dev.sh test`` runs through ``mypy --strict``; tests/test_recipes.py
runs the block itself. Together they keep the first example a newcomer copies both
correct at run time and clean for a type checker.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

from support import REPO

from agent_rerun.pubkey import ssh_public_key_line

TYPING_COPY = REPO / "tests" / "typing" / "readme_library.py"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FIRST_PYTHON = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAX_README_LINES = 250


def code_after_docstring(path: Path) -> str:
    """The file's text after its module docstring (and the blank line that follows it)."""
    text = path.read_text(encoding="utf-8")
    first = ast.parse(text).body[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant), path
    assert first.end_lineno is not None
    return "".join(text.splitlines(keepends=True)[first.end_lineno:]).lstrip("\n")


def test_the_typing_file_is_the_readme_library_example() -> None:
    match = FIRST_PYTHON.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no ```python block"
    assert code_after_docstring(TYPING_COPY) == match.group(1), (
        f"{TYPING_COPY.relative_to(REPO)} and README.md's first ```python block differ: "
        "copy the README example into it (below the docstring)")


def test_readme_is_a_front_page() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move topics to docs/"


def test_relative_links_resolve() -> None:
    """Every relative link in README.md and docs/*.md names a file or folder that exists."""
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


FENCED = re.compile(r"^(```+|~~~+)[ \t]*[\w+-]*[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
UNQUOTED_URI_WITH_SEMICOLON = re.compile(r"(?<![\"'\w=])pkcs11:[^\s\"']*;")


def test_pkcs11_uris_in_commands_are_quoted() -> None:
    """A ``;`` in an unquoted ``pkcs11:`` URI ends the shell command there, and the key is
    then picked by the first attribute alone: every command line shown quotes such URIs."""
    unquoted = []
    for page in PAGES:
        for block in FENCED.finditer(page.read_text(encoding="utf-8")):
            for line in block.group(2).splitlines():
                if "rerun " in line and UNQUOTED_URI_WITH_SEMICOLON.search(line):
                    unquoted.append(f"{page.relative_to(REPO)}: {line.strip()}")
    assert not unquoted, "quote these pkcs11: URIs:\n" + "\n".join(unquoted)


def test_no_shipped_doc_or_config_names_a_published_test_key() -> None:
    key_files = [REPO / "vectors" / "test-key.json",
                 REPO.parent / "shared" / "conformance" / "agent-rerun-v0.1" / "test-key.json"]
    key_files += [p for p in REPO.rglob("*.json") if ".venv" not in p.parts
                  and '"privateKey"' in p.read_text(errors="replace")]
    needles = set()
    for path in key_files:
        if path.is_file():
            raw = base64.b64decode(json.loads(path.read_text())["publicKey"])
            needles |= {base64.b64encode(raw).decode(), ssh_public_key_line(raw).split()[1]}
    assert needles
    shipped = [*REPO.glob("conf/*"), *REPO.glob("docs/*.md"), REPO / "README.md"]
    for doc in shipped:
        text = doc.read_text(errors="replace")
        for needle in needles:
            assert needle not in text, f"{doc} names a published test key"
