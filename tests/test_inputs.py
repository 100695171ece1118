"""agent_rerun.inputs: the bounded, non-hanging reader every input goes through (issue 9 item 11).

The CLI side (FIFOs, ``<(...)``, devices as each kind of input) is in test_inputs_cli.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent_rerun import inputs
from agent_rerun.errors import InputError, SignerError
from agent_rerun.inputs import TIMEOUT_ENV, read_input


def test_regular_files_are_read_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_input(path, "thing", limit=100) == b"x" * 100
    with pytest.raises(InputError, match=r"f: thing is larger than 99 bytes"):
        read_input(path, "thing", limit=99)
    with pytest.raises(SignerError, match="larger than"):
        read_input(path, "thing", limit=10, error=SignerError)


def test_folders_links_and_missing_files_name_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read thing: it is a folder"):
        read_input(tmp_path, "thing", limit=10)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(InputError, match=r"dangling symbolic link \(to .*gone\)"):
        read_input(link, "thing", limit=10)
    with pytest.raises(InputError, match="No such file"):
        read_input(tmp_path / "absent", "thing", limit=10)
    with pytest.raises(InputError, match="not a usable file path"):
        read_input("a\0b", "thing", limit=10)


def test_devices_are_bounded_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_input("/dev/null", "thing", limit=10) == b""
    with pytest.raises(InputError, match="/dev/zero: thing is larger than 64 KiB"):
        read_input("/dev/zero", "thing", limit=64 * 1024)


def test_the_idle_timeout_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert inputs.idle_timeout() == inputs.DEFAULT_IDLE_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "0.2")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"nothing was written to it for 0\.2 seconds"):
        read_input(fifo, "thing", limit=10)
    assert time.monotonic() - started < 5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(InputError, match=TIMEOUT_ENV):
            inputs.idle_timeout()
