"""agent_rerun.cli.common: the progress bar both batch commands share, on a real terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samples import sample_actual, sample_step

from agent_rerun import CaptureOptions, capture, jcs_bytes
from agent_rerun.cli.common import printable

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")


def _run_with_terminal_stderr(args: list[str], *, stdout_terminal: bool = False) -> str:
    """Run ``rerun ARGS`` with stderr (and maybe stdout) on a pty; return what it showed."""
    leader, follower = pty.openpty()
    try:
        out = follower if stdout_terminal else subprocess.DEVNULL
        proc = subprocess.run([sys.executable, "-m", "agent_rerun", *args], stdout=out,
                              stderr=follower, stdin=subprocess.DEVNULL, timeout=120,
                              env={**os.environ, "COLUMNS": "80"})
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            shown += chunk
        assert proc.returncode in (0, 1)
        return shown.decode("utf-8", "replace")
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def _step(index: int) -> dict[str, Any]:
    return sample_step(sampling={"temperature": 0, "top_p": 1, "seed": index})


def _pairs(folder: Path, count: int) -> None:
    for index in range(count):
        step = _step(index)
        (folder / f"p{index}.rr").write_bytes(jcs_bytes(capture(step, CaptureOptions())))
        (folder / f"p{index}.actual.json").write_text(json.dumps(sample_actual(step)))


def test_batch_verify_shows_a_bar_only_when_stdout_is_not_the_terminal(tmp_path: Path) -> None:
    _pairs(tmp_path, 3)
    assert "verifying" in _run_with_terminal_stderr(["verify", "--batch", str(tmp_path)])
    shared = _run_with_terminal_stderr(["verify", "--batch", str(tmp_path)], stdout_terminal=True)
    assert "verifying" not in shared


def test_batch_capture_shows_a_bar_on_a_terminal(tmp_path: Path) -> None:
    steps = []
    for index in range(3):
        steps.append(tmp_path / f"s{index}.json")
        steps[-1].write_text(json.dumps(_step(index)))
    shown = _run_with_terminal_stderr(["capture", "--unsigned", "-o", str(tmp_path / "out"),
                                       *map(str, steps)])
    assert "capturing" in shown
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.rr", "s1.rr", "s2.rr"]


@pytest.mark.parametrize("command", [["inspect", "-"], ["capture", "-", "-o", "-"]])
def test_a_schema_error_on_stdin_names_stdin(command: list[str]) -> None:
    from click.testing import CliRunner

    from agent_rerun.cli import cli

    result = CliRunner().invoke(cli, command, input='{"rerun": "x"}', prog_name="rerun")
    assert result.exit_code == 1
    assert result.stderr.startswith("rerun: error: <stdin>: "), result.stderr


def test_printable_escapes_bidi_and_line_separators() -> None:
    for ch in ["\u202a", "\u202e", "\u2066", "\u2069", "\u2028", "\u2029"]:
        assert ch not in printable(f"a{ch}b")
