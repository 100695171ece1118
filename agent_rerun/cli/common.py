"""What every command shares: exit codes, one-line errors, prompts, config defaults.

Kept import-light on purpose: ``rerun verify`` starts faster than a Python
interpreter can import cryptography, so heavy modules load inside commands.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from agent_rerun.errors import InputError, RerunError, SignerError, ValidationError

#: Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # verification failed, or an input file / step record is unusable
EXIT_USAGE = 2  # click's own convention for bad flags and arguments
EXIT_KEY = 3  # a key could not be created, loaded or used

F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print one line on stderr and exit; never a traceback."""
    click.echo(f"rerun: error: {_one_line(message)}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    click.echo(f"rerun: warning: {_one_line(message)}", err=True)


def reports_errors(func: F) -> F:
    """Turn the library's typed errors into one stderr line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except SignerError as exc:
            fail(str(exc), EXIT_KEY)
        except (InputError, ValidationError) as exc:
            fail(str(exc), EXIT_FAILED)
        except RerunError as exc:
            fail(str(exc), EXIT_FAILED)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_FAILED)
        except RecursionError:
            fail("input is nested too deeply", EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def terminal_prompt(text: str, confirm: bool) -> str:
    """A PromptFn backed by click: hidden input, confirmation for new secrets."""
    value: str = click.prompt(text, hide_input=True, confirmation_prompt=confirm, err=True)
    return value


def prompt_if_interactive() -> Callable[[str, bool], str] | None:
    """Offer a prompt only when someone is at a terminal to answer it."""
    return terminal_prompt if sys.stdin.isatty() else None


def _one_line(message: str) -> str:
    return " ".join(message.split())
