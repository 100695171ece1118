"""Writing outputs without destroying what they point at (see docs/outputs.md).

A regular file is replaced atomically: a reader sees the old file or the
complete new one, never a part. The new content goes into an unnamed file in
the destination folder (``O_TMPFILE``), is flushed to disk, and only then gets
a name, so a kill at any moment leaves nothing behind, not even a complete
private key nobody knows about. Where the platform or file system has no
unnamed files, a named temporary ``.NAME.rerun-tmp-XXXXXXXXXXXX`` is used; each
is locked while its writer lives, and the next write into that folder removes
the ones whose writer died, with a warning.

Anything else a user can name as an output keeps its type: character devices,
FIFOs and sockets (``/dev/null``, ``/dev/stdout``, ``/dev/fd/N``, a named pipe)
are written to directly, since renaming over them would replace the device or
pipe with a regular file. A symbolic link means its target: the target is
written (atomically, when it is a regular file) and the link stays; a link to
nothing is refused, as ``cp`` refuses to write through a dangling link.

Every ``OSError`` raised here carries the path the caller asked for, never a
temporary name and never ``None``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

if sys.platform != "win32":
    import fcntl
if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

#: Marks our named temporaries; only names matching :data:`_TEMP_NAME` are ever removed.
TEMP_MARK = ".rerun-tmp-"
_TEMP_NAME = re.compile(r"\..+" + re.escape(TEMP_MARK) + r"[0-9a-f]{12}\Z", re.DOTALL)

#: ``/dev/stdout`` and friends name a file descriptor this process already holds.
_FD_PATH = re.compile(r"/(?:dev/fd|proc/self/fd)/(\d+)\Z")
_STD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}

#: Folders already cleaned of stale temporaries by this process (once is enough).
_cleaned: set[str] = set()
#: The real path of each folder written to, by absolute path as given.
_real_folders: dict[str, str] = {}
#: Whether /proc/self/fd exists (to link unnamed files into place), once looked at.
_proc_fd: bool | None = None


def write_output(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Write a bundle (or any public output) to ``path``, keeping what ``path`` is.

    A new or regular file is written atomically with :func:`write_atomic`; an
    existing file keeps its permission bits (``mode`` is for new files). A
    character device, FIFO, socket or ``/dev/fd/N`` is written to directly. A
    folder or block device is refused: writing a bundle over a disk is never
    what was meant.
    """
    shown = os.fspath(path)
    fd = _named_fd(shown)
    if fd is not None:
        _write_all_fd(fd, data, shown)
        return
    target, info = _resolve(shown)
    if info is None or stat.S_ISREG(info.st_mode):
        _write_regular(target, info, data, mode=mode, replace=True, keep_mode=True, shown=shown)
    elif stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        _write_stream(target, data, shown)
    elif stat.S_ISSOCK(info.st_mode):
        _write_socket(target, data, shown)
    elif stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    else:
        raise OSError(errno.EINVAL, f"is a {_kind(info.st_mode)}; not writing to it", shown)


#: At most this many new files are held open (unnamed) by one group of
#: :func:`write_outputs`; a quarter of a low open-file limit, if lower.
GROUP_FILES = 256
#: fsyncs in flight at once: a journaling file system commits concurrent ones together.
_SYNC_THREADS = 16
#: An fsync that returns sooner than this (seconds) wrote nothing to a device.
_INSTANT_SYNC = 20e-6


