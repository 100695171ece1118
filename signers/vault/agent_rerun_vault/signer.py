"""A Signer whose Ed25519 key never leaves the Transit engine.

One login serves every signature until ``close()`` (and is renewed when its
token expires), and ``sign_many`` sends a whole batch through ``batch_input``
in requests sized to the server's limits. The key version is fixed when the
signer opens, so a rotation in the middle of a batch cannot mix keys. Every
signature is checked in software against that version's public key before it
is returned: a faulty or hostile server must fail here, not in a verifier.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from agent_rerun.errors import SignerError
from agent_rerun.signer import SignerBase
from agent_rerun_vault.client import Cluster, TooComplex, TooLarge
from agent_rerun_vault.transit import sign_batch

#: The default listener refuses batches of about 500 strings or more.
MAX_BATCH_ITEMS = 499
#: Keep each request well under the 32 MiB request cap (base64 grows input by 4/3).
MAX_BATCH_BYTES = 8 * 1024 * 1024


class VaultSigner(SignerBase):
    """Signs with one version of one Transit key, through one logged-in cluster client."""

    checks_signatures = True

    def __init__(self, cluster: Cluster, key: str, version: int, public_key: bytes,
                 shown_uri: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self._cluster: Cluster | None = cluster
        self.key = key
        self.version = version
        self._public_key = public_key
        self._verifier = Ed25519PublicKey.from_public_bytes(public_key)
        self.uri = shown_uri
        self.batch_items = MAX_BATCH_ITEMS

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        return self.sign_many([data])[0]

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        """Signatures of ``payloads`` in order, each verified, in as few requests as allowed."""
        signatures: list[bytes] = []
        for chunk in self._chunks(payloads):
            signatures.extend(self._sign_chunk(chunk))
        return signatures

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        self._cluster = None

    def _chunks(self, payloads: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
        start = 0
        while start < len(payloads):
            end, size = start, 0
            while end < len(payloads) and end - start < self.batch_items:
                size += len(payloads[end])
                if end > start and size > MAX_BATCH_BYTES:
                    break
                end += 1
            yield payloads[start:end]
            start = end

    def _sign_chunk(self, chunk: Sequence[bytes]) -> list[bytes]:
        from cryptography.exceptions import InvalidSignature

        if self._cluster is None:
            raise SignerError(f"the signer for {self.uri} was closed; load the key again")
        try:
            signatures = sign_batch(self._cluster, self.key, self.version, chunk)
        except (TooComplex, TooLarge) as exc:
            if len(chunk) == 1:
                if isinstance(exc, TooLarge):
                    raise SignerError(
                        f"vault: the bundle's signing payload ({len(chunk[0])} bytes) is larger "
                        "than the server accepts (max_request_size, 32 MiB of request by "
                        "default)") from None
                raise
            # Shrink and remember it, so the rest of the batch does not hit the limit again.
            self.batch_items = max(1, min(self.batch_items, len(chunk)) // 2)
            half = len(chunk) // 2
            return self._sign_chunk(chunk[:half]) + self._sign_chunk(chunk[half:])
        for payload, signature in zip(chunk, signatures, strict=True):
            try:
                self._verifier.verify(signature, payload)
            except InvalidSignature:
                raise SignerError(f"vault: the server returned a signature that does not "
                                  f"verify with version {self.version} of {self.key!r}; "
                                  "nothing was written") from None
        return signatures
