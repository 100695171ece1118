"""``rerun verify BUNDLE ACTUAL`` without click: the same bytes, a shorter start-up.

A CI job may start ``rerun verify`` once per bundle, and importing click costs
about as much as the rest of a small verify. For exactly that command line
(two plain paths, no options) ``main`` comes here instead of the click group;
this module does what ``verify_cmd.verify_command`` and the group around it do
(the ``rerun: warning:`` lines, the JSON on stdout, the one-line reason on
stderr, the exit code, click's handling of Ctrl-C and a closed pipe), and
tests/test_quick_verify.py runs every vector and error case through both and
compares stdout, stderr and the exit code byte for byte. Anything this path is
not sure to print identically (another command line, shell completion, a
stream that is not UTF-8, Windows consoles) goes through click.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
import warnings
from typing import Any, NoReturn, TextIO, cast

#: click's shell-completion switch for ``prog_name="rerun"``.
_COMPLETE_ENV = "_RERUN_COMPLETE"


def quick_verify_paths(args: list[str]) -> tuple[str, str] | None:
    """``(BUNDLE, ACTUAL)`` when ``args`` is exactly ``verify BUNDLE ACTUAL`` and this
    path prints what click would; None sends the command line to click."""
    if len(args) != 3 or args[0] != "verify":
        return None
    bundle, actual = args[1], args[2]
    # "-" (stdin), "--", options and help all start with "-": click parses those.
    if bundle.startswith("-") or actual.startswith("-") or not bundle or not actual:
        return None
    if os.name == "nt" or os.environ.get(_COMPLETE_ENV):
        return None
    if not (_plain_utf8(sys.stdout) and _plain_utf8(sys.stderr)):
        return None
    return bundle, actual


def _plain_utf8(stream: TextIO | None) -> bool:
    """A stream click would write to as it is (see click._compat), in UTF-8."""
    if stream is None or getattr(stream, "errors", None) is None:
        return False
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def run_quick_verify(bundle_path: str, actual_path: str) -> NoReturn:
    """Verify one pair as ``rerun verify BUNDLE ACTUAL`` does, then exit.

    The layers mirror ``agent_rerun.cli.app.main`` around click around the
    command: a closed stdout is exit 141 either way, Ctrl-C inside the command
    is click's "Aborted!", a failure nobody expected is one line.
    """
    from agent_rerun.cli.streams import run_to_the_end

    def body() -> None:
        sys.exit(_as_click_runs(bundle_path, actual_path))

    run_to_the_end(body)
    raise AssertionError("unreachable: body always exits")


def _as_click_runs(bundle_path: str, actual_path: str) -> int:
    """The exit code of the command, with what click and the group do around it."""
    from agent_rerun.cli.streams import stdout_closed

    try:
        return _verify(bundle_path, actual_path)
    except BrokenPipeError as exc:  # the group's own handler, before click's
        if exc.filename is None:
            stdout_closed()
        return _click_epipe()
    except (EOFError, KeyboardInterrupt):
        _echo("", sys.stderr)  # as click: a blank line closes the terminal's ^C echo
        _echo("Aborted!", sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        return _click_epipe()


def _click_epipe() -> int:
    """click's ending for a broken pipe it sees: exit 1, without a second complaint
    when the interpreter flushes the streams at exit."""
    sys.stdout = cast(TextIO, _PacifyFlush(sys.stdout))
    sys.stderr = cast(TextIO, _PacifyFlush(sys.stderr))
    return 1


def _verify(bundle_path: str, actual_path: str) -> int:
    from agent_rerun.cli.common import EXIT_FAILED, EXIT_OK, one_line, result_text

    warnings.showwarning = _show_warning
    warnings.simplefilter("always", UserWarning)
    from agent_rerun.errors import InputError
    from agent_rerun.policy import resolve_policy
    from agent_rerun.verify import VerifyResult, verify_files

    try:
        policy = resolve_policy((), None, (), require_signature=False)
    except InputError as exc:
        result = VerifyResult(False, [f"ConfigError:{exc}"])
    else:
        result = verify_files(bundle_path, actual_path, policy=policy)
    _echo(result_text(result.to_json()), sys.stdout)
    if not result.verified:
        _echo(f"rerun: not verified: {one_line(result.errors[0])}", sys.stderr)
    return EXIT_OK if result.verified else EXIT_FAILED


def _echo(text: str, stream: TextIO) -> None:
    """``click.echo`` for text without ANSI escapes on a plain stream: a line, flushed."""
    stream.write(text + "\n")
    stream.flush()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    from agent_rerun.cli.common import one_line

    _echo(f"rerun: warning: {one_line(str(message))}", sys.stderr)


class _PacifyFlush:
    """A stream whose ``flush`` ignores a broken pipe, as click's wrapper does."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def flush(self) -> None:
        try:
            self._wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)
