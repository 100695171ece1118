"""The Signer protocol, the in-memory signer, key URIs and the backend registry.

Signing is the only operation that touches private keys, so it is funnelled
through one narrow protocol. Backends (file, keyring, PKCS#11, third-party)
are found by the scheme of a key URI through the ``agent_rerun.signers``
entry-point group. Nothing here runs at import time: verify never imports a
backend. docs/backends.md is the guide to writing one; the contract is
:class:`Backend`, the optional :class:`RedactsUris`, :class:`ReadsPublicKeys`,
:class:`RotatesKeys`, ``SignerBase.checks_signatures``
and :class:`SignsMany` for signers and, for configuration,
:class:`agent_rerun.config.BackendSection`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar, runtime_checkable

from agent_rerun.errors import SignerError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ENTRY_POINT_GROUP = "agent_rerun.signers"

#: Where to get a backend that is not installed, for the one-line error.
KNOWN_PROVIDERS: dict[str, str] = {
    "keyring": 'pip install "agent-rerun[keyring]"',
    "pkcs11": 'pip install "agent-rerun[pkcs11]"',
    "vault": 'pip install "agent-rerun[vault]"',
}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


@runtime_checkable
class Signer(Protocol):
    """Anything that holds an Ed25519 key and can sign with it.

    Only Ed25519 exists because v0.1 bundles can only say ``"ed25519"``.
    Backends that hold resources (a token session, a key read from a keyring)
    also implement ``close()`` and the context-manager methods; use
    :func:`closing_signer` to treat every signer alike.
    """

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``data``."""
        ...


@runtime_checkable
class SignsMany(Protocol):
    """Optional signer capability: sign a whole batch at once.

    For signers where each signature costs a round trip (a signing service):
    one call signs many payloads, in order, so a batch capture pays the trip
    per batch, not per bundle. :func:`sign_all` uses it when present.
    """

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]: ...


def sign_all(signer: Signer, payloads: Sequence[bytes]) -> list[bytes]:
    """The signatures of ``payloads`` in order, batched when ``signer`` can batch."""
    if isinstance(signer, SignsMany):
        signatures = list(signer.sign_many(payloads))
        if len(signatures) != len(payloads):
            raise SignerError(f"the signer returned {len(signatures)} signatures for "
                              f"{len(payloads)} payloads")
        return signatures
    return [signer.sign(payload) for payload in payloads]


# ``typing.Self`` is Python 3.11+ and typing_extensions is not a dependency: a bound
# TypeVar on ``self`` gives ``with`` the subclass's own type on 3.10 as well.
_SelfBase = TypeVar("_SelfBase", bound="SignerBase")
_SelfClosable = TypeVar("_SelfClosable", bound="ClosableSigner")


@runtime_checkable
class ClosableSigner(Signer, Protocol):
    """A signer that is also a context manager: what :func:`load_signer` returns.

    ``with load_signer(uri) as signer:`` then type-checks for every backend, and
    the key or session a backend holds is released when the block ends.
    """

    def close(self) -> None: ...

    def __enter__(self: _SelfClosable) -> _SelfClosable: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SignerBase:
    """Convenience base giving a signer ``close()`` and context-manager support.

    It also carries the one optional promise a signer can make,
    ``checks_signatures``; signers that do not derive from it make none.
    """

    #: True when every signature ``sign`` returns was already verified against
    #: ``public_key`` (a token key checked in software, or the same Ed25519 code
    #: that verifies), so ``sign_bundle`` skips its own check. Leave it False
    #: unless that is so: the check is what stops a faulty signer's output.
    checks_signatures: ClassVar[bool] = False

    def close(self) -> None:
        """Release whatever the signer holds; the default holds nothing."""

    def __enter__(self: _SelfBase) -> _SelfBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class InMemorySigner(SignerBase):
    """Signs with a raw private key held in this process (quickstart keys, tests)."""

    #: Its signatures come from the same Ed25519 implementation that would check
    #: them, so ``sign_bundle`` does not verify them again (see ``sign_bundle``).
    checks_signatures: ClassVar[bool] = True

    def __init__(self, private_key: bytes | Ed25519PrivateKey) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if isinstance(private_key, Ed25519PrivateKey):
            key = private_key
        else:
            if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
                raise SignerError("an Ed25519 private key is exactly 32 raw bytes")
            key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
        self._key: Ed25519PrivateKey | None = key
        self._public_key = key.public_key().public_bytes_raw()

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        if self._key is None:
            raise SignerError("this signer was closed; load the key again")
        return self._key.sign(data)

    def close(self) -> None:
        self._key = None


