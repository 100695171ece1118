"""The built-in ``ssh-agent`` signer backend: Ed25519 keys held by an SSH agent.

The private key never reaches agent-rerun; the agent signs. Only the standard
library talks to the agent (two messages of the agent protocol), so nothing
extra is installed. This package is imported only when an ``ssh-agent:`` URI is
used, never by ``import agent_rerun`` or by verify.
"""
