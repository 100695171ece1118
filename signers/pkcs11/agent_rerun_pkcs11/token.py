"""Choosing the token a URI means, and naming tokens back as URIs.

SoftHSM always shows one free, uninitialised slot and a YubiKey shows up
beside any smart card reader, so a URI that is silent about the token is only
accepted when exactly one initialised token is present; otherwise the error
lists every candidate's URI to paste.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_rerun.errors import SignerError
from agent_rerun_pkcs11.errors import describe
from agent_rerun_pkcs11.uri import Pkcs11Uri

if TYPE_CHECKING:
    import pkcs11

    # ``pkcs11.lib`` is a loader function in python-pkcs11 0.10; the class it returns:
    from pkcs11._pkcs11 import lib as Pkcs11Lib


def initialised_tokens(lib: Pkcs11Lib) -> list[pkcs11.Token]:
    """Tokens that are present and initialised (a free SoftHSM slot is skipped)."""
    from pkcs11 import TokenFlag
    from pkcs11.exceptions import PKCS11Error

    tokens = []
    try:
        slots = lib.get_slots(token_present=True)
    except PKCS11Error as exc:
        raise describe(exc, token="(any)", action="listing slots") from None
    for slot in slots:
        try:
            token = slot.get_token()
        except PKCS11Error:
            continue  # removed between listing and asking: not a candidate
        if token.flags & TokenFlag.TOKEN_INITIALIZED:
            tokens.append(token)
    return tokens


def matches(lib: Pkcs11Lib, token: pkcs11.Token, uri: Pkcs11Uri) -> bool:
    """Does ``token`` satisfy every token, slot and library attribute of ``uri``?"""
    slot = token.slot
    wanted = uri.attrs
    actual = {
        "token": token.label,
        "manufacturer": token.manufacturer_id,
        "serial": _serial(token),
        "model": token.model,
        "slot-description": slot.slot_description,
        "slot-manufacturer": slot.manufacturer_id,
        "library-manufacturer": lib.manufacturer_id,
        "library-description": lib.library_description,
        "library-version": "{}.{}".format(*lib.library_version),
    }
    if any(actual[name].strip() != value.strip() for name, value in wanted.items()):
        return False
    return uri.slot_id is None or slot.slot_id == uri.slot_id


def select_token(lib: Pkcs11Lib, uri: Pkcs11Uri) -> pkcs11.Token:
    """The one initialised token ``uri`` names, or a one-line error listing what exists."""
    tokens = initialised_tokens(lib)
    found = [t for t in tokens if matches(lib, t, uri)]
    if len(found) == 1:
        return found[0]
    if not found:
        wanted = _describe_selector(uri)
        present = "; ".join(token_uri(t, uri).format(pin="drop") for t in tokens) or "none"
        raise SignerError(f"token not present: no initialised token matches {wanted} "
                          f"(initialised tokens: {present})")
    listing = "; ".join(token_uri(t, uri).format(pin="drop") for t in found)
    raise SignerError(
        f"{len(found)} tokens match {_describe_selector(uri)}; name one with token= "
        f"(or serial=): {listing}"
    )


def token_uri(token: pkcs11.Token, base: Pkcs11Uri) -> Pkcs11Uri:
    """A URI naming exactly this token, keeping ``base``'s module and PIN source."""
    # Label and serial are enough to tell tokens apart and short enough to paste.
    attrs = {"token": token.label, "serial": _serial(token)}
    return Pkcs11Uri(
        attrs={k: v for k, v in attrs.items() if v},
        module_name=base.module_name,
        module_path=base.module_path,
        pin_source=base.pin_source,
    )


def _serial(token: pkcs11.Token) -> str:
    return token.serial.decode("ascii", "replace").strip()


def _describe_selector(uri: Pkcs11Uri) -> str:
    parts = [f"{k}={v!r}" for k, v in uri.attrs.items()]
    if uri.slot_id is not None:
        parts.append(f"slot-id={uri.slot_id}")
    return " ".join(parts) if parts else "the URI"
