"""OS keyring signer backend for agent-rerun (``keyring:NAME[?service=S]``).

Registered in the ``agent_rerun.signers`` entry-point group as ``keyring``;
agent-rerun imports this package only when a ``keyring:`` URI is used.
"""

from __future__ import annotations

from agent_rerun_keyring.backend import KeyringKeyBackend, KeyringSigner
from agent_rerun_keyring.entry_format import PREFIX as ENTRY_PREFIX
from agent_rerun_keyring.store import ALLOW_INSECURE_ENV
from agent_rerun_keyring.uri import DEFAULT_SERVICE, KeyringRef, parse_keyring_uri

#: The object the entry point names.
backend = KeyringKeyBackend()

__all__ = [
    "ALLOW_INSECURE_ENV",
    "DEFAULT_SERVICE",
    "ENTRY_PREFIX",
    "KeyringKeyBackend",
    "KeyringRef",
    "KeyringSigner",
    "backend",
    "parse_keyring_uri",
]