def checks_own_signatures(signer: object) -> bool:
    """Whether ``signer`` declared (through :class:`SignerBase`) that it verifies its output."""
    return isinstance(signer, SignerBase) and signer.checks_signatures


def closing_signer(signer: Signer) -> _ClosingSigner:
    """Context manager that closes ``signer`` afterwards if it can be closed."""
    return _ClosingSigner(signer)


class _ClosingSigner:
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def __enter__(self) -> Signer:
        return self._signer

    def __exit__(self, *exc_info: object) -> None:
        close = getattr(self._signer, "close", None)
        if callable(close):
            close()


# ---------------------------------------------------------------- backends

#: Asks the user for a secret. ``prompt(text, confirm)`` returns what was typed;
#: ``confirm`` asks for it twice (new passphrases). Backends receive ``None``
#: when nobody can answer (library use, pipes) and must then fail clearly.
PromptFn = Callable[[str, bool], str]


@dataclass(frozen=True)
class KeyInfo:
    """What a backend can say about a key without exposing it.

    ``uri`` must never carry a secret (a PKCS#11 ``pin-value`` is redacted).
    ``unusable`` says why a listed key cannot sign (an RSA key in an agent), so
    listings show such keys instead of silently dropping them; ``public_key`` is
    then empty.

    """

    uri: str
    public_key: bytes
    description: str = ""
    unusable: str = ""


class Backend(Protocol):
    """The plugin contract: one object per URI scheme, exposed by entry point.

    ``load`` returns a ready Signer (closable when it holds resources);
    ``generate`` creates a key at the URI and must refuse to replace an
    existing one unless ``force``; ``list_keys`` may raise ``SignerError`` when
    the backend cannot enumerate. Errors are ``agent_rerun.errors.SignerError``
    (or subclasses) with a one-line message that never contains a secret.

    A backend whose URIs can carry a secret also implements
    :class:`RedactsUris`; one that needs settings reads its own ``[scheme]``
    section of the config file with :func:`agent_rerun.config.backend_section`.
    See docs/backends.md.
    """

    scheme: str

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> Signer: ...

    def generate(
        self, uri: str, *, force: bool = False, prompt: PromptFn | None = None
    ) -> KeyInfo: ...

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]: ...


@runtime_checkable
class RedactsUris(Protocol):
    """Optional backend capability: spell a URI of its scheme with every secret hidden.

    ``redact_uri`` must never raise and never return any part of a secret, even
    for a URI it cannot parse (hide more rather than less). The CLI prints key
    URIs only through :func:`display_uri`, which calls it.
    """

    def redact_uri(self, uri: str) -> str: ...


@runtime_checkable
class ReadsPublicKeys(Protocol):
    """Optional backend capability: read a key's public half without unlocking it.

    For backends where opening a signer costs a secret (a token PIN) though
    the public key is visible without one. It may still ask through
    ``prompt`` when the public key is hidden too. ``rerun pubkey`` uses it
    through :func:`public_key_of`.
    """

    def public_key(self, uri: str, *, prompt: PromptFn | None = None) -> bytes: ...


@runtime_checkable
class RotatesKeys(Protocol):
    """Optional backend capability: add a new version to a key (a signing service's rotation).

    Returns the new version's :class:`KeyInfo`; older versions stay usable for
    verification until the backend retires them. ``rerun keys rotate`` uses it
    through :func:`rotate_key`.
    """

    def rotate(self, uri: str, *, prompt: PromptFn | None = None) -> KeyInfo: ...