def write_outputs(items: Sequence[tuple[str, bytes]], *,
                  mode: int = 0o644) -> list[OSError | None]:
    """:func:`write_output` of many outputs, made durable together; for each item, in
    order, the ``OSError`` it met (carrying its path) or None when it was written.

    Each regular file is written in full into an unnamed file, as
    :func:`write_atomic` does; then the unnamed files of a group are fsynced
    concurrently (ext4 commits concurrent fsyncs in one journal transaction:
    one fsync after another cost 0.8 ms each on this machine's disk, sixteen at
    a time 0.1 ms), and only after its own fsync has returned is a file given
    its name, in the items' order; each folder is fsynced once per group. So,
    as for ``write_atomic``, a name appears only once its bytes are durable, and
    a crash never leaves a partial or empty file under a final name: at worst
    it loses names of the last group that were not yet durable, as a crash
    just before ``write_atomic``'s folder fsync would. Outputs that are not
    regular files (devices, FIFOs, sockets) are written directly, in their turn.
    """
    results: list[OSError | None] = [None] * len(items)
    size = max(1, min(GROUP_FILES, _open_file_limit() // 4))
    for start in range(0, len(items), size):
        group = items[start:start + size]
        results[start:start + len(group)] = _write_group(group, mode)
    return results


def _write_group(items: Sequence[tuple[str, bytes]], mode: int) -> list[OSError | None]:
    results: list[OSError | None] = [None] * len(items)
    pending: dict[int, _Unnamed] = {}
    #: Each folder named into, opened once for all its links and its fsync.
    folders: dict[str, int | None] = {}
    try:
        for index, (path, data) in enumerate(items):  # write each, unnamed
            shown = os.fspath(path)
            try:
                if _named_fd(shown) is not None:
                    continue  # written directly, in its turn
                target, info = _resolve(shown)
                if info is not None and not stat.S_ISREG(info.st_mode):
                    continue  # a device, FIFO, socket or folder: write_output decides
                folder, name = os.path.split(target)
                folder = folder or "."
                new_mode = stat.S_IMODE(info.st_mode) if info is not None else mode
                remove_stale_temporaries(folder)
                pending[index] = _Unnamed.write(folder, name, target, data, new_mode, True,
                                                existed=info is not None)
            except OSError as exc:
                results[index] = _named_error(exc, shown)
        for index, error in _fsync_all(pending).items():  # make them durable
            pending.pop(index).abandon()
            results[index] = _named_error(error, os.fspath(items[index][0]))
        for index, (path, data) in enumerate(items):  # name them, in order
            if results[index] is not None:
                continue
            try:
                unnamed = pending.pop(index, None)
                if unnamed is None:
                    write_output(path, data, mode=mode)
                else:
                    if unnamed.folder not in folders:
                        folders[unnamed.folder] = _open_folder(unnamed.folder)
                    unnamed.name_it(folders[unnamed.folder])
            except OSError as exc:
                results[index] = _named_error(exc, os.fspath(path))
        for folder, folder_fd in folders.items():
            _fsync_dir(folder, folder_fd)
    finally:
        for unnamed in pending.values():  # an exception midway: leave nothing behind
            unnamed.abandon()
        for folder_fd in folders.values():
            if folder_fd is not None:
                os.close(folder_fd)
    return results


def _fsync_all(pending: dict[int, _Unnamed]) -> dict[int, OSError]:
    """fsync every pending file, ``_SYNC_THREADS`` at a time; the errors, by item index.

    Each of the process's sync threads fsyncs its own stripe of the files, one
    after another: a pool task for every file, or new threads for every group,
    cost more than writing a small bundle to tmpfs. Where an fsync returns at
    once, the files are synced here, one after another. A file whose fsync did not
    return (its stripe stopped at something other than an ``OSError``) counts
    as failed, so it never gets its name.
    """
    indices = list(pending)
    errors: dict[int, OSError] = {}
    synced: set[int] = set()

    def sync(stripe: list[int]) -> None:
        for index in stripe:
            try:
                os.fsync(pending[index].fd)
            except OSError as exc:
                errors[index] = exc
            else:
                synced.add(index)

    # The first one tells what the rest will cost: a file system that returns at
    # once (tmpfs) gains nothing from threads, only their hand-offs.
    started = time.perf_counter()
    sync(indices[:1])
    rest = indices[1:]
    count = min(_SYNC_THREADS, len(rest))
    if count < 2 or time.perf_counter() - started < _INSTANT_SYNC:
        sync(rest)
    else:
        pool = _sync_pool()
        stripes: list[Future[None]] = []
        try:
            for first in range(count):
                stripes.append(pool.submit(sync, rest[first::count]))
        finally:  # even when interrupted: no fsync may still run once the files close
            _wait_all(stripes)
    for index in indices:
        if index not in synced and index not in errors:
            errors[index] = OSError(errno.EIO, "was not made durable (fsync did not return)")
    return errors


def _wait_all(stripes: list[Future[None]]) -> None:
    """Wait for every stripe to end: a Ctrl-C meanwhile is raised once they have."""
    from concurrent.futures import wait

    interrupted: BaseException | None = None
    while True:
        try:
            wait(stripes)
            break
        except BaseException as exc:  # re-raised below, once they are done
            interrupted = exc
    if interrupted is not None:
        raise interrupted


#: The threads that fsync a group's files, started once per process (by pid: a
#: forked child has the pool object but none of its threads).
_sync_threads: tuple[int, ThreadPoolExecutor] | None = None


def _sync_pool() -> ThreadPoolExecutor:
    global _sync_threads
    if _sync_threads is None or _sync_threads[0] != os.getpid():
        from concurrent.futures import ThreadPoolExecutor

        _sync_threads = (os.getpid(), ThreadPoolExecutor(max_workers=_SYNC_THREADS,
                                                         thread_name_prefix="rerun-fsync"))
    return _sync_threads[1]


def _named_error(exc: OSError, shown: str) -> OSError:
    """``exc`` carrying the path the caller asked for (see the module docstring)."""
    if exc.filename == shown:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), shown)


