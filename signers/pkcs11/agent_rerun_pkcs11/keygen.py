"""Generate an Ed25519 key pair inside the token, where it stays.

The private half is created sensitive, non-extractable and able to sign and
nothing else, so not even the token's owner can export it. Key generation
never replaces a key: an existing object with the same label or id is a
refusal, because destroying a token key cannot be undone.

The one exception is an *orphan*: a public-key object whose private key is not
on the token, which a keygen killed between the token's two object writes
leaves behind (it blocks its label for good). Nothing secret is lost by
removing it, so ``--force`` does, and the refusal says so. A keygen that fails
in-process removes whatever it had created before it raises.
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
    force: bool = False,
    prompt: PromptFn | None = None,
    environ: Mapping[str, str] | None = None,
) -> KeyInfo:
    """Create the key pair the URI names (``object=`` required) and return its full URI.

    ``force`` removes an orphaned public-key object holding the label or id
    first; it never removes a private key.
    """
    if not uri.object:
        raise SignerError(
            "pkcs11 keygen needs a label: add object=NAME to the URI "
            "(e.g. pkcs11:token=MyToken;object=rerun-signing)"
        )
    if uri.type not in (None, "private"):
        raise SignerError(f"pkcs11 keygen: type={uri.type} cannot name a new key pair")
    opened = open_token(uri, prompt=prompt, rw=True, action="generating a key", environ=environ)
    try:
        return _generate(opened, uri, force=force)
    finally:
        opened.close()


def _generate(opened: OpenToken, uri: Pkcs11Uri, *, force: bool) -> KeyInfo:
    from pkcs11 import Attribute, Mechanism
    from pkcs11.exceptions import PKCS11Error

    label = opened.label
    if Mechanism.EC_EDWARDS_KEY_PAIR_GEN not in opened.token.slot.get_mechanisms():
        raise SignerError(
            f"token {label!r} cannot generate Ed25519 keys (no CKM_EC_EDWARDS_KEY_PAIR_GEN; "
            f"it works with {EDDSA_PRODUCTS}); or {VENDOR_TOOL_HINT}"
        )
    key_id = uri.id if uri.id is not None else os.urandom(RANDOM_ID_BYTES)
    _refuse_existing(opened, uri.object or "", key_id, uri, force=force)
    try:
        public = _create_pair(opened.session, uri.object or "", key_id)
        public_key = raw_public_key(public[Attribute.EC_POINT])
    except BaseException as exc:
        # Nothing held this label or id before (checked above): whatever holds
        # it now is a half-made pair of ours, which would block the label for good.
        _remove_objects(opened, uri.object or "", key_id)
        if not isinstance(exc, PKCS11Error):
            raise
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


def _create_pair(session: Any, label: str, key_id: bytes) -> Any:
    """One C_GenerateKeyPair storing both halves; returns the public-key object."""
    from pkcs11 import KeyType, Mechanism, MechanismFlag

    public, _private = session.generate_keypair(
        KeyType.EC_EDWARDS,
        store=True,
        label=label,
        id=key_id,
        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
        mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
        public_template=public_template(),
        private_template=private_template(),
    )
    return public


def _objects(opened: OpenToken, name: str, key_id: bytes) -> list[Any]:
    """Every object the session sees holding label ``name`` or id ``key_id``."""
    from pkcs11 import Attribute
    from pkcs11.exceptions import PKCS11Error

    found: dict[int | None, Any] = {}
    try:
        for template in ({Attribute.LABEL: name}, {Attribute.ID: key_id}):
            for obj in opened.session.get_objects(template):
                found.setdefault(obj.handle, obj)
    except PKCS11Error as exc:
        raise describe(exc, token=opened.label, action="checking for existing keys") from None
    return list(found.values())


def _remove_objects(opened: OpenToken, name: str, key_id: bytes) -> None:
    """Best-effort cleanup after a failed keygen; a failure here must not hide the first one."""
    from pkcs11.exceptions import PKCS11Error

    try:
        for obj in _objects(opened, name, key_id):
            obj.destroy()
    except (PKCS11Error, SignerError):
        pass


def is_orphan(session: Any, objects: list[Any]) -> bool:
    """Only public-key objects, none with a private key of its id or label.

    That is what a keygen killed midway leaves. Callers must hold a logged-in
    session, or private keys would be invisible and every public key look orphaned.
    """
    from pkcs11 import Attribute, ObjectClass

    if not objects:
        return False
    for obj in objects:
        if obj[Attribute.CLASS] != ObjectClass.PUBLIC_KEY:
            return False
        attrs = obj.get_attributes([Attribute.ID, Attribute.LABEL])
        for attribute in (Attribute.ID, Attribute.LABEL):
            value = attrs.get(attribute)
            if value and next(iter(session.get_objects(
                    {Attribute.CLASS: ObjectClass.PRIVATE_KEY, attribute: value})), None):
                return False
    return True


def orphan_hint(key_uri: str) -> str:
    """How to remove an orphaned public-key object, for keygen's refusal and keys list."""
    return (f"run: rerun keygen '{key_uri}' --force (removes only that public-key "
            "object and creates a new key pair under the name)")


def _refuse_existing(
    opened: OpenToken, name: str, key_id: bytes, uri: Pkcs11Uri, *, force: bool
) -> None:
    from pkcs11 import Attribute
    from pkcs11.exceptions import PKCS11Error

    clashes = _objects(opened, name, key_id)
    if not clashes:
        return
    base = token_uri(opened.token, uri)
    named = base.replace(object=name, id=uri.id).format(pin="drop")
    try:
        orphan = is_orphan(opened.session, clashes)
        if orphan and force:
            for obj in clashes:
                obj.destroy()
            return
        by_label = any(obj[Attribute.LABEL] == name for obj in clashes)
    except PKCS11Error as exc:
        raise describe(exc, token=opened.label, action="removing an orphaned public key") from None
    clash = f"label {name!r}" if by_label else f"id {key_id.hex()}"
    if orphan:
        raise SignerError(
            f"token {opened.label!r} holds a public-key object with {clash} but no private "
            f"key (an interrupted keygen leaves one); to remove it and create the key, "
            f"{orphan_hint(named)}"
        )
    raise SignerError(
        f"token {opened.label!r} already holds an object with {clash}; "
        "refusing to create a second one (token keys are never replaced: pick another "
        f"object= name, or delete the old key with the token's own tool); see: "
        f"rerun keys list '{base.format(pin='drop')}'"
    )
