"""The quickstart from the published package's page runs unchanged against our package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _quickstart(page: str) -> str:
    """The code block: from its first import to the line that prints the verdict."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("from agent_rerun import"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("print("))
    return "\n".join(lines[start:end + 1]) + "\n"


def test_seed_quickstart_prints_match(seed_page: Path, tmp_path: Path) -> None:
    code = _quickstart(seed_page.read_text(encoding="utf-8"))
    assert "capture(step, CaptureOptions(signing_key=kp.private_key))" in code
    script = tmp_path / "quickstart.py"
    script.write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "match\n"


def test_quickstart_notices_a_changed_transcript(seed_page: Path, tmp_path: Path) -> None:
    """The same script with the replay's transcript edited must not print ``match``."""
    code = _quickstart(seed_page.read_text(encoding="utf-8"))
    edited = code.replace('"output": {"transcript": step["expected"]["transcript"]}',
                          '"output": {"transcript": {"messages": []}}')
    assert edited != code
    script = tmp_path / "quickstart_edited.py"
    script.write_text(edited, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "TranscriptHashMismatch" in run.stdout
