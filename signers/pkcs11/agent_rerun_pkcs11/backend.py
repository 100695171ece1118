"""The ``pkcs11`` backend object the core finds through the entry point.

It only parses the URI and hands each job to the module that does it, so every
job stays small and testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping

# Imported here, not lazily, so a missing python-pkcs11 fails when the core loads
# the entry point, which turns it into one line saying what to install.
import pkcs11  # noqa: F401

from agent_rerun.signer import KeyInfo, PromptFn
from agent_rerun_pkcs11.keygen import generate_on_token, orphan_hint
from agent_rerun_pkcs11.keys import find_keys
from agent_rerun_pkcs11.pin import PinUnavailable
from agent_rerun_pkcs11.session import OpenToken, open_library, open_token
from agent_rerun_pkcs11.signer import Pkcs11Signer, open_signer
from agent_rerun_pkcs11.token import initialised_tokens, matches, token_uri
from agent_rerun_pkcs11.uri import Pkcs11Uri, parse, redact


class Pkcs11Backend:
    """Ed25519 keys on PKCS#11 tokens, named by RFC 7512 URIs."""

    scheme = "pkcs11"

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> Pkcs11Signer:
        return open_signer(parse(uri), prompt=prompt)

    def generate(
        self, uri: str, *, force: bool = False, prompt: PromptFn | None = None
    ) -> KeyInfo:
        """Generate on the token; ``force`` removes only an orphaned public-key object.

        Token keys are never replaced; see :mod:`agent_rerun_pkcs11.keygen`.
        """
        return generate_on_token(parse(uri), force=force, prompt=prompt)

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
        return list_token_keys(parse(uri), prompt=prompt)

    def public_key(self, uri: str, *, prompt: PromptFn | None = None) -> bytes:
        """The public key, read without a PIN when the token shows it to anyone."""
        return token_public_key(parse(uri), prompt=prompt)

    def redact_uri(self, uri: str) -> str:
        """The URI with its pin-value hidden; unparseable text loses its whole query."""
        return redact(uri)


def list_token_keys(
    uri: Pkcs11Uri,
    *,
    prompt: PromptFn | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[KeyInfo]:
    """Ed25519 keys on every token the URI matches, each with a URI to paste into --key.

    Logging in shows private keys too; it happens only when the URI selects a
    single token, so one PIN is never tried on several tokens. Without a
    login (several tokens, or no PIN available) public key objects are listed.
    After a login, a public key without its private key is listed as an orphan
    (left by an interrupted keygen) with the command that removes it.
    """
    lib, _ = open_library(uri, environ)
    tokens = [t for t in initialised_tokens(lib) if matches(lib, t, uri)]
    infos: list[KeyInfo] = []
    for token in tokens:
        single = token_uri(token, uri).replace(
            pin_value=uri.pin_value, object=uri.object, id=uri.id, type=uri.type
        )
        opened, sees_private = _open_for_listing(single, prompt, environ,
                                                 login=len(tokens) == 1)
        try:
            base = token_uri(token, uri)
            for key in find_keys(opened.session, single, token.label):
                kind = "can sign" if key.can_sign else (
                    "public key object" if key.private is None else "NOT allowed to sign"
                )
                key_uri = key.uri(base).format(pin="drop")
                description = (f"token {token.label!r}: Ed25519 key {key.label!r} "
                               f"id {key.id.hex() or '-'} ({kind})")
                orphan = ""
                if key.private is None and sees_private and uri.type != "public":
                    orphan = ("orphaned public-key object: its private key is not on the "
                              f"token (an interrupted keygen leaves one); {orphan_hint(key_uri)}")
                infos.append(KeyInfo(uri=key_uri, public_key=key.public_key,
                                     description=description, unusable=orphan))
        finally:
            opened.close()
    return infos


def token_public_key(
    uri: Pkcs11Uri,
    *,
    prompt: PromptFn | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The public key the URI names; logs in only when no single public object shows it.

    Each login spends a PIN try and may need someone at a terminal, while
    keygen makes public objects readable without login, as most tools do.
    """
    opened = open_token(uri, prompt=None, login=False, action="reading a public key",
                        environ=environ)
    try:
        visible = find_keys(opened.session, uri, opened.label)
    finally:
        opened.close()
    if len(visible) == 1:
        return visible[0].public_key
    # Hidden (CKA_PRIVATE public object) or ambiguous: the signer path logs in
    # and names the problem precisely.
    signer = open_signer(uri, prompt=prompt, environ=environ)
    try:
        return signer.public_key
    finally:
        signer.close()


def _open_for_listing(
    uri: Pkcs11Uri,
    prompt: PromptFn | None,
    environ: Mapping[str, str] | None,
    *,
    login: bool,
) -> tuple[OpenToken, bool]:
    """The session, and whether it sees private objects (so a lone public key is an orphan)."""
    from pkcs11 import TokenFlag

    if login:
        try:
            return open_token(uri, prompt=prompt, action="listing keys", environ=environ), True
        except PinUnavailable:
            pass  # public objects are still worth listing
    opened = open_token(uri, prompt=None, login=False, action="listing keys", environ=environ)
    return opened, not opened.token.flags & TokenFlag.LOGIN_REQUIRED


backend = Pkcs11Backend()
