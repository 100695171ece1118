"""The end of every ``rerun`` run on stdout: a final flush, and a reader that went away.

Shared by the click group (``agent_rerun.cli.app``) and the click-free
``rerun verify BUNDLE ACTUAL`` path, so both end the same way; click is
imported only to report a failed flush.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from agent_rerun.errors import EXIT_FAILED

#: 128 + SIGPIPE: the status a shell shows for a writer whose reader closed the pipe.
EXIT_BROKEN_PIPE = 128 + 13


def flush_stdout() -> None:
    """Flush stdout (absent when started with fd 1 closed); a closed pipe is left to
    the caller, any other failure (a full disk behind ``>``) is one line naming stdout."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        import click

        click.echo(f"rerun: error: stdout: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_FAILED)


def run_to_the_end(body: Callable[[], object]) -> None:
    """Run ``body`` (a whole ``rerun`` command) and end it as every command ends.

    Shared by the click group and the click-free verify path so that both
    print the same bytes: a final flush, a closed stdout as exit 141, Ctrl-C as
    exit 130, an unnamed write error as one line naming stdout, and a failure
    nobody expected as one line (``RERUN_DEBUG=1`` shows its traceback).
    """
    try:
        try:
            body()
        finally:  # what is still buffered fails here, not in the interpreter's exit
            flush_stdout()
    except BrokenPipeError:
        stdout_closed()
    except KeyboardInterrupt:
        sys.stderr.write("rerun: interrupted\n")
        sys.stderr.flush()
        sys.exit(130)
    except OSError as exc:
        write_failed(exc)
    except Exception as exc:
        if os.environ.get("RERUN_DEBUG"):
            raise
        import click

        click.echo(f"rerun: internal error: {type(exc).__name__}: {exc} "
                   "(set RERUN_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_FAILED)


def write_failed(exc: OSError) -> NoReturn:
    """One line for an OSError that reached the top of a run, exit 1.

    Every file error names its file on the way up; one that names none came
    from writing stdout (a full disk behind ``>``, /dev/full).
    """
    import click

    where = exc.filename if exc.filename is not None else "stdout"
    click.echo(f"rerun: error: {where}: {exc.strerror or exc}", err=True)
    sys.exit(EXIT_FAILED)


def stdout_closed() -> NoReturn:
    """The reader of stdout went away (``rerun verify ... | head -c1``): end quietly
    with 128 + SIGPIPE, as a program killed by SIGPIPE would.

    stdout is pointed at /dev/null first, so the flush at interpreter exit
    cannot fail again with "Exception ignored ... BrokenPipeError".
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_BROKEN_PIPE)
