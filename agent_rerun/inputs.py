"""Reading an input file with a size bound and without hanging: the one way files come in.

Every file a command reads (records, bundles, config, trust and revocation
lists, manifests, key files, PIN files) comes through :func:`read_input`, so
each gets the same guarantees (docs/inputs.md):

* The file is opened with ``O_NONBLOCK``: opening a FIFO nobody writes to
  returns at once instead of blocking forever inside ``open()``.
* A regular file is read up to its limit plus one byte; more is refused with
  one line naming the file, so ``/dev/zero`` or a 300 MB PIN file cannot eat
  the memory.
* Anything else that is not a folder (a FIFO, ``<(...)``, ``/dev/stdin``, a
  device) is read as a stream, with the same bound, waiting at most
  :func:`idle_timeout` seconds for each next chunk: a pipe nobody writes to
  ends with an error, never a hang.
* A folder, a dangling symbolic link or a file that cannot be opened is one
  line naming the file and the reason.

The caller chooses the error type, so a key or PIN problem is a ``SignerError``
(exit 3) and a record problem an ``InputError`` (exit 1).
"""

from __future__ import annotations

import os
import stat
import warnings

from agent_rerun.errors import InputError, RerunError

KIB = 1024
MIB = 1024 * KIB

#: A PIN or passphrase file: a secret is a line, never megabytes.
SECRET_LIMIT = 64 * KIB
#: A private or public key file (key JSON, PEM, OpenSSH).
KEY_FILE_LIMIT = 1 * MIB
#: Config, trust lists, revocation lists, manifests: text a person or a tool writes.
LIST_LIMIT = 64 * MIB
#: Step records, actual records and bundles (transcripts can be large).
RECORD_LIMIT = 1024 * MIB

#: Seconds a FIFO, pipe or device may stay silent before the read gives up.
DEFAULT_IDLE_TIMEOUT = 30.0
#: Environment variable overriding :data:`DEFAULT_IDLE_TIMEOUT` (seconds, > 0).
TIMEOUT_ENV = "RERUN_INPUT_TIMEOUT"

_CHUNK = 64 * KIB
#: Windows has no O_NONBLOCK (nor os.set_blocking for files before 3.12): plain opens there.
_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)


class KeyPermissionWarning(UserWarning):
    """A private key or PIN file can be read by group or others; the message says how to fix it."""


def read_input(
    path: str | os.PathLike[str],
    what: str,
    *,
    limit: int,
    error: type[RerunError] = InputError,
) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them; ``what`` names the file in errors.

    Errors are ``error(f"{path}: cannot read {what}: {reason}")`` or
    ``error(f"{path}: {what} is larger than ...")``, one line each.
    """
    return read_input_with_mode(path, what, limit=limit, error=error)[0]


def read_input_with_mode(
    path: str | os.PathLike[str],
    what: str,
    *,
    limit: int,
    error: type[RerunError] = InputError,
) -> tuple[bytes, int]:
    """:func:`read_input` plus the ``st_mode`` of the file that was read (for permission checks)."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise error(f"{path!r} is not a file path") from None
    try:
        fd = os.open(name, os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(f"{name}: cannot read {what}: {_open_failure(name, exc)}") from None
    except ValueError as exc:  # an embedded NUL byte, which no file name can hold
        raise error(f"{name!r}: not a usable file path ({exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{name}: cannot read {what}: it is a folder")
        if stat.S_ISREG(mode):
            data = _read_regular(fd, limit)
        else:
            data = _read_stream(fd, name, what, limit, error)
    except OSError as exc:
        raise error(f"{name}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{name}: {what} is larger than {_size(limit)}; refusing to read it")
    return data, mode


def read_stdin(what: str, *, limit: int, error: type[RerunError] = InputError) -> bytes:
    """Standard input, bounded like a file; it may block, as reading stdin does in any tool.

    The caller attached stdin on purpose (``rerun verify - ...``), so it gets no
    idle timeout: a slow producer upstream is not a mistake.
    """
    import sys

    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise error(f"<stdin>: {what} is larger than {_size(limit)}; refusing to read it")
    return data


def idle_timeout() -> float:
    """Seconds to wait for the next chunk of a stream: ``$RERUN_INPUT_TIMEOUT`` or 30."""
    text = os.environ.get(TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_IDLE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise InputError(f"{TIMEOUT_ENV}={text!r}: must be a positive number of seconds")
    return value


def warn_if_shared(path: str | os.PathLike[str], mode: int, what: str = "key file") -> None:
    """Warn (once per read) when a secret-holding file is open to group or others.

    ssh refuses such keys; we only warn, so an unlucky checkout still works.
    The CLI prints the warning as one ``rerun: warning:`` line.
    """
    if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
        warnings.warn(
            KeyPermissionWarning(
                f"{what} {os.fspath(path)} is accessible by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); fix with: chmod 600 {os.fspath(path)}"
            ),
            stacklevel=3,
        )


def _open_failure(name: str, exc: OSError) -> str:
    """Why ``open`` failed; a dangling link says where it points (a dotfiles link, unmounted)."""
    if isinstance(exc, FileNotFoundError) and os.path.islink(name):
        try:
            return f"it is a dangling symbolic link (to {os.readlink(name)})"
        except OSError:
            pass
    return exc.strerror or str(exc)


def _read_regular(fd: int, limit: int) -> bytes:
    if _NONBLOCK:
        os.set_blocking(fd, True)
    chunks = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 16 * MIB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_stream(fd: int, name: str, what: str, limit: int, error: type[RerunError]) -> bytes:
    """Read a FIFO, pipe or device until end of file, a byte over ``limit``, or an idle timeout.

    Linux reports a FIFO whose writer has not yet opened it as "nothing to
    read" (not end of file) to poll, so waiting for the writer of ``<(...)``
    and for each next chunk is the same wait.
    """
    import select

    timeout = idle_timeout()
    if not hasattr(select, "poll") or not _NONBLOCK:  # Windows: read plainly, still bounded
        return _read_regular(fd, limit)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    data = bytearray()
    while len(data) <= limit:
        if not poller.poll(int(timeout * 1000)):
            raise error(f"{name}: cannot read {what}: nothing was written to it for "
                        f"{timeout:g} seconds (a FIFO or device nobody writes; "
                        f"{TIMEOUT_ENV} sets the wait)")
        try:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - len(data)))
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _size(limit: int) -> str:
    if limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit % KIB == 0:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"
