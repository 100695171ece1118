"""The ``rerun`` command line: thin commands that parse, call the library, print, exit.

Each command lives in its own module and is registered here; the modules only
import click and agent_rerun's light modules at load time.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

import click

from agent_rerun._version import __version__
from agent_rerun.cli.capture_cmd import capture_command, sign_command
from agent_rerun.cli.common import EXIT_FAILED, warn
from agent_rerun.cli.inspect_cmd import inspect_command
from agent_rerun.cli.keys_cmd import keygen_command, keys_group, pubkey_command
from agent_rerun.cli.verify_cmd import verify_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rerun")
def cli() -> None:
    """Capture, sign and verify rerun.json v0.1 bundles for LLM steps."""
    # Warnings (a key file others can read, ...) become one "rerun: warning:" line each.
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", UserWarning)


cli.add_command(capture_command)
cli.add_command(sign_command)
cli.add_command(verify_command)
cli.add_command(inspect_command)
cli.add_command(keygen_command)
cli.add_command(pubkey_command)
cli.add_command(keys_group)


def main() -> None:
    """Console-script entry point: an unexpected failure is one stderr line, not a traceback.

    ``RERUN_DEBUG=1`` shows the traceback of an unexpected failure for bug reports.
    """
    try:
        cli(prog_name="rerun")
    except KeyboardInterrupt:
        click.echo("rerun: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RERUN_DEBUG"):
            raise
        click.echo(f"rerun: internal error: {type(exc).__name__}: {exc} "
                   "(set RERUN_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_FAILED)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    warn(str(message))
