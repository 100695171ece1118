"""SSH signatures (``ssh-keygen -Y sign`` format) made by any agent-rerun signer.

Bundles are not SSH signatures, so to ask the real ``ssh-keygen -Y verify``
whether a trust line we printed admits a key, the tests have that key's own
backend (file, keyring, token, agent) sign a message in OpenSSH's SSHSIG format
(PROTOCOL.sshsig): the signature bytes come from the backend, only the framing
is written here. Imported as a sibling module.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from agent_rerun.pubkey import ssh_wire_blob
from agent_rerun.signer import Signer

_MAGIC = b"SSHSIG"


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def sshsig(signer: Signer, message: bytes, namespace: str = "agent-rerun") -> str:
    """The armored SSH signature of ``message`` by ``signer`` in ``namespace``."""
    digest = hashlib.sha512(message).digest()
    signed = (_MAGIC + _string(namespace.encode()) + _string(b"") + _string(b"sha512")
              + _string(digest))
    signature = _string(b"ssh-ed25519") + _string(signer.sign(signed))
    blob = (_MAGIC + struct.pack(">I", 1) + _string(ssh_wire_blob(signer.public_key))
            + _string(namespace.encode()) + _string(b"") + _string(b"sha512")
            + _string(signature))
    text = base64.b64encode(blob).decode("ascii")
    body = "\n".join(text[i:i + 70] for i in range(0, len(text), 70))
    return f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----\n"


class SubprocessSigner:
    """The key at ``uri`` signing in a fresh ``rerun``-side interpreter, one call per signature.

    For backends whose library reads its configuration once per process (SoftHSM reads
    ``SOFTHSM2_CONF`` when first loaded): the test process may hold another token folder.
    """

    def __init__(self, uri: str, env: Mapping[str, str]) -> None:
        self.uri = uri
        self.env = dict(env)
        self.public_key = base64.b64decode(self._run("public", b""))

    def sign(self, data: bytes) -> bytes:
        return base64.b64decode(self._run("sign", data))

    def _run(self, what: str, data: bytes) -> bytes:
        code = ("import base64, sys\n"
                "from agent_rerun.signer import load_signer\n"
                "with load_signer(sys.argv[1]) as s:\n"
                "    out = s.public_key if sys.argv[2] == 'public' else "
                "s.sign(sys.stdin.buffer.read())\n"
                "print(base64.b64encode(out).decode())\n")
        done = subprocess.run([sys.executable, "-c", code, self.uri, what], input=data,
                              capture_output=True, env=self.env, timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout.strip()


def ssh_keygen_verify(allowed_signers: Path, principal: str, message: bytes, signature: str,
                      *, namespace: str = "agent-rerun",
                      revoked: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``ssh-keygen -Y verify`` of ``signature`` over ``message`` against ``allowed_signers``."""
    sig_path = allowed_signers.with_name(allowed_signers.name + ".sig")
    sig_path.write_text(signature)
    extra = ["-r", str(revoked)] if revoked is not None else []
    return subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
         "-n", namespace, "-s", str(sig_path), *extra],
        input=message.decode(), capture_output=True, text=True, timeout=30, check=False)


def ssh_keygen_find_principals(allowed_signers: Path, signature: str) -> list[str]:
    """The principals ``ssh-keygen -Y find-principals`` names for the signature's key."""
    sig_path = allowed_signers.with_name(allowed_signers.name + ".sig")
    sig_path.write_text(signature)
    done = subprocess.run(
        ["ssh-keygen", "-Y", "find-principals", "-f", str(allowed_signers), "-s",
         str(sig_path)], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.split()
