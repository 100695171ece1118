"""The ``rerun`` command line. ``main`` is the console-script entry point.

This package's own import loads no click: ``rerun verify BUNDLE ACTUAL`` is
started once per bundle in many CI jobs, and for exactly that form (no
options) ``agent_rerun.cli.quick_verify`` reaches the verify code directly,
printing byte for byte what the click command prints. Every other command
line goes through the click group in ``agent_rerun.cli.app``.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """Console-script entry point (see ``agent_rerun.cli.app.main``)."""
    from agent_rerun.cli.quick_verify import quick_verify_paths

    paths = quick_verify_paths(sys.argv[1:])
    if paths is not None:
        from agent_rerun.cli.quick_verify import run_quick_verify

        run_quick_verify(*paths)  # exits
    from agent_rerun.cli.app import main as click_main

    click_main()


def __getattr__(name: str) -> Any:
    """``cli``, ``COMMANDS`` and ``LazyGroup`` live in ``agent_rerun.cli.app``,
    loaded (with click) on first use."""
    if name in ("cli", "COMMANDS", "LazyGroup"):
        from agent_rerun.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'agent_rerun.cli' has no attribute {name!r}")
