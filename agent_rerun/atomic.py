"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

Bundles and keys are written to a temporary file in the destination folder,
flushed to disk, then renamed over (or hard-linked to, when replacing is not
allowed) the final name. A crash at any point leaves at most a stray temporary
file, never a truncated bundle or a lost key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o644,
    replace: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically with permission bits ``mode``.

    ``mode`` is applied with fchmod, so the umask cannot widen or narrow it.
    With ``replace=False`` an existing ``path`` raises ``FileExistsError`` and
    is left untouched (the new file is linked into place, which fails rather
    than overwrites).
    """
    target = Path(path)
    folder = target.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:  # name the file the user asked for, not our temporary one
        raise OSError(exc.errno, exc.strerror, os.fspath(target)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            if replace:
                os.replace(tmp_name, target)
            else:
                os.link(tmp_name, target)
                os.unlink(tmp_name)
        except FileExistsError:
            raise
        except OSError as exc:  # name the file the user asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror, os.fspath(target)) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder."""
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