def _open_file_limit() -> int:
    try:
        import resource
    except ImportError:  # Windows
        return 512
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 16


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o644,
    replace: bool = True,
    keep_mode: bool = False,
    shown: str | None = None,
) -> None:
    """Write ``data`` to the regular file ``path`` atomically with permission bits ``mode``.

    ``mode`` is applied with fchmod, so the umask cannot widen or narrow it;
    ``keep_mode`` keeps the bits of a file being replaced instead. With
    ``replace=False`` an existing ``path`` (even a dangling link) raises
    ``FileExistsError`` and is left untouched: the new file is linked into
    place, which fails rather than overwrites. A symbolic link is followed and
    its target replaced; anything that is not a regular file is refused, so
    keys only ever land in regular files. ``shown`` is the name errors carry
    (default ``path``).
    """
    shown = os.fspath(path) if shown is None else shown
    if not replace and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "already exists", shown)
    target, info = _resolve(os.fspath(path), shown)
    _write_regular(target, info, data, mode=mode, replace=replace,
                   keep_mode=keep_mode, shown=shown)


def _write_regular(target: str, info: os.stat_result | None, data: bytes, *, mode: int,
                   replace: bool, keep_mode: bool, shown: str) -> None:
    """:func:`write_atomic` once ``target`` is known (no link) and ``info`` is its lstat."""
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, f"is a {_kind(info.st_mode)}, not a regular file; "
                      "not replacing it", shown)
    if keep_mode and info is not None:
        mode = stat.S_IMODE(info.st_mode)
    folder, name = os.path.split(target)
    folder = folder or "."
    try:
        remove_stale_temporaries(folder)
        _write_new(folder, name, target, data, mode, replace, existed=info is not None)
    except OSError as exc:  # name the file the user asked for, not a temporary one
        raise type(exc)(exc.errno, exc.strerror or str(exc), shown) from None
    _fsync_dir(folder)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Remove our named temporaries in ``folder`` whose writer is gone; warn for each.

    A writer holds an exclusive ``flock`` on its temporary for as long as it
    lives, so a temporary we can lock was left by a killed process. Runs once
    per folder per process. Returns the paths removed.
    """
    given = os.path.abspath(folder)
    key = _real_folders.get(given)
    if key is None:  # realpath costs an lstat per path component: once per folder
        key = _real_folders[given] = os.path.realpath(folder)
    if key in _cleaned:
        return []
    _cleaned.add(key)
    removed = []
    try:
        entries = [entry.name for entry in os.scandir(folder) if _TEMP_NAME.match(entry.name)]
    except OSError:
        return []  # the write that follows reports an unusable folder
    for name in entries:
        candidate = os.path.join(folder, name)
        if _remove_if_abandoned(candidate):
            removed.append(candidate)
            warnings.warn(f"{candidate}: removed a temporary file left by an interrupted "
                          "rerun run", UserWarning, stacklevel=2)
    return removed


def _remove_if_abandoned(candidate: str) -> bool:
    try:
        fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        if not _lock(fd, wait=False):
            return False  # a live writer holds it
        # The name must still be this file (not renamed into place meanwhile).
        if os.stat(candidate, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
            return False
        os.unlink(candidate)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _write_new(folder: str, name: str, target: str, data: bytes, mode: int,
               replace: bool, *, existed: bool) -> None:
    """Write the new file in full, durably, then give it its name."""
    pending = _Unnamed.write(folder, name, target, data, mode, replace, existed=existed)
    try:
        os.fsync(pending.fd)
    except OSError:
        pending.abandon()
        raise
    pending.name_it()


class _Unnamed:
    """A new file written in full that has no name yet (or only a temporary one).

    :func:`write_atomic` makes it durable and names it at once; :func:`write_outputs`
    writes a group of them, makes them all durable, then names them in order.
    """

    def __init__(self, fd: int, named: str | None, folder: str, name: str, target: str,
                 replace: bool, existed: bool) -> None:
        self.fd, self.named, self.folder, self.name = fd, named, folder, name
        self.target, self.replace, self.existed = target, replace, existed

    @classmethod
    def write(cls, folder: str, name: str, target: str, data: bytes, mode: int,
              replace: bool, *, existed: bool) -> _Unnamed:
        """``existed``: whether ``target`` was there when looked at (then it is
        replaced by a rename; a new name is made with one link)."""
        fd = _open_unnamed(folder)
        named: str | None = None
        try:
            if fd is None:
                fd, named = _open_named(folder, name)
                _lock(fd, wait=True)  # marks it live for remove_stale_temporaries
            os.fchmod(fd, mode)
            _write_all(fd, data)
        except BaseException:
            if named is not None:
                with contextlib.suppress(OSError):
                    os.unlink(named)
            if fd is not None:
                os.close(fd)
            raise
        return cls(fd, named, folder, name, target, replace, existed)

    def name_it(self, folder_fd: int | None = None) -> None:
        """Give the file (already durable) its name, replacing or not, and close it.

        An unnamed file whose target did not exist is linked to its name
        directly: no temporary name, no rename. Should the target have
        appeared meanwhile, the link fails rather than overwrites, and a
        replacing write then renames over it, as it would have anyway.
        ``folder_fd``, when given, is the folder opened (for a group's many links).
        """
        named = self.named
        try:
            if named is None and not (self.replace and self.existed):
                try:
                    _link_fd(self.fd, self.folder, self.name, folder_fd)
                    return
                except FileExistsError:
                    if not self.replace:
                        raise  # EEXIST rather than overwrite
            if named is None:  # a name only for the instant of the rename
                _lock(self.fd, wait=True)  # marks it live for remove_stale_temporaries
                named = _link_named(self.fd, self.folder, self.name, folder_fd)
            if self.replace:
                os.replace(named, self.target)
            else:
                os.link(named, self.target)
                os.unlink(named)
            named = None
        finally:
            self.named = named
            self.abandon()

    def abandon(self) -> None:
        """Remove the temporary name, if any, and close the file: nothing is left."""
        if self.named is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.named)
            self.named = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _lock(fd: int, *, wait: bool) -> bool:
    """An exclusive flock on ``fd``; False when another holds it (``wait`` off) or the
    file system cannot lock: then a temporary is never taken for abandoned, and a
    write goes on without the mark. Windows has no flock: always True there.
    """
    if sys.platform == "win32":
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _open_unnamed(folder: str) -> int | None:
    """An unnamed file in ``folder``, or None where the platform or file system has none."""
    global _proc_fd
    flag = getattr(os, "O_TMPFILE", 0)
    if _proc_fd is None:
        _proc_fd = os.path.isdir("/proc/self/fd")
    if not flag or not _proc_fd:
        return None
    try:
        return os.open(folder, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def _temp_path(folder: str, name: str) -> str:
    # Shortened so a target name near the 255-byte limit still has a temporary.
    stem = os.fsencode(name)[:200].decode(errors="ignore") or "x"
    return os.path.join(folder, f".{stem}{TEMP_MARK}{secrets.token_hex(6)}")


def _open_named(folder: str, name: str) -> tuple[int, str]:
    while True:
        path = _temp_path(folder, name)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue


def _link_named(fd: int, folder: str, name: str, folder_fd: int | None = None) -> str:
    while True:
        path = _temp_path(folder, name)
        try:
            _link_fd(fd, folder, os.path.basename(path), folder_fd)
            return path
        except FileExistsError:
            continue


def _link_fd(fd: int, folder: str, name: str, folder_fd: int | None = None) -> None:
    """Give the unnamed file ``fd`` the name ``folder/name`` (linkat, following
    /proc/self/fd/N; a dst_dir_fd makes os.link use linkat rather than link).
    ``folder_fd`` is ``folder`` already opened; otherwise it is opened here."""
    if folder_fd is None:
        opened = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _link_fd(fd, folder, name, opened)
        finally:
            os.close(opened)
        return
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder_fd, follow_symlinks=True)


def _open_folder(folder: str) -> int | None:
    """``folder`` opened for links and its fsync, or None where it cannot be opened
    (each link then opens it, and reports why it cannot)."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_all_fd(fd: int, data: bytes, shown: str) -> None:
    try:
        _write_all(fd, data)
    except BrokenPipeError:
        if fd == 1:  # /dev/stdout is stdout: its closed reader ends the run quietly
            raise
        raise BrokenPipeError(errno.EPIPE, "Broken pipe (the reader closed it)", shown) from None
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror or str(exc), shown) from None


