"""agent_rerun.atomic: a write is whole or absent, with the mode asked for, and never clobbers
when told not to."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent_rerun.atomic import write_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="modes and fchmod are POSIX")


def test_writes_the_bytes_with_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "out.rr"
    old = os.umask(0o077)
    try:
        write_atomic(target, b"one", mode=0o644)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.rr"]  # no temporary left


def test_replace_false_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"the old key")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"a new key", mode=0o600, replace=False)
    assert target.read_bytes() == b"the old key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]
    write_atomic(tmp_path / "fresh.pem", b"k", replace=False)
    assert (tmp_path / "fresh.pem").read_bytes() == b"k"


def test_a_missing_folder_is_an_error_naming_the_target(tmp_path: Path) -> None:
    target = tmp_path / "absent" / "out.rr"
    with pytest.raises(OSError) as exc:
        write_atomic(target, b"x")
    assert exc.value.filename == str(target)


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()  # a folder cannot be replaced by a file: the rename fails for real
    (target / "inside").write_text("kept")
    with pytest.raises(OSError) as exc:
        write_atomic(target, b"x")
    assert exc.value.filename == str(target)
    assert (target / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
