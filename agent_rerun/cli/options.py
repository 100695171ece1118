"""Options several commands share, declared once so their spelling and help never drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def trust_options(func: F) -> F:
    """``--trusted-key`` (repeatable), ``--trusted-keys FILE`` and ``--revoked-keys FILE``
    (repeatable), passed as ``trusted_key_texts``, ``trust_file`` and ``revoked_files``."""
    decorators = [
        click.option("--trusted-key", "trusted_key_texts", multiple=True, metavar="KEY",
                     help="A trusted signer: base64 raw public key or an 'ssh-ed25519 AAAA...' "
                          "line. Repeatable."),
        click.option("--trusted-keys", "trust_file", metavar="FILE",
                     help="Trusted signers in OpenSSH allowed_signers format (or base64 key "
                          "per line)."),
        click.option("--revoked-keys", "revoked_files", multiple=True, metavar="FILE",
                     help="Revoked signers: an OpenSSH KRL (ssh-keygen -k) or a list of public "
                          "keys. Repeatable; adds to [verify] revoked_keys_file."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