def rotate_key(uri: str, *, prompt: PromptFn | None = None) -> KeyInfo:
    """Rotate the key at ``uri`` where its backend can; others fail in one line saying so."""
    backend = backend_for(uri)
    if not isinstance(backend, RotatesKeys):
        raise SignerError(
            f"the {uri_scheme(uri)!r} backend cannot rotate keys; make a new key with "
            "rerun keygen and add its public key to your trust file")
    return backend.rotate(uri, prompt=prompt)


#: Shown instead of a URI no installed backend can redact.
UNREDACTABLE = "<not shown>"


def display_uri(uri: str) -> str:
    """``uri`` fit to print: its backend's redaction, or only the scheme when none can say.

    A backend without :class:`RedactsUris` declares that its URIs hold no
    secret, so they are shown as given.
    """
    try:
        backend = backend_for(uri)
    except SignerError:
        return f"{uri_scheme(uri)}:{UNREDACTABLE}"
    if isinstance(backend, RedactsUris):
        try:
            return backend.redact_uri(uri)
        except Exception:  # a redactor must not turn a message into a crash
            return f"{uri_scheme(uri)}:{UNREDACTABLE}"
    return uri


def uri_scheme(uri: str) -> str:
    """The scheme of a key URI; plain paths (no scheme) belong to ``file``."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else "file"


def installed_schemes() -> list[str]:
    """Schemes of every backend registered in the entry-point group."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def backend_for(uri: str) -> Backend:
    """Find and import the backend for ``uri``'s scheme, or fail in one line."""
    from importlib.metadata import entry_points

    scheme = uri_scheme(uri)
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == scheme]
    if not matches:
        installed = ", ".join(installed_schemes()) or "none"
        hint = KNOWN_PROVIDERS.get(scheme)
        how = f"; install it with: {hint}" if hint else ""
        raise SignerError(
            f"no signer backend for scheme {scheme!r} (installed: {installed}){how}"
        )
    try:
        backend = matches[0].load()
    except ImportError as exc:
        hint = KNOWN_PROVIDERS.get(scheme, f"the package providing {scheme!r}")
        raise SignerError(
            f"the {scheme!r} signer backend cannot be imported ({exc.name or exc}); "
            f"reinstall it with: {hint}"
        ) from None
    return backend  # type: ignore[no-any-return]


def load_signer(uri: str, *, prompt: PromptFn | None = None) -> ClosableSigner:
    """Open the key at ``uri`` for signing (URI forms: each backend's docs/ page).

    The contract lets a backend return any :class:`Signer`; one that is not a
    context manager is wrapped, so callers can always write ``with``.
    """
    signer = backend_for(uri).load(uri, prompt=prompt)
    if isinstance(signer, ClosableSigner):
        return signer
    return _ClosableAdapter(signer)


class _ClosableAdapter(SignerBase):
    """Gives a plain backend signer ``close()`` and ``with``; closes it if it can close."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    @property
    def public_key(self) -> bytes:
        return self._signer.public_key

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)

    def close(self) -> None:
        close = getattr(self._signer, "close", None)
        if callable(close):
            close()


def public_key_of(uri: str, *, prompt: PromptFn | None = None) -> bytes:
    """The raw public key at ``uri``, without a secret when the backend can manage that."""
    backend = backend_for(uri)
    if isinstance(backend, ReadsPublicKeys):
        return bytes(backend.public_key(uri, prompt=prompt))
    with closing_signer(backend.load(uri, prompt=prompt)) as signer:
        return bytes(signer.public_key)


def generate_key(uri: str, *, force: bool = False, prompt: PromptFn | None = None) -> KeyInfo:
    """Create a new Ed25519 key at ``uri``; refuses to replace one unless ``force``."""
    return backend_for(uri).generate(uri, force=force, prompt=prompt)


def list_keys(uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
    """Enumerate the keys a backend can see at ``uri``."""
    return backend_for(uri).list_keys(uri, prompt=prompt)
