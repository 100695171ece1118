"""OpenBao / HashiCorp Vault Transit signer backend for agent-rerun.

Registered for the ``vault`` URI scheme in the ``agent_rerun.signers``
entry-point group; the core imports it only when a ``vault:`` URI is used.
"""

from __future__ import annotations

from agent_rerun_vault.backend import VaultBackend, backend
from agent_rerun_vault.signer import VaultSigner
from agent_rerun_vault.uri import VaultUri, parse, redact

__all__ = ["VaultBackend", "VaultSigner", "VaultUri", "backend", "parse", "redact"]
