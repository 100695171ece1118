"""Outputs never destroy what they point at (issue 9, items 6-9; docs/outputs.md).

Real files, devices, FIFOs, sockets, a full tmpfs and real SIGKILLs. Device
nodes are made with mknod inside the test's own folder (the real /dev is never
written) and need root, as does mounting a tmpfs; CI runs as root, so those
tests skip on a developer machine only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import OUR_VECTORS, CliResult, require, run_cli

from agent_rerun import atomic
from agent_rerun.atomic import write_atomic

#: Our named temporaries' mark (spelled out: the tests must also run against old code).
TEMP_MARK = ".rerun-tmp-"
NULL_DEVICE = os.makedev(1, 3)  # what /dev/null is; made as a new node in tmp_path


def need_root(what: str) -> None:
    require(os.geteuid() == 0, f"needs root to {what}")


@pytest.fixture
def step(tmp_path: Path) -> Path:
    path = tmp_path / "step.json"
    path.write_text(json.dumps(SAMPLE_STEP))
    return path


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "test-key.json"
    path.parent.mkdir()
    path.write_bytes((OUR_VECTORS / "test-key.json").read_bytes())
    path.chmod(0o600)
    return path


@pytest.fixture
def expected_bundle(step: Path) -> bytes:
    run = run_cli("capture", step, "-o", "-", "--unsigned")
    assert run.returncode == 0, run.stderr
    return run.stdout_bytes


def assert_one_line_error(run: CliResult, code: int, *words: str) -> None:
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and "None" not in run.stderr, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


# ----------------------------------------------- item 6: outputs that are not files


def test_capture_to_a_character_device_keeps_the_device(tmp_path: Path, step: Path) -> None:
    need_root("make a device node")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, NULL_DEVICE)
    run = run_cli("capture", step, "-o", node, "--unsigned")
    assert run.returncode == 0, run.stderr
    info = node.lstat()
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == NULL_DEVICE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "step.json"]


def test_capture_to_a_fifo_feeds_its_reader(tmp_path: Path, step: Path,
                                            expected_bundle: bytes) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is waiting
    try:
        run = run_cli("capture", step, "-o", fifo, "--unsigned", timeout=30)
        assert run.returncode == 0, run.stderr
        received = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert received == expected_bundle
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("name", ["/dev/fd/1", "/proc/self/fd/1"])
def test_capture_to_a_descriptor_path_writes_that_descriptor(
    name: str, step: Path, expected_bundle: bytes
) -> None:
    # stdout is a socket here: reopening /proc/self/fd/1 would fail (ENXIO), and
    # renaming over it is what lost the bundle before. /dev/stdout takes the same
    # path in the code; it is not run here because the old code replaced /dev's link.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        done = subprocess.run([sys.executable, "-m", "agent_rerun", "capture", str(step),
                               "-o", name, "--unsigned"], stdout=theirs.fileno(),
                              stderr=subprocess.PIPE, timeout=60, check=False)
        theirs.close()
        assert done.returncode == 0, done.stderr
        received = b"".join(iter(lambda: ours.recv(1 << 16), b""))
    assert received == expected_bundle


def test_capture_to_a_unix_socket_sends_the_bundle(tmp_path: Path, step: Path,
                                                   expected_bundle: bytes) -> None:
    path = tmp_path / "s.sock"
    received: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(30)

        def accept() -> None:
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    received.append(b"".join(iter(lambda: conn.recv(1 << 16), b"")))

        thread = threading.Thread(target=accept)
        thread.start()
        run = run_cli("capture", step, "-o", path, "--unsigned", timeout=30)
        if run.returncode != 0:
            server.close()  # unblock accept()
        thread.join(35)
    assert run.returncode == 0, run.stderr
    assert received == [expected_bundle]
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_capture_refuses_a_block_device(tmp_path: Path, step: Path) -> None:
    need_root("make a device node")
    node = tmp_path / "disk"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))  # never opened
    run = run_cli("capture", step, "-o", node, "--unsigned")
    assert_one_line_error(run, 1, str(node), "block device")
    assert stat.S_ISBLK(node.lstat().st_mode)


def test_sign_through_a_symlink_signs_its_target(tmp_path: Path, step: Path,
                                                 key: Path) -> None:
    real = tmp_path / "real.rr"
    assert run_cli("capture", step, "-o", real, "--unsigned").returncode == 0
    link = tmp_path / "link.rr"
    link.symlink_to("real.rr")
    run = run_cli("sign", link, "--key", key)
    assert run.returncode == 0, run.stderr
    assert link.is_symlink() and os.readlink(link) == "real.rr"
    assert "signature" in json.loads(real.read_bytes())


def test_capture_refuses_a_dangling_symlink(tmp_path: Path, step: Path) -> None:
    link = tmp_path / "out.rr"
    link.symlink_to(tmp_path / "missing" / "out.rr")
    run = run_cli("capture", step, "-o", link, "--unsigned")
    assert_one_line_error(run, 1, str(link), "symbolic link to a missing file")
    assert link.is_symlink() and not (tmp_path / "missing").exists()


def test_resigning_keeps_the_bundle_mode(tmp_path: Path, step: Path, key: Path) -> None:
    bundle = tmp_path / "b.rr"
    assert run_cli("capture", step, "-o", bundle, "--unsigned").returncode == 0
    bundle.chmod(0o640)
    run = run_cli("sign", bundle, "--key", key)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o640
    assert "signature" in json.loads(bundle.read_bytes())


@pytest.mark.parametrize("command", ["sign", "capture"])
def test_empty_output_is_a_usage_error(tmp_path: Path, step: Path, key: Path,
                                       command: str) -> None:
    bundle = tmp_path / "b.rr"
    assert run_cli("capture", step, "-o", bundle, "--unsigned").returncode == 0
    before = bundle.read_bytes()
    args: list[str | os.PathLike[str]] = (
        ["sign", bundle, "--key", key] if command == "sign" else ["capture", step])
    run = run_cli(*args, "-o", "")
    assert run.returncode == 2, run.stderr
    assert "'-o'" in run.stderr
    assert bundle.read_bytes() == before  # sign used to overwrite its input


def test_keygen_force_through_a_symlink_replaces_the_target(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    assert run_cli("keygen", real).returncode == 0
    old = real.read_bytes()
    link = tmp_path / "link.pem"
    link.symlink_to("real.pem")
    run = run_cli("keygen", link, "--force")
    assert run.returncode == 0, run.stderr
    assert link.is_symlink() and real.read_bytes() != old
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_keygen_force_refuses_a_non_regular_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "key.pem"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        need_root("make a device node")
        os.mknod(path, stat.S_IFCHR | 0o666, NULL_DEVICE)
    run = run_cli("keygen", path, "--force", timeout=30)
    assert_one_line_error(run, 3, str(path), "not a regular file")
    info = path.lstat()
    assert stat.S_ISFIFO(info.st_mode) if kind == "fifo" else stat.S_ISCHR(info.st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


# ----------------------------------------------- item 7: no stray temporaries, ever

KILL_AT = """
import os, signal, sys
from agent_rerun.cli import main
real = getattr(os, {hook!r})
def kill_self(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(os, {hook!r}, kill_self)
sys.argv = ["rerun", *{args!r}]
main()
"""


def killed_at(hook: str, *args: str | os.PathLike[str]) -> int:
    """Run the CLI and SIGKILL it (a real kill -9) when it reaches ``os.<hook>``."""
    code = KILL_AT.format(hook=hook, args=[os.fspath(arg) for arg in args])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          check=False)
    return done.returncode


def test_keygen_killed_while_writing_leaves_no_key_behind(tmp_path: Path) -> None:
    assert killed_at("fsync", "keygen", tmp_path / "k.pem") == -9
    assert list(tmp_path.iterdir()) == []  # was: a complete private key in .k.pem.XXXX.tmp


def test_keygen_force_killed_while_writing_keeps_the_old_key_only(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    assert run_cli("keygen", path).returncode == 0
    before = path.read_bytes()
    assert killed_at("fsync", "keygen", path, "--force") == -9
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]
    assert path.read_bytes() == before


def test_temporary_left_by_a_kill_is_removed_by_the_next_run(tmp_path: Path,
                                                             step: Path) -> None:
    # Killed in the instant between naming the new key and renaming it into place.
    keys = tmp_path / "keys"
    keys.mkdir()
    path = keys / "k.pem"
    assert run_cli("keygen", path).returncode == 0
    assert killed_at("replace", "keygen", path, "--force") == -9
    left = [p for p in keys.iterdir() if p.name != "k.pem"]
    assert len(left) == 1 and TEMP_MARK in left[0].name
    run = run_cli("capture", step, "-o", keys / "b.rr", "--unsigned")
    assert run.returncode == 0, run.stderr
    assert f"rerun: warning: {left[0]}: removed a temporary file" in run.stderr
    assert sorted(p.name for p in keys.iterdir()) == ["b.rr", "k.pem"]


def test_a_live_writers_temporary_is_not_removed(tmp_path: Path) -> None:
    from agent_rerun.atomic import remove_stale_temporaries

    live = tmp_path / f".k.pem{TEMP_MARK}0123456789ab"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT, 0o600)
    child = subprocess.Popen([sys.executable, "-c",  # another process holds its lock
                              "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
                              "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); "
                              "sys.stdin.read()", str(live)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"\n"
        assert remove_stale_temporaries(tmp_path) == [] and live.exists()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
        os.close(fd)
    atomic._cleaned.discard(os.path.realpath(tmp_path))
    with pytest.warns(UserWarning, match="removed a temporary file"):
        assert remove_stale_temporaries(tmp_path) == [str(live)]
    assert not live.exists()


@pytest.fixture
def no_unnamed_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mock: a platform without O_TMPFILE, which this kernel cannot pretend to be."""
    monkeypatch.setattr(atomic, "_open_unnamed", lambda folder: None)


@pytest.mark.usefixtures("no_unnamed_files")
def test_without_unnamed_files_writes_still_leave_nothing(tmp_path: Path) -> None:
    target = tmp_path / "k.pem"
    write_atomic(target, b"one", mode=0o600, replace=False)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"two", mode=0o600, replace=False)
    write_atomic(target, b"three", mode=0o600)
    assert target.read_bytes() == b"three"
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_name_near_the_length_limit_can_be_replaced(tmp_path: Path, unnamed: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not unnamed:  # mock: a platform without O_TMPFILE
        monkeypatch.setattr(atomic, "_open_unnamed", lambda folder: None)
    target = tmp_path / ("b" * 250)
    write_atomic(target, b"one")
    write_atomic(target, b"two")  # the temporary's name must fit, too
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ----------------------------------------------- item 8: OS errors name the user's file


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs with an ``out`` folder and every byte taken by a filler file."""
    need_root("mount a tmpfs")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        (mount / "out").mkdir()
        with open(mount / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_batch_capture_on_a_full_disk_names_each_file(full_disk: Path, tmp_path: Path,
                                                      step: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(step.read_text())
    out = full_disk / "out"
    run = run_cli("capture", step, other, "-o", out, "--unsigned")
    assert_one_line_error(run, 1, f"rerun: error: {out / 'step.rr'}: No space left on device",
                          f"rerun: error: {out / 'other.rr'}: No space left on device")
    assert list(out.iterdir()) == []


def test_capture_and_keygen_on_a_full_disk_name_the_file(full_disk: Path,
                                                         step: Path) -> None:
    bundle = full_disk / "out" / "b.rr"
    run = run_cli("capture", step, "-o", bundle, "--unsigned")
    assert_one_line_error(run, 1, f"{bundle}: No space left on device")
    key_file = full_disk / "out" / "k.pem"
    run = run_cli("keygen", key_file)
    assert_one_line_error(run, 3, f"{key_file}: cannot write key file: No space left on device")
    assert list((full_disk / "out").iterdir()) == []


# ----------------------------------------------- item 9: a closed pipe ends quietly


@pytest.mark.parametrize("args", [
    ["verify", "{bundle}", "{actual}"],
    ["verify", "--batch", "{manifest}"],
    ["capture", "{step}", "-o", "-", "--unsigned"],
    ["inspect", "{bundle}"],
], ids=["verify", "verify-batch", "capture-stdout", "inspect"])
def test_closed_stdout_ends_quietly_with_sigpipe_status(tmp_path: Path, step: Path,
                                                        args: list[str]) -> None:
    bundle = tmp_path / "b.rr"
    assert run_cli("capture", step, "-o", bundle, "--unsigned").returncode == 0
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL))
    manifest = tmp_path / "pairs.txt"
    manifest.write_text("b.rr actual.json\n" * 50)
    names = {"bundle": bundle, "actual": actual, "manifest": manifest, "step": step}
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head -c1` does once it has its byte
    try:
        done = subprocess.run([sys.executable, "-m", "agent_rerun",
                               *(arg.format(**names) for arg in args)],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, b"")


@pytest.mark.parametrize("args", [
    ["verify", "{bundle}", "{actual}"],
    ["verify", "--batch", "{manifest}"],
    ["capture", "{step}", "-o", "-", "--unsigned"],
    ["inspect", "{bundle}"],
    ["pubkey", "{key}"],
], ids=["verify", "verify-batch", "capture-stdout", "inspect", "pubkey"])
def test_a_full_disk_behind_stdout_is_one_line_naming_stdout(tmp_path: Path, step: Path,
                                                             args: list[str]) -> None:
    """``> file`` on a full disk: /dev/full answers every write with ENOSPC, as a full disk does."""
    require(Path("/dev/full").exists(), "/dev/full is missing")
    bundle = tmp_path / "b.rr"
    assert run_cli("capture", step, "-o", bundle, "--unsigned").returncode == 0
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL))
    manifest = tmp_path / "pairs.txt"
    manifest.write_text("b.rr actual.json\n")
    key = tmp_path / "k.pem"
    assert run_cli("keygen", key).returncode == 0
    names = {"bundle": bundle, "actual": actual, "manifest": manifest, "step": step, "key": key}
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "agent_rerun",
                               *(arg.format(**names) for arg in args)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == "rerun: error: stdout: No space left on device"
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
