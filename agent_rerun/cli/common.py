"""What every command shares: exit codes, one-line errors, prompts, config defaults.

Kept import-light on purpose: ``rerun verify`` starts faster than a Python
interpreter can import cryptography, so heavy modules load inside commands,
and click itself loads only when a message is printed through it (the quick
``rerun verify BUNDLE ACTUAL`` path uses this module without click).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, TypeVar

# The exit codes live with the errors that carry them; commands import them from here.
from agent_rerun.errors import EXIT_FAILED as EXIT_FAILED
from agent_rerun.errors import EXIT_KEY as EXIT_KEY
from agent_rerun.errors import EXIT_OK as EXIT_OK
from agent_rerun.errors import EXIT_USAGE as EXIT_USAGE
from agent_rerun.errors import RerunError, ValidationError
from agent_rerun.errors import one_line as _collapse

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print one line on stderr and exit; never a traceback."""
    import click

    click.echo(f"rerun: error: {one_line(message)}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    import click

    click.echo(f"rerun: warning: {one_line(message)}", err=True)


def reports_errors(func: F) -> F:
    """Turn the library's typed errors into one stderr line and their own exit code."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except RerunError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:
            # Unnamed: writing stdout failed. main() ends quietly for a closed pipe
            # (exit 141) and names stdout for anything else.
            if exc.filename is None:
                raise
            fail(describe(exc), EXIT_FAILED)
        except RecursionError:
            fail("input is nested too deeply", EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def describe(exc: BaseException, path: str | None = None) -> str:
    """``FILE: reason`` for an OSError (``path`` when it names no file); other errors as is."""
    if not isinstance(exc, OSError):
        return str(exc)
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where is not None else reason


def read_bundle_file(path: str) -> Any:
    """Read a bundle file as I-JSON and check its schema; errors name the file."""
    from agent_rerun.schema import validate_bundle

    return read_checked(path, "bundle", validate_bundle)


def read_checked(path: str, what: str, check: Callable[[Any], T]) -> T:
    """Read ``path`` (``-`` is stdin) as I-JSON and pass it to ``check``.

    A ``ValidationError`` from ``check`` only names the field; this adds the file
    (``<stdin>`` for ``-``), so every command's message says where to look.
    """
    from agent_rerun.ijson import load_json_file

    document = load_json_file(path, what)
    try:
        return check(document)
    except ValidationError as exc:
        shown = "<stdin>" if path == "-" else path
        raise ValidationError(f"{shown}: {exc}") from None


def progress(items: Iterable[T], *, label: str, length: int | None = None,
             enabled: bool = True) -> Iterator[T]:
    """``items``, with a progress bar on stderr when it is a terminal (and ``enabled``).

    Pipes and logs get plain iteration: a bar's redraws would only be noise there.
    """
    if not (enabled and sys.stderr.isatty()):
        yield from items
        return
    import click

    with click.progressbar(items, length=length, label=label, file=sys.stderr) as bar:
        yield from bar


def result_text(payload: dict[str, Any]) -> str:
    """A result as the published CLI prints it: indented JSON (the caller adds the newline)."""
    return json.dumps(payload, indent=2, ensure_ascii=False)


def terminal_prompt(text: str, confirm: bool) -> str:
    """A PromptFn backed by click: hidden input, confirmation for new secrets."""
    import click

    # A new secret may be left empty (an unencrypted key file), so empty is a valid answer.
    value: str = click.prompt(text, hide_input=True, confirmation_prompt=confirm, err=True,
                              default="" if confirm else None, show_default=False)
    return value


def prompt_if_interactive() -> Callable[[str, bool], str] | None:
    """Offer a prompt only when someone is at a terminal to answer it."""
    return terminal_prompt if sys.stdin.isatty() else None


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``).

    Bundles are untrusted input: a value holding a newline or a terminal escape
    sequence must not be able to forge or hide a line of our output.
    """
    return _control().sub(lambda match: match.group().encode("unicode_escape").decode("ascii"),
                        text)


def one_line(message: str) -> str:
    """One line, control characters escaped: what every stderr message goes through."""
    return _collapse(printable(message))


@functools.cache
def _control() -> re.Pattern[str]:
    """C0/C1 controls, bidi embeddings/overrides/isolates (which reorder what a
    terminal shows) and the Unicode line/paragraph separators; compiled on first
    use, since a verified ``rerun verify`` prints no message."""
    return re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