def _write_stream(target: str, data: bytes, shown: str) -> None:
    """A device or FIFO: open it for writing (a FIFO waits for its reader) and write."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror or str(exc), shown) from None
    try:
        _write_all_fd(fd, data, shown)
    finally:
        os.close(fd)


def _write_socket(target: str, data: bytes, shown: str) -> None:
    """A Unix socket: connect and send, as ``socat - UNIX-CONNECT:PATH`` would."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(target)
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), shown) from None


def _named_fd(path: str) -> int | None:
    """The descriptor ``/dev/stdout``, ``/dev/fd/N`` or ``/proc/self/fd/N`` names."""
    if path in _STD_PATHS:
        return _STD_PATHS[path]
    match = _FD_PATH.match(path)
    return int(match.group(1)) if match else None


def _resolve(path: str, shown: str | None = None) -> tuple[str, os.stat_result | None]:
    """What writing to ``path`` writes: its final target (a symbolic link is
    followed; a link to nothing is refused) and that target's lstat, None when
    it does not exist yet."""
    info = _lstat(path)
    if info is None or not stat.S_ISLNK(info.st_mode):
        return path, info
    target = os.path.realpath(path)
    if not os.path.lexists(target) or os.path.islink(target):
        raise FileNotFoundError(errno.ENOENT, "is a symbolic link to a missing file; "
                                "not writing through it", shown or path)
    return target, _lstat(target)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _kind(st_mode: int) -> str:
    if stat.S_ISDIR(st_mode):
        return "directory"
    if stat.S_ISBLK(st_mode):
        return "block device"
    if stat.S_ISCHR(st_mode):
        return "character device"
    if stat.S_ISFIFO(st_mode):
        return "FIFO"
    if stat.S_ISSOCK(st_mode):
        return "socket"
    if stat.S_ISLNK(st_mode):
        return "symbolic link"
    return "special file"


def _fsync_dir(folder: str, folder_fd: int | None = None) -> None:
    """Make the rename itself durable; not every platform can open a folder.
    ``folder_fd`` is ``folder`` already opened (the caller closes it)."""
    if folder_fd is not None:
        with contextlib.suppress(OSError):
            os.fsync(folder_fd)
        return
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
