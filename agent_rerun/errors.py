"""Typed exceptions: callers catch what they can handle, the CLI maps each to an exit code."""

from __future__ import annotations


class RerunError(Exception):
    """Base of every error agent-rerun raises on purpose."""


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
