"""Turn python-pkcs11's exceptions into one-line SignerErrors that name the token.

python-pkcs11 raises bare classes (``PinIncorrect()`` has no message at all),
so without this mapping users would see an empty error. Each message names the
token and what to do next; none of them carries the PIN.
"""

from __future__ import annotations

from agent_rerun.errors import SignerError

#: Products known to implement Ed25519 over PKCS#11, for "not supported" hints.
EDDSA_PRODUCTS = (
    "SoftHSM 2.6 (Debian's softhsm2), YubiKey firmware 5.7 or later (ykcs11), "
    "YubiHSM 2 (yubihsm_pkcs11)"
)

#: What to do when a device refuses on-token key generation.
VENDOR_TOOL_HINT = (
    "create the key with the vendor's tool (for a YubiKey: ykman piv keys generate "
    "--algorithm ED25519, which needs the PIV management key) and use the URI "
    "that 'rerun keys list' prints"
)


def token_name(label: str) -> str:
    return f"token {label!r}"


def describe(exc: BaseException, *, token: str, action: str) -> SignerError:
    """Map a python-pkcs11 exception raised while ``action`` on ``token`` to a SignerError.

    ``token`` is the token label. Wrong PINs are reported, never retried: each
    retry would count against the token's lockout counter.
    """
    from pkcs11 import exceptions as e

    who = token_name(token)
    if isinstance(exc, e.PinIncorrect):
        return SignerError(
            f"wrong PIN for {who} (not retried: repeated wrong PINs lock the token)"
        )
    if isinstance(exc, e.PinLocked):
        return SignerError(
            f"the user PIN of {who} is locked after too many wrong PINs; "
            "unlock or reset it with the security officer PIN using the token's own tool"
        )
    if isinstance(exc, (e.PinInvalid, e.PinLenRange)):
        return SignerError(f"the PIN given for {who} has invalid characters or length")
    if isinstance(exc, e.PinExpired):
        return SignerError(f"the PIN of {who} has expired; change it with the token's tool")
    if isinstance(exc, e.UserPinNotInitialized):
        return SignerError(f"{who} has no user PIN set; initialise it with the token's tool")
    if isinstance(exc, (e.TokenNotPresent, e.DeviceRemoved, e.TokenNotRecognised)):
        return SignerError(f"{who} is not present (removed or not recognised) while {action}")
    if isinstance(exc, e.NoSuchToken):
        return SignerError(f"{who} is not present")
    if isinstance(exc, e.NoSuchKey):
        return SignerError(f"no key on {who} matches while {action}")
    if isinstance(exc, e.MultipleObjectsReturned):
        return SignerError(f"several keys on {who} match while {action}; name one by id")
    if isinstance(exc, (e.MechanismInvalid, e.FunctionNotSupported, e.MechanismParamInvalid)):
        return SignerError(
            f"{who} does not support {action} with Ed25519 "
            f"(Ed25519 over PKCS#11 works with {EDDSA_PRODUCTS})"
        )
    if isinstance(exc, e.DataLenRange):
        return SignerError(f"{who} refused the data length while {action} (CKR_DATA_LEN_RANGE)")
    if isinstance(exc, e.UserNotLoggedIn):
        return SignerError(f"{who} needs a login for {action} but the session is not logged in")
    if isinstance(exc, (e.TokenWriteProtected, e.SessionReadOnly)):
        return SignerError(f"{who} is write-protected; cannot finish {action}")
    if isinstance(exc, e.DeviceMemory):
        return SignerError(f"{who} is out of memory (full?) while {action}")
    if isinstance(exc, (e.TemplateInconsistent, e.AttributeValueInvalid, e.TemplateIncomplete)):
        return SignerError(
            f"{who} refused the key template while {action} ({type(exc).__name__})"
        )
    name = type(exc).__name__
    detail = f": {exc}" if str(exc) else ""
    return SignerError(f"{who}: PKCS#11 error {name} while {action}{detail}")


def key_function_not_permitted(exc: BaseException) -> bool:
    """CKR_KEY_FUNCTION_NOT_PERMITTED (0x68) has no class of its own in python-pkcs11."""
    return "0x68" in str(exc).lower() or "function_not_permitted" in str(exc).lower()
