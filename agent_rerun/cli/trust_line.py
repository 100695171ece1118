"""The trust-line flags ``pubkey`` and ``keys list`` share: who the line names, for what, when.

Declared once so both commands spell and check them alike. They are checked
before any key is opened (a typo never costs a PIN prompt) and a bad value is a
usage error, exit 2, like any other bad flag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

import click

from agent_rerun.cli.common import printable

F = TypeVar("F", bound=Callable[..., object])

_FLAGS = ("--principal", "--namespaces", "--valid-after", "--valid-before")


@dataclass(frozen=True)
class TrustLineOptions:
    """What the flags asked for; ``line`` builds one trust line from them."""

    principals: tuple[str, ...]
    namespaces: str | None
    valid_after: str | None
    valid_before: str | None
    #: One moment for every line of one run, so ``--valid-after now`` means the same
    #: second on each line ``keys list`` prints.
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def given(self) -> bool:
        return bool(self.principals) or any(
            value is not None for value in (self.namespaces, self.valid_after, self.valid_before))

    def check(self, output_format: str) -> None:
        """Usage error (exit 2) unless the flags fit ``output_format`` and are well formed."""
        from agent_rerun.errors import InputError
        from agent_rerun.trust import check_line_options

        if output_format != "allowed-signers":
            if self.given():
                raise click.UsageError(f"{', '.join(_FLAGS)} go with --format allowed-signers")
            return
        if not self.principals:
            raise click.UsageError("--format allowed-signers needs --principal NAME (the name "
                                   "results show for this key, e.g. ci@example.com)")
        try:
            check_line_options(self.principals, namespaces=self._namespaces(),
                               valid_after=self.valid_after, valid_before=self.valid_before,
                               now=self.now)
        except InputError as exc:
            raise click.UsageError(str(exc)) from None

    def line(self, public_key: bytes, comment: str) -> str:
        """The trust line for ``public_key``, commented with where the key lives."""
        from agent_rerun.trust import allowed_signers_line

        return allowed_signers_line(public_key, self.principals, comment=printable(comment),
                                    namespaces=self._namespaces(), valid_after=self.valid_after,
                                    valid_before=self.valid_before, now=self.now)

    def _namespaces(self) -> str:
        from agent_rerun.trust import NAMESPACE

        return NAMESPACE if self.namespaces is None else self.namespaces


def trust_line_options(func: F) -> F:
    """Add the trust-line flags; the command receives them as ``line_options``."""

    @functools.wraps(func)
    def wrapper(*args: object, principals: tuple[str, ...], namespaces: str | None,
                valid_after: str | None, valid_before: str | None, **kwargs: object) -> object:
        options = TrustLineOptions(principals, namespaces, valid_after, valid_before)
        return func(*args, line_options=options, **kwargs)

    decorators = [
        click.option("--principal", "principals", multiple=True, metavar="NAME",
                     help="Who the trust line names (allowed-signers format). Repeatable."),
        click.option("--namespaces", metavar="LIST",
                     help="namespaces= of the trust line  [default: agent-rerun]"),
        click.option("--valid-after", metavar="TIME",
                     help="Trusted from TIME: YYYYMMDD[HHMM[SS]][Z] (Z: UTC, else local "
                          "time) or 'now'."),
        click.option("--valid-before", metavar="TIME",
                     help="Trusted until TIME (same forms): how a retired key is phased out."),
    ]
    command: Callable[..., object] = wrapper
    for decorator in reversed(decorators):
        command = decorator(command)
    return command  # type: ignore[return-value]
