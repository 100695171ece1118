"""``write_outputs``: a batch's bundles made durable together, named in order.

The guarantee is write_atomic's: a name appears only once its bytes are
durable, and nothing partial, empty or temporary is ever left under a name.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agent_rerun import atomic
from agent_rerun.atomic import write_outputs


def test_a_group_writes_each_output_as_write_output_would(tmp_path: Path) -> None:
    kept = tmp_path / "kept.rr"
    kept.write_bytes(b"old")
    kept.chmod(0o600)
    real = tmp_path / "real.rr"
    real.write_bytes(b"old")
    (tmp_path / "link.rr").symlink_to(real)
    (tmp_path / "dir.rr").mkdir()
    (tmp_path / "dangling.rr").symlink_to(tmp_path / "nothing")
    items = [(str(tmp_path / "new.rr"), b"one"), (str(kept), b"two"),
             (str(tmp_path / "link.rr"), b"three"), (str(tmp_path / "dir.rr"), b"four"),
             ("/dev/null", b"five"), (str(tmp_path / "dangling.rr"), b"six")]
    results = write_outputs(items)
    assert results[:3] == [None, None, None] and results[4] is None
    assert isinstance(results[3], IsADirectoryError)
    assert isinstance(results[5], FileNotFoundError)
    assert results[3].filename == items[3][0] and results[5].filename == items[5][0]
    assert (tmp_path / "new.rr").read_bytes() == b"one"
    assert kept.read_bytes() == b"two" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert real.read_bytes() == b"three" and (tmp_path / "link.rr").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dangling.rr", "dir.rr", "kept.rr", "link.rr", "new.rr", "real.rr"]


@pytest.mark.parametrize("existing", [False, True], ids=["new files", "replaced files"])
def test_every_name_appears_after_its_own_fsync_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    """Spies (the real calls still run): the order of fsyncs and namings, small groups.
    A new file is named by one link, a replaced one by a rename over the old."""
    events: list[tuple[str, object]] = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd: int) -> None:
        inode = os.fstat(fd).st_ino
        real_fsync(fd)
        events.append(("fsync", inode))

    def replace(source: str, target: str) -> None:
        events.append(("name", os.stat(source).st_ino))
        real_replace(source, target)

    def link(source: str, target: str, **options: object) -> None:
        if atomic.TEMP_MARK not in target:  # a temporary name is not the name
            events.append(("name", os.stat(source).st_ino))
        real_link(source, target, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic.os, "link", link)
    monkeypatch.setattr(atomic, "GROUP_FILES", 4)
    items = [(str(tmp_path / f"b{i:02}.rr"), b"bundle %d" % i) for i in range(10)]
    if existing:
        for path, _ in items:
            Path(path).write_bytes(b"old")
    assert write_outputs(items) == [None] * 10
    synced = {inode for kind, inode in events if kind == "fsync"}
    named = [inode for kind, inode in events if kind == "name"]
    assert len(named) == 10
    for position, (kind, inode) in enumerate(events):
        if kind == "name":
            assert ("fsync", inode) in events[:position]  # durable before it has a name
    names = [Path(path) for path, _ in items]
    assert [p.stat().st_ino for p in names] == named  # named in the items' order
    assert synced >= set(named)
    assert [p.read_bytes() for p in names] == [data for _, data in items]


def test_a_file_that_cannot_be_made_durable_never_gets_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mock: an fsync failing with EIO for one file, which a healthy disk cannot do on demand."""
    real_fsync = os.fsync
    target = tmp_path / "b1.rr"

    def failing_fsync(fd: int) -> None:
        if os.fstat(fd).st_size == len(b"doomed"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    results = write_outputs([(str(tmp_path / "b0.rr"), b"fine"), (str(target), b"doomed"),
                             (str(tmp_path / "b2.rr"), b"also fine")])
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], OSError) and results[1].errno == errno.EIO
    assert results[1].filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b0.rr", "b2.rr"]  # no temporary


