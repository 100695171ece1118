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
from typing import Literal

from agent_rerun.errors import SignerError
from agent_rerun.sigcheck import BatchChecker, CheckerGone
from agent_rerun.signer import SignerBase
from agent_rerun_vault.client import Cluster, TooComplex, TooLarge
from agent_rerun_vault.transit import sign_batch

#: The default listener refuses batches of about 500 strings or more.
MAX_BATCH_ITEMS = 499
#: Keep each request well under the 32 MiB request cap (base64 grows input by 4/3).
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: A ``sign_many`` of this many payloads or more is checked in a helper process:
#: it starts in about 0.1 s and saves about 0.1 ms a signature.
CHECK_APART_FROM = 1000


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
        #: The helper process checking large batches; False once it could not be used.
        self._batch_checker: BatchChecker | Literal[False] | None = None

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        """One signature, one request (no thread: nothing to overlap)."""
        if self._cluster is None:
            raise SignerError(f"the signer for {self.uri} was closed; load the key again")
        signatures = self._request([data])
        self._check([data], signatures)
        return signatures[0]

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        """Signatures of ``payloads`` in order, each verified, in as few requests as allowed.

        The next request is sent while the last answer's signatures are checked,
        so the server's signing and our checking overlap. A batch of at least
        ``CHECK_APART_FROM`` is checked in a helper process
        (:class:`agent_rerun.sigcheck.BatchChecker`), so the checks do not hold
        this process's GIL either; the signatures are returned only once every
        answer is in.
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        if self._cluster is None:
            raise SignerError(f"the signer for {self.uri} was closed; load the key again")
        chunks = list(self._chunks(payloads))
        checker = self._checker() if len(payloads) >= CHECK_APART_FROM else None
        sent: list[tuple[Sequence[bytes], list[bytes]]] = []  # to the checker, not answered yet
        signatures: list[bytes] = []
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vault-sign") as pool:
                pending: Future[list[bytes]] | None = None
                for index, chunk in enumerate(chunks):
                    if pending is None:
                        pending = pool.submit(self._request, chunk)
                    answered = pending.result()
                    pending = (pool.submit(self._request, chunks[index + 1])
                               if index + 1 < len(chunks) else None)
                    if checker is not None:
                        try:
                            checker.submit(chunk, answered)
                            sent.append((chunk, answered))
                        except CheckerGone:
                            self._lose_checker(sent)
                            checker, sent = None, []
                    if checker is None:
                        self._check(chunk, answered)
                    signatures.extend(answered)
        except BaseException:
            # Answers it may still owe would be taken for the next batch's: a new
            # checker next time (unless it was lost already and checks happen here).
            if checker is not None and self._batch_checker is checker:
                self._batch_checker = None
                checker.close()
            raise
        if checker is not None:  # cut short in here, it refuses all further use
            self._settle(checker, sent)
        return signatures

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        self._cluster = None
        if isinstance(self._batch_checker, BatchChecker):
            self._batch_checker.close()
        self._batch_checker = None

    def _checker(self) -> BatchChecker | None:
        """The helper process that checks large batches, started on first use; None when
        it cannot be (then, and from then on, batches are checked in this process)."""
        if self._batch_checker is None:
            try:
                self._batch_checker = BatchChecker(self._public_key)
            except CheckerGone:
                self._batch_checker = False
        return self._batch_checker if isinstance(self._batch_checker, BatchChecker) else None

    def _lose_checker(self, sent: Sequence[tuple[Sequence[bytes], list[bytes]]]) -> None:
        """The helper is gone: check here what it was sent, and from now on."""
        if isinstance(self._batch_checker, BatchChecker):
            self._batch_checker.close()
        self._batch_checker = False
        for chunk, answered in sent:
            self._check(chunk, answered)

    def _settle(self, checker: BatchChecker, sent: Sequence[tuple[Sequence[bytes],
                                                                  list[bytes]]]) -> None:
        """Wait for the helper's verdict on every chunk sent to it."""
        try:
            failures = checker.failures()
        except CheckerGone:
            self._lose_checker(sent)
            return
        if any(failure >= 0 for failure in failures):
            raise self._unusable()

    def _chunks(self, payloads: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
        """Even chunks of at most ``batch_items`` and about ``MAX_BATCH_BYTES`` each.

        Even sizes (1,000 as 334 + 333 + 333, not 499 + 499 + 2) keep the
        pipeline in ``sign_many`` busy to the last request.
        """
        count = len(payloads)
        if not count:
            return
        pieces = -(-count // self.batch_items)
        target = -(-count // pieces)
        start = 0
        while start < count:
            end, size = start, 0
            while end < count and end - start < target:
                size += len(payloads[end])
                if end > start and size > MAX_BATCH_BYTES:
                    break
                end += 1
            yield payloads[start:end]
            start = end

    def _request(self, chunk: Sequence[bytes]) -> list[bytes]:
        """Sign ``chunk`` in one request, or in halves when the server finds it too big."""
        assert self._cluster is not None
        if len(chunk) > self.batch_items:  # cut before the server refuses, once it has
            step = self.batch_items
            return [signature for start in range(0, len(chunk), step)
                    for signature in self._request(chunk[start:start + step])]
        try:
            return sign_batch(self._cluster, self.key, self.version, chunk)
        except (TooComplex, TooLarge) as exc:
            if len(chunk) == 1:
                if isinstance(exc, TooLarge):
                    raise SignerError(
                        f"vault: the bundle's signing payload ({len(chunk[0])} bytes) is larger "
                        "than the server accepts (max_request_size, 32 MiB of request by "
                        "default)") from None
                raise
            # Shrink and remember it, so later chunks are cut smaller from the start.
            self.batch_items = max(1, len(chunk) // 2)
            half = len(chunk) // 2
            return self._request(chunk[:half]) + self._request(chunk[half:])

    def _check(self, chunk: Sequence[bytes], signatures: Sequence[bytes]) -> None:
        from cryptography.exceptions import InvalidSignature

        for payload, signature in zip(chunk, signatures, strict=True):
            try:
                self._verifier.verify(signature, payload)
            except InvalidSignature:
                raise self._unusable() from None

    def _unusable(self) -> SignerError:
        return SignerError(f"vault: the server returned a signature that does not verify "
                           f"with version {self.version} of {self.key!r}; nothing was written")
