"""Every shell recipe in README.md and docs/*.md runs when pasted into a fresh shell.

A newcomer copies recipes from the docs; a recipe that broke silently costs them
their first hour. So each page's ```sh blocks (and, in README.md, its ```python
blocks: the library tour) run in order in one ``bash -euo pipefail`` session, in an
empty temporary working folder with an empty temporary HOME and the venv's
``bin`` first on PATH, as after ``./dev.sh demo`` and ``. .venv/bin/activate``.

A page whose recipes need something the machine may lack says so in an HTML
comment, e.g. ``<!-- recipes-need: softhsm, secret-service, ssh-agent -->``:
``softhsm`` (softhsm2-util, its module and python-pkcs11), ``secret-service`` (the
session's unlocked Secret Service) or any other word, which names a command that
must be on PATH. Without it the page skips with the reason (fails under CI=true).
Blocks fenced as ``text``, ``console``, ``toml`` ... are never run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import REPO, require

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
TIMEOUT_SECONDS = 300
FENCE = re.compile(r"^(```+|~~~+)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
NEEDS = re.compile(r"<!--\s*recipes-need:\s*([^>]*?)\s*-->")


@dataclass(frozen=True)
class Block:
    """One runnable fenced block: its number among the page's runnable ones and its line."""

    number: int
    line: int
    language: str
    code: str


def runnable_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    languages = {"sh"} | ({"python"} if page.name == "README.md" else set())
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        if match.group(2) in languages:
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(len(blocks) + 1, line, match.group(2), match.group(3)))
    return blocks


def needs_of(page: Path) -> list[str]:
    found = NEEDS.findall(page.read_text(encoding="utf-8"))
    return [need.strip() for group in found for need in group.split(",") if need.strip()]


def missing(need: str) -> str | None:
    """Why ``need`` is not available here, or None."""
    if need == "softhsm":
        import pkcs11_fixtures

        return pkcs11_fixtures._missing()
    if need == "secret-service":
        try:
            import keyring_support
        except ImportError as exc:
            return f"keyring is not installed ({exc})"
        return keyring_support.secret_service_problem("agent-rerun-recipe-probe")
    # Looked up as the recipes will run it: with the venv's bin first on PATH.
    search = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return None if shutil.which(need, path=search) else f"{need} not found on PATH"


def script_for(blocks: list[Block], state: Path) -> str:
    """One bash script: before each block it records the block's number in ``state``."""
    parts = []
    for block in blocks:
        parts.append(f"printf '%s' {block.number} > '{state}'\n")
        if block.language == "python":
            parts.append(f"python - <<'RECIPE_PYTHON_EOF'\n{block.code}RECIPE_PYTHON_EOF\n")
        else:
            parts.append(block.code)
    parts.append(f"printf 'done' > '{state}'\n")
    return "".join(parts)


def fresh_shell_env(home: Path) -> dict[str, str]:
    """The caller's environment minus everything that would make the run not fresh."""
    dropped = ("RERUN_", "SOFTHSM2_", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "VIRTUAL_ENV",
               "PYTHONPATH", "PYTHON_KEYRING_BACKEND", "YUBIHSM_", "VAULT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(HOME=str(home), PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


@pytest.mark.parametrize("page", [p for p in PAGES if runnable_blocks(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_page_recipes_run(page: Path, tmp_path: Path) -> None:
    assert (VENV_BIN / "rerun").is_file(), f"no rerun beside {sys.executable}"
    for need in needs_of(page):
        problem = missing(need)
        require(problem is None, f"{page.name}: recipes need {need}: {problem}")
    blocks = runnable_blocks(page)
    home, work, state = tmp_path / "home", tmp_path / "work", tmp_path / "block"
    home.mkdir()
    work.mkdir()
    script = tmp_path / "recipes.sh"
    script.write_text(script_for(blocks, state), encoding="utf-8")
    try:
        run = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=work,
                             env=fresh_shell_env(home), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=TIMEOUT_SECONDS, check=False)
        output = run.stdout.decode("utf-8", "replace")
        status: int | str = run.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode("utf-8", "replace")
        status = f"timeout after {TIMEOUT_SECONDS} s"
    reached = state.read_text() if state.exists() else "1"
    if reached == "done" and status == 0:
        return
    where = "after the last block" if reached == "done" else None
    if where is None:
        block = blocks[int(reached) - 1]
        where = f"block {block.number} of {len(blocks)} ({block.language}, line {block.line})"
        shown = block.code
    else:
        shown = ""
    pytest.fail(f"{page.relative_to(REPO)}: recipe {where} failed (exit {status})\n"
                f"--- block ---\n{shown}--- output (last 60 lines) ---\n"
                + "\n".join(output.splitlines()[-60:]), pytrace=False)


def test_fences_are_found() -> None:
    """The extractor sees this repo's README tour; a regex slip must not pass as 'no recipes'."""
    blocks = runnable_blocks(REPO / "README.md")
    assert any(b.language == "sh" and "rerun keygen" in b.code for b in blocks)
    assert any(b.language == "python" for b in blocks)
