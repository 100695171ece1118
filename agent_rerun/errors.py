"""Typed exceptions: callers catch what they can handle, and each carries its CLI exit code.

Every exception agent-rerun raises on purpose, in the core and in the signer
backends, derives from ``RerunError``, so ``except RerunError`` is the one
catch-all a caller needs. As with click's ``ClickException.exit_code``, the
class says how ``rerun`` exits when it is not caught: the CLI needs no table
mapping exception types to codes (tests/test_errors.py checks the tree).
"""

from __future__ import annotations

#: Exit codes of ``rerun``, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # verification failed, or an input file / step record is unusable
EXIT_USAGE = 2  # click's own convention for bad flags and arguments
EXIT_KEY = 3  # a key could not be created, loaded or used


class RerunError(Exception):
    """Base of every error agent-rerun raises on purpose; ``exit_code`` is the CLI's."""

    exit_code: int = EXIT_FAILED


class ValidationError(RerunError, ValueError):
    """A step record, bundle or actual record does not follow the v0.1 schema.

    ``path`` is the JSON location (``bundle.sampling.seed``) so a message can
    name the field.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class InputError(RerunError):
    """A file could not be read or parsed as I-JSON; the message names the file and place."""


class SignerError(RerunError):
    """A key could not be created, loaded, used or listed; the message never holds a secret."""

    exit_code = EXIT_KEY


def one_line(text: str | BaseException) -> str:
    """``text``, or an exception's message, with every run of whitespace (line breaks
    included) as one space; an exception without a message gives its class name.

    Other libraries' messages often span lines, and every message of ours is one
    line on stderr.
    """
    words = str(text).split()
    if not words and isinstance(text, BaseException):
        return type(text).__name__
    return " ".join(words)
