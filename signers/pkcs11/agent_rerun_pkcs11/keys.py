"""Finding Ed25519 key objects on a token and reading their public keys.

Vendors disagree on encodings: CKA_EC_PARAMS is the PrintableString
``edwards25519`` (the only form Yubico's modules accept) or the OID
1.3.101.112, and CKA_EC_POINT is either the raw 32 bytes or those bytes
wrapped in a DER OCTET STRING. Both forms of each are accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from agent_rerun.errors import SignerError
from agent_rerun_pkcs11.errors import describe
from agent_rerun_pkcs11.uri import Pkcs11Uri

if TYPE_CHECKING:
    import pkcs11

#: DER PrintableString "edwards25519": what keygen writes into CKA_EC_PARAMS.
EDWARDS25519_PARAMS = b"\x13\x0cedwards25519"
#: DER OBJECT IDENTIFIER 1.3.101.112 (id-Ed25519, RFC 8410).
ED25519_OID_PARAMS = b"\x06\x03\x2b\x65\x70"
ED25519_PARAMS = (EDWARDS25519_PARAMS, ED25519_OID_PARAMS)


def is_ed25519_params(params: bytes | None) -> bool:
    return params is not None and bytes(params) in ED25519_PARAMS


def raw_public_key(ec_point: bytes) -> bytes:
    """The 32 raw key bytes from CKA_EC_POINT, raw or DER OCTET STRING wrapped."""
    point = bytes(ec_point)
    if len(point) == 32:
        return point
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    raise SignerError(
        f"CKA_EC_POINT of {len(point)} bytes is not an Ed25519 public key "
        "(expected 32 raw bytes or a 34-byte DER OCTET STRING)"
    )


@dataclass
class TokenKey:
    """One Ed25519 key on a token: the private object (if visible) and its public key."""

    label: str
    id: bytes
    public_key: bytes
    private: pkcs11.PrivateKey | None
    can_sign: bool

    def uri(self, token_uri: Pkcs11Uri) -> Pkcs11Uri:
        return token_uri.replace(object=self.label or None, id=self.id or None)


def search_template(uri: Pkcs11Uri, object_class: Any) -> dict[Any, Any]:
    from pkcs11 import Attribute, KeyType

    template: dict[Any, Any] = {
        Attribute.CLASS: object_class,
        Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
    }
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    return template


def find_keys(session: pkcs11.Session, uri: Pkcs11Uri, token_label: str) -> list[TokenKey]:
    """Every Ed25519 key the URI's object/id select, private keys first.

    A public key without a visible private key is still listed (a session
    that is not logged in only sees public objects), with ``private=None``.
    """
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    if uri.type not in (None, "private", "public"):
        raise SignerError(f"pkcs11 URI: type={uri.type} cannot name an Ed25519 signing key")
    try:
        publics = list(session.get_objects(search_template(uri, ObjectClass.PUBLIC_KEY)))
        privates = []
        if uri.type != "public":
            privates = cast(
                "list[pkcs11.PrivateKey]",
                list(session.get_objects(search_template(uri, ObjectClass.PRIVATE_KEY))),
            )
        public_by_ref: dict[tuple[bytes, str], bytes] = {}
        for obj in publics:
            attrs = obj.get_attributes([Attribute.ID, Attribute.LABEL, Attribute.EC_PARAMS])
            if not is_ed25519_params(attrs.get(Attribute.EC_PARAMS)):
                continue  # Ed448 shares CKK_EC_EDWARDS; v0.1 only knows Ed25519
            ref = (bytes(attrs[Attribute.ID] or b""), attrs[Attribute.LABEL] or "")
            public_by_ref[ref] = raw_public_key(obj[Attribute.EC_POINT])
        keys: list[TokenKey] = []
        for obj in privates:
            attrs = obj.get_attributes([Attribute.ID, Attribute.LABEL, Attribute.SIGN])
            ref = (bytes(attrs[Attribute.ID] or b""), attrs[Attribute.LABEL] or "")
            public = public_by_ref.pop(ref, None) or _public_by_id(public_by_ref, ref[0])
            if public is None:
                public = _public_from_private(obj)
            if public is None:
                continue  # not Ed25519, or no way to learn its public key
            keys.append(TokenKey(ref[1], ref[0], public, obj, bool(attrs[Attribute.SIGN])))
        for (key_id, label), public in public_by_ref.items():
            keys.append(TokenKey(label, key_id, public, None, False))
    except PKCS11Error as exc:
        raise describe(exc, token=token_label, action="searching for keys") from None
    return keys


def _public_by_id(public_by_ref: dict[tuple[bytes, str], bytes], key_id: bytes) -> bytes | None:
    """Some tools label the two halves differently; the shared CKA_ID still pairs them."""
    if not key_id:
        return None
    for ref in list(public_by_ref):
        if ref[0] == key_id:
            return public_by_ref.pop(ref)
    return None


def _public_from_private(obj: pkcs11.PrivateKey) -> bytes | None:
    """A few modules expose CKA_EC_POINT on the private key itself."""
    from pkcs11 import Attribute
    from pkcs11.exceptions import PKCS11Error

    try:
        attrs = obj.get_attributes([Attribute.EC_PARAMS, Attribute.EC_POINT])
    except PKCS11Error:
        return None
    if not is_ed25519_params(attrs.get(Attribute.EC_PARAMS)) or not attrs.get(Attribute.EC_POINT):
        return None
    try:
        return raw_public_key(attrs[Attribute.EC_POINT])
    except SignerError:
        return None
