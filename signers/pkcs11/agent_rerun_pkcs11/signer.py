"""A Signer whose private key never leaves the token.

One login and one session serve every signature until ``close()``, so a batch
capture pays for the login once. Each signature is checked in software
against the token's public key before it is returned: a faulty token must
fail here, not produce a bundle that fails verification later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agent_rerun.errors import SignerError
from agent_rerun.signer import PromptFn, SignerBase
from agent_rerun_pkcs11.errors import EDDSA_PRODUCTS, describe, key_function_not_permitted
from agent_rerun_pkcs11.keys import TokenKey, find_keys
from agent_rerun_pkcs11.session import OpenToken, open_token
from agent_rerun_pkcs11.token import token_uri
from agent_rerun_pkcs11.uri import Pkcs11Uri

if TYPE_CHECKING:
    import pkcs11
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: How many signatures the token thread may make before the check catches up: enough
#: to keep the token busy, few enough that a failure wastes little token time.
SIGN_AHEAD = 8

#: What Yubico documents as the CKM_EDDSA message buffer, for CKR_DATA_LEN_RANGE hints.
DEVICE_LIMITS = "YubiKey about 4 KB, YubiHSM 2 about 3 KB"


class Pkcs11Signer(SignerBase):
    """Signs with CKM_EDDSA on one token key over one logged-in session."""

    #: Every signature returned was already verified against ``public_key`` in
    #: software, so callers (``sign_bundle``) need not pay for a second check.
    checks_signatures = True

    def __init__(self, opened: OpenToken, key: TokenKey, uri: Pkcs11Uri) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if key.private is None:
            raise SignerError(f"no private key object for {uri}")
        self._opened: OpenToken | None = opened
        self._private: pkcs11.PrivateKey | None = key.private
        self._public_key = key.public_key
        self._verifier: Ed25519PublicKey = Ed25519PublicKey.from_public_bytes(key.public_key)
        self.uri = uri
        self.token_label = opened.label

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        signature = self.sign_unchecked(data)
        self._check(data, signature)
        return signature

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        """Signatures of ``payloads`` in order, each checked, the token never idle on our check.

        python-pkcs11 releases the GIL inside C_Sign, so a second thread keeps
        the token signing payload after payload while this one checks the
        signatures already made: the software check costs no token time. The
        first failure (the token's, or a signature that does not verify) stops
        the token thread (at most ``SIGN_AHEAD`` signatures ahead) and is
        raised here, as ``sign`` raises it; nothing signed after it is returned.
        """
        import threading
        from queue import SimpleQueue

        if self._private is None:
            raise SignerError(f"the signer for {self.uri} was closed; load the key again")
        if len(payloads) < 2:  # nothing to overlap
            return [self.sign(data) for data in payloads]
        made: SimpleQueue[bytes | BaseException] = SimpleQueue()
        ahead = threading.Semaphore(SIGN_AHEAD)
        stop = threading.Event()

        def sign_in_order() -> None:
            for data in payloads:
                ahead.acquire()
                if stop.is_set():
                    return
                try:
                    made.put(self.sign_unchecked(data))
                except BaseException as exc:  # raised in the calling thread instead
                    made.put(exc)
                    return

        worker = threading.Thread(target=sign_in_order, name="pkcs11-sign", daemon=True)
        worker.start()
        signatures: list[bytes] = []
        try:
            for data in payloads:
                signature = made.get()
                ahead.release()
                if isinstance(signature, BaseException):
                    raise signature
                self._check(data, signature)
                signatures.append(signature)
        finally:
            stop.set()
            ahead.release()  # a token thread waiting for room sees the stop
            worker.join()  # the session is free again before anyone else signs
        return signatures

    def sign_unchecked(self, data: bytes) -> bytes:
        """C_Sign alone, errors turned into one-line ``SignerError``s, for a caller that
        checks the signature itself (``sign`` and ``sign_many`` do)."""
        from pkcs11 import Mechanism
        from pkcs11.exceptions import DataLenRange, PKCS11Error

        private = self._private
        if private is None:
            raise SignerError(f"the signer for {self.uri} was closed; load the key again")
        try:
            # python-pkcs11 mixes SignMixin into the key classes at run time; its
            # PrivateKey stub does not declare sign().
            sign = private.sign  # type: ignore[attr-defined]
            return bytes(sign(data, mechanism=Mechanism.EDDSA))
        except DataLenRange:
            raise SignerError(
                f"token {self.token_label!r} cannot sign {len(data)} bytes in one CKM_EDDSA "
                f"operation (CKR_DATA_LEN_RANGE; device limits: {DEVICE_LIMITS}); "
                "this bundle is too large for the device: use a smaller bundle or another key"
            ) from None
        except PKCS11Error as exc:
            if key_function_not_permitted(exc):
                raise _not_allowed(self.uri) from None
            raise describe(exc, token=self.token_label, action="signing") from None

    def _check(self, data: bytes, signature: bytes) -> None:
        """Refuse a token signature that does not verify against the token's public key."""
        from cryptography.exceptions import InvalidSignature

        try:
            self._verifier.verify(signature, data)
        except InvalidSignature:
            raise SignerError(
                f"token {self.token_label!r} returned a signature ({len(signature)} bytes) that "
                f"does not verify against its public key for {self.uri}; not using it"
            ) from None

    def close(self) -> None:
        """Log out and close the session; signing afterwards fails clearly."""
        self._private = None
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()

    def __repr__(self) -> str:
        state = "open" if self._opened is not None else "closed"
        return f"<Pkcs11Signer {self.uri} ({state})>"


def open_signer(
    uri: Pkcs11Uri,
    *,
    prompt: PromptFn | None = None,
    environ: Mapping[str, str] | None = None,
) -> Pkcs11Signer:
    """Log in once and return a signer for the single Ed25519 key the URI names."""
    from pkcs11 import Mechanism

    opened = open_token(uri, prompt=prompt, action="opening a signing session", environ=environ)
    try:
        if Mechanism.EDDSA not in opened.token.slot.get_mechanisms():
            raise SignerError(
                f"token {opened.label!r} does not offer CKM_EDDSA (Ed25519 signing); "
                f"it works with {EDDSA_PRODUCTS}"
            )
        key = _one_key(opened, uri)
        if not key.can_sign:
            raise _not_allowed(key.uri(token_uri(opened.token, uri)))
        return Pkcs11Signer(opened, key, key.uri(token_uri(opened.token, uri)))
    except BaseException:
        opened.close()
        raise


def _one_key(opened: OpenToken, uri: Pkcs11Uri) -> TokenKey:
    found = find_keys(opened.session, uri, opened.label)
    keys = [k for k in found if k.private is not None]
    base = token_uri(opened.token, uri)
    if not keys:
        wanted = _key_selector(uri)
        orphans = [k for k in found if k.private is None]
        if len(orphans) == 1 and uri.type != "public":
            from agent_rerun_pkcs11.keygen import orphan_hint

            raise SignerError(
                f"no Ed25519 private key on token {opened.label!r} matches {wanted}: only an "
                "orphaned public-key object does (an interrupted keygen leaves one); to "
                f"replace it, {orphan_hint(orphans[0].uri(base).format(pin='drop'))}"
            )
        raise SignerError(
            f"no Ed25519 private key on token {opened.label!r} matches {wanted}; "
            f"see: rerun keys list '{base.format(pin='drop')}'"
        )
    if len(keys) > 1:
        listing = "; ".join(k.uri(base).format(pin="drop") for k in keys)
        raise SignerError(
            f"{len(keys)} Ed25519 keys on token {opened.label!r} match {_key_selector(uri)}; "
            f"name one by object= and id=: {listing}"
        )
    return keys[0]


def _key_selector(uri: Pkcs11Uri) -> str:
    parts = []
    if uri.object is not None:
        parts.append(f"object={uri.object!r}")
    if uri.id is not None:
        parts.append(f"id={uri.id.hex()}")
    return " ".join(parts) if parts else "the URI (no object= or id=)"


def _not_allowed(uri: Pkcs11Uri) -> SignerError:
    return SignerError(
        f"key {uri.format(pin='drop')} is not allowed to sign (CKA_SIGN is false); "
        "generate a signing key with 'rerun keygen'"
    )
