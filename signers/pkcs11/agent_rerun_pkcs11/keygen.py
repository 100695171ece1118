"""Generate an Ed25519 key pair inside the token, where it stays.

The private half is created sensitive, non-extractable and able to sign and
nothing else, so not even the token's owner can export it. Key generation
never replaces anything: an existing object with the same label or id is a
refusal, because destroying a token key cannot be undone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from agent_rerun.errors import SignerError
from agent_rerun.signer import KeyInfo, PromptFn
from agent_rerun_pkcs11.errors import EDDSA_PRODUCTS, VENDOR_TOOL_HINT, describe
from agent_rerun_pkcs11.keys import EDWARDS25519_PARAMS, raw_public_key
from agent_rerun_pkcs11.session import OpenToken, open_token
from agent_rerun_pkcs11.token import token_uri
from agent_rerun_pkcs11.uri import Pkcs11Uri

#: Length of the random CKA_ID given when the URI names none.
RANDOM_ID_BYTES = 8


def private_template() -> dict[Any, Any]:
    """Attributes of the private key: on the token, secret, and for signing only."""
    from pkcs11 import Attribute

    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
        Attribute.SIGN_RECOVER: False,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
        Attribute.DERIVE: False,
    }


def public_template() -> dict[Any, Any]:
    """Attributes of the public key: on the token, readable without login, verify only."""
    from pkcs11 import Attribute

    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.VERIFY: True,
        Attribute.ENCRYPT: False,
        Attribute.WRAP: False,
        Attribute.EC_PARAMS: EDWARDS25519_PARAMS,
    }


def generate_on_token(
    uri: Pkcs11Uri,
    *,
    prompt: PromptFn | None = None,
    environ: Mapping[str, str] | None = None,
) -> KeyInfo:
    """Create the key pair the URI names (``object=`` required) and return its full URI."""
    if not uri.object:
        raise SignerError(
            "pkcs11 keygen needs a label: add object=NAME to the URI "
            "(e.g. pkcs11:token=MyToken;object=rerun-signing)"
        )
    if uri.type not in (None, "private"):
        raise SignerError(f"pkcs11 keygen: type={uri.type} cannot name a new key pair")
    opened = open_token(uri, prompt=prompt, rw=True, action="generating a key", environ=environ)
    try:
        return _generate(opened, uri)
    finally:
        opened.close()


def _generate(opened: OpenToken, uri: Pkcs11Uri) -> KeyInfo:
    from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag
    from pkcs11.exceptions import PKCS11Error

    label = opened.label
    if Mechanism.EC_EDWARDS_KEY_PAIR_GEN not in opened.token.slot.get_mechanisms():
        raise SignerError(
            f"token {label!r} cannot generate Ed25519 keys (no CKM_EC_EDWARDS_KEY_PAIR_GEN; "
            f"it works with {EDDSA_PRODUCTS}); or {VENDOR_TOOL_HINT}"
        )
    key_id = uri.id if uri.id is not None else os.urandom(RANDOM_ID_BYTES)
    _refuse_existing(opened, uri.object or "", key_id, uri)
    try:
        public, _private = opened.session.generate_keypair(
            KeyType.EC_EDWARDS,
            store=True,
            label=uri.object,
            id=key_id,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template=public_template(),
            private_template=private_template(),
        )
        public_key = raw_public_key(public[Attribute.EC_POINT])
    except PKCS11Error as exc:
        error = describe(exc, token=label, action="generating an Ed25519 key pair")
        raise SignerError(
            f"{error}; if this device restricts key generation, {VENDOR_TOOL_HINT}"
        ) from None
    full = token_uri(opened.token, uri).replace(object=uri.object, id=key_id)
    return KeyInfo(
        uri=full.format(pin="drop"),
        public_key=public_key,
        description=f"Ed25519 key {uri.object!r} (id {key_id.hex()}) on token {label!r}",
    )


def _refuse_existing(opened: OpenToken, name: str, key_id: bytes, uri: Pkcs11Uri) -> None:
    from pkcs11 import Attribute
    from pkcs11.exceptions import PKCS11Error

    try:
        by_label = next(iter(opened.session.get_objects({Attribute.LABEL: name})), None)
        by_id = next(iter(opened.session.get_objects({Attribute.ID: key_id})), None)
    except PKCS11Error as exc:
        raise describe(exc, token=opened.label, action="checking for existing keys") from None
    clash = "label" if by_label is not None else "id" if by_id is not None else None
    if clash:
        value = repr(name) if clash == "label" else key_id.hex()
        raise SignerError(
            f"token {opened.label!r} already holds an object with {clash} {value}; "
            "refusing to create a second one (token keys are never replaced: pick another "
            f"object= name, or delete the old key with the token's own tool); see: "
            f"rerun keys list '{token_uri(opened.token, uri).format(pin='drop')}'"
        )