def test_a_sync_thread_that_dies_leaves_its_files_unnamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mock: fsync raising something other than OSError (no real disk does): the
    thread syncing that stripe dies, and none of the files it had not synced yet
    may get a name; the other stripes' files are written."""
    real_fsync = os.fsync
    monkeypatch.setattr(atomic, "_SYNC_THREADS", 2)
    monkeypatch.setattr(atomic, "_INSTANT_SYNC", 0.0)  # threads, whatever the file system

    def dying_fsync(fd: int) -> None:
        if os.fstat(fd).st_size == len(b"doomed"):
            raise RuntimeError("a bug in a sync thread")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", dying_fsync)
    # Item 0 is synced first, alone; then two threads: stripe 0 gets items 1, 3 and
    # stripe 1 gets items 2, 4, and dies at item 2.
    items = [(str(tmp_path / f"b{i}.rr"), b"doomed" if i == 2 else b"fine, %d" % i)
             for i in range(5)]
    results = write_outputs(items)
    assert [r is None for r in results] == [True, True, False, True, False]
    for failed in (results[2], results[4]):
        assert isinstance(failed, OSError) and failed.errno == errno.EIO
    assert results[4] is not None and results[4].filename == items[4][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b0.rr", "b1.rr", "b3.rr"]


def test_where_fsync_returns_at_once_the_files_are_synced_in_turn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tmpfs-like: no sync thread is used, and a failing fsync still keeps its file
    unnamed. (Mock: the instant threshold is raised so any disk counts as instant.)"""
    import threading

    real_fsync = os.fsync
    threads: set[str] = set()
    monkeypatch.setattr(atomic, "_INSTANT_SYNC", 1e9)

    def watched_fsync(fd: int) -> None:
        threads.add(threading.current_thread().name)
        if os.fstat(fd).st_size == len(b"doomed"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", watched_fsync)
    items = [(str(tmp_path / f"b{i}.rr"), b"doomed" if i == 3 else b"fine, %d" % i)
             for i in range(40)]
    results = write_outputs(items)
    assert [i for i, r in enumerate(results) if r is not None] == [3]
    assert threads == {threading.current_thread().name}
    assert not (tmp_path / "b3.rr").exists() and len(list(tmp_path.iterdir())) == 39


def test_a_target_that_appears_before_its_link_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file made by someone else between the look at the target and the link:
    the link fails rather than overwrites, and the replacing write renames over it."""
    target = tmp_path / "late.rr"
    real_link = os.link
    raced = []

    def link(source: str, name: str, **options: object) -> None:
        if not raced:
            raced.append(True)
            target.write_bytes(b"theirs")
        real_link(source, name, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "link", link)
    assert write_outputs([(str(target), b"ours")]) == [None]
    assert raced and target.read_bytes() == b"ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.rr"]


def test_an_interrupt_while_files_sync_waits_for_every_sync_to_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the sync threads work: the files are closed (and nothing named)
    only once every fsync has returned. Mock: a slow fsync and the interrupt, neither
    of which a test can get from a real disk on demand."""
    import concurrent.futures
    import threading
    import time

    real_fsync, real_wait = os.fsync, concurrent.futures.wait
    running = []
    lock = threading.Lock()

    def slow_fsync(fd: int) -> None:
        with lock:
            running.append(1)
        time.sleep(0.01)
        real_fsync(fd)
        with lock:
            running.pop()

    interrupts = [KeyboardInterrupt()]

    def interrupted_wait(*args: Any, **kwargs: Any) -> Any:
        if interrupts:
            raise interrupts.pop()
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(atomic, "_INSTANT_SYNC", 0.0)
    monkeypatch.setattr(atomic.os, "fsync", slow_fsync)
    monkeypatch.setattr(concurrent.futures, "wait", interrupted_wait)
    items = [(str(tmp_path / f"b{i}.rr"), b"bundle %d" % i) for i in range(40)]
    with pytest.raises(KeyboardInterrupt):
        write_outputs(items)
    assert running == []  # no fsync was still under way once the call gave up
    assert list(tmp_path.iterdir()) == []  # and nothing got a name
