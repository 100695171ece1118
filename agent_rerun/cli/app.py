"""The ``rerun`` click group: thin commands that parse, call the library, print, exit.

Each command lives in its own module and is imported only when it runs (or
when help lists it): ``rerun verify`` is often started once per bundle in CI,
so it should not pay for loading capture, key or inspect code. The plainest
form of all, ``rerun verify BUNDLE ACTUAL``, does not even load click
(``agent_rerun.cli.quick_verify``); every other command line comes here.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TextIO

import click

from agent_rerun._version import __version__
from agent_rerun.cli.common import warn
from agent_rerun.cli.streams import EXIT_BROKEN_PIPE as EXIT_BROKEN_PIPE
from agent_rerun.cli.streams import run_to_the_end
from agent_rerun.cli.streams import stdout_closed as _stdout_closed

#: Command name -> "module:attribute" of its click command, in help order.
COMMANDS: dict[str, str] = {
    "capture": "agent_rerun.cli.capture_cmd:capture_command",
    "sign": "agent_rerun.cli.capture_cmd:sign_command",
    "verify": "agent_rerun.cli.verify_cmd:verify_command",
    "inspect": "agent_rerun.cli.inspect_cmd:inspect_command",
    "keygen": "agent_rerun.cli.keys_cmd:keygen_command",
    "pubkey": "agent_rerun.cli.keys_cmd:pubkey_command",
    "keys": "agent_rerun.cli.keys_cmd:keys_group",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def invoke(self, ctx: click.Context) -> object:
        # Before click's own handler, which would exit 1 for a closed stdout.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            if exc.filename is not None:
                raise
            _stdout_closed()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rerun")
def cli() -> None:
    """Capture, sign and verify rerun.json v0.1 bundles for LLM steps."""
    # Warnings (a key file others can read, ...) become one "rerun: warning:" line each.
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", UserWarning)


def main() -> None:
    """Run the click group: an unexpected failure is one stderr line, not a traceback."""
    run_to_the_end(lambda: cli(prog_name="rerun"))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    warn(str(message))
