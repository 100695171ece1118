"""PKCS#11 signer backend for agent-rerun: Ed25519 keys that never leave the token.

Registered for the ``pkcs11`` URI scheme in the ``agent_rerun.signers``
entry-point group; the core imports it only when a ``pkcs11:`` URI is used.
"""

from __future__ import annotations

from agent_rerun_pkcs11.backend import Pkcs11Backend, backend, list_token_keys
from agent_rerun_pkcs11.keygen import generate_on_token
from agent_rerun_pkcs11.signer import Pkcs11Signer, open_signer
from agent_rerun_pkcs11.uri import Pkcs11Uri, parse

__all__ = [
    "Pkcs11Backend",
    "Pkcs11Signer",
    "Pkcs11Uri",
    "backend",
    "generate_on_token",
    "list_token_keys",
    "open_signer",
    "parse",
]
