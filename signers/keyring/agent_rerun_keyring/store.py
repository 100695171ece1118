"""Access to the OS keyring through the ``keyring`` library, with every failure as one line.

The whole point of a keyring key is that it never lies in a plain file, so the
backend ``keyring`` picked is vetted before anything is read or written: the
"fail" and "null" backends (no keyring at all) are refused with the reasons the
platform backends gave, and a backend that keyring itself does not recommend
(priority below 1) or that comes from ``keyrings.alt`` (plaintext or weakly
protected files) is refused unless RERUN_KEYRING_ALLOW_INSECURE=1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from agent_rerun.errors import SignerError, one_line
from agent_rerun_keyring.uri import KeyringRef

#: Set to 1 to accept a keyring backend that keyring does not recommend.
ALLOW_INSECURE_ENV = "RERUN_KEYRING_ALLOW_INSECURE"

_RECIPE = (
    "on Linux start a Secret Service in a D-Bus session, e.g. "
    'dbus-run-session -- sh -c \'printf %s "$PW" | gnome-keyring-daemon --unlock '
    "--components=secrets >/dev/null; rerun ...' (or log in to a GNOME/KDE desktop), "
    "or choose a backend with PYTHON_KEYRING_BACKEND, "
    "or use a file key (rerun keygen key.pem) or an HSM (pkcs11:) instead"
)
#: Modules of the platform backends whose "not viable" reasons explain an empty keyring.
_PLATFORM_BACKENDS = {
    "linux": ("SecretService", "libsecret", "kwallet"),
    "darwin": ("macOS",),
    "win32": ("Windows",),
}


def backend_name(kr: KeyringBackend) -> str:
    cls = type(kr)
    return f"{cls.__module__}.{cls.__qualname__}"


def open_keyring() -> KeyringBackend:
    """The backend keyring selected, once it has been shown to be real and secure."""
    try:
        kr = keyring.get_keyring()
    except Exception as exc:  # a bad PYTHON_KEYRING_BACKEND or keyringrc.cfg
        configured = os.environ.get("PYTHON_KEYRING_BACKEND")
        source = f"PYTHON_KEYRING_BACKEND={configured}" if configured else "keyringrc.cfg"
        raise SignerError(
            f"the keyring backend chosen by {source} cannot be used "
            f"({type(exc).__name__}: {one_line(exc)}); {_RECIPE}"
        ) from None
    chained = list(kr.backends) if isinstance(kr, chainer.ChainerBackend) else [kr]
    if not chained or all(isinstance(b, (fail.Keyring, null.Keyring)) for b in chained):
        raise SignerError(no_keyring_message(kr))
    if os.environ.get(ALLOW_INSECURE_ENV) != "1":
        weak = [b for b in chained if insecure_reason(b)]
        if weak:
            reason = insecure_reason(weak[0])
            raise SignerError(
                f"refusing the keyring backend {backend_name(weak[0])}: {reason}; "
                f"select a secure one with PYTHON_KEYRING_BACKEND (e.g. "
                f"keyring.backends.SecretService.Keyring), set {ALLOW_INSECURE_ENV}=1 "
                "to accept it knowingly, or use a file key or an HSM instead"
            )
    return kr


def insecure_reason(kr: KeyringBackend) -> str:
    """Why a backend would keep the key no better than a plain file, or '' if it is fine."""
    cls = type(kr)
    if isinstance(kr, (fail.Keyring, null.Keyring)):
        return "it stores nothing"
    if cls.__module__.split(".")[0] == "keyrings":
        # keyrings.alt: plaintext, base64 or file-encrypted stores keyring discourages.
        return "it comes from keyrings.alt, whose stores keyring itself discourages"
    try:
        priority = float(cls.priority)
    except Exception as exc:
        return f"it is not viable here ({one_line(exc)})"
    if priority < 1:
        return f"keyring does not recommend it (priority {priority:g} < 1, e.g. a plaintext file)"
    return ""


def no_keyring_message(kr: KeyringBackend | None = None) -> str:
    """Say that no keyring is usable, why each platform backend declined, and what to do."""
    reasons = _platform_reasons()
    why = f" ({'; '.join(reasons)})" if reasons else ""
    which = ""
    if kr is not None:
        which = f" keyring selected {backend_name(kr)}, which stores nothing"
    return f"no usable OS keyring:{which}{why}; {_RECIPE}"


def read_entry(kr: KeyringBackend, ref: KeyringRef) -> str | None:
    """The entry's text, or None when there is no such entry."""
    with translated_errors(ref, "read"):
        return kr.get_password(ref.service, ref.name)


def write_entry(kr: KeyringBackend, ref: KeyringRef, text: str) -> None:
    """Store ``text`` and read it back: a backend that silently drops writes loses no key."""
    with translated_errors(ref, "write"):
        kr.set_password(ref.service, ref.name, text)
    if read_entry(kr, ref) != text:
        raise SignerError(
            f"the keyring backend {backend_name(kr)} did not keep {ref.describe()} "
            "(reading it back gave something else); the new key was not saved"
        )


def list_entries(kr: KeyringBackend, service: str) -> list[tuple[str, str]]:
    """(name, text) of every entry of ``service``; only the Secret Service can enumerate.

    The keyring library has no listing call, so this goes through the
    SecretStorage collection that keyring's Secret Service backend already uses.
    """
    from keyring.backends import SecretService

    if not isinstance(kr, SecretService.Keyring):
        raise SignerError(
            f"the keyring backend {backend_name(kr)} cannot list entries (the keyring "
            "library has no listing call); name the key instead: rerun pubkey keyring:NAME"
        )
    attrs = kr.schemes[kr.scheme]
    found: list[tuple[str, str]] = []
    where = KeyringRef(name="*", service=service)
    with translated_errors(where, "list"):
        # keyring's SecretService backend has no annotations; these two calls return
        # secretstorage objects, which are typed.
        collection = kr.get_preferred_collection()  # type: ignore[no-untyped-call]
        with closing(collection.connection):
            for item in collection.search_items({attrs["service"]: service}):
                kr.unlock(item)  # type: ignore[no-untyped-call]
                name = item.get_attributes().get(attrs["username"], "")
                found.append((name, item.get_secret().decode("utf-8", "replace")))
    return sorted(found)


@contextmanager
def translated_errors(ref: KeyringRef, action: str) -> Iterator[None]:
    """Map whatever keyring, SecretStorage or D-Bus raise onto one SignerError line."""
    try:
        yield
    except SignerError:
        raise
    except keyring.errors.KeyringLocked:
        raise SignerError(
            f"cannot {action} {ref.describe()}: the keyring is locked and was not unlocked "
            "(the unlock prompt was dismissed or could not be shown); unlock it, e.g. by "
            "logging in to the desktop or with Seahorse / KWallet Manager / Keychain Access, "
            "and try again"
        ) from None
    except keyring.errors.NoKeyringError:
        raise SignerError(no_keyring_message()) from None
    except keyring.errors.InitError as exc:
        if not _prompt_dismissed(exc):
            raise SignerError(
                f"cannot {action} {ref.describe()}: InitError: {one_line(exc)}"
            ) from None
        raise SignerError(
            f"cannot {action} {ref.describe()}: the Secret Service has no default keyring "
            "and its prompt to create one was dismissed or could not be shown (no "
            "display); log in to the desktop once, or on a headless box start the daemon "
            "with a non-empty password on stdin: printf %s \"$PASSWORD\" | "
            "gnome-keyring-daemon --unlock --components=secrets"
        ) from None
    except Exception as exc:
        raise SignerError(
            f"cannot {action} {ref.describe()}: {type(exc).__name__}: {one_line(exc)}"
        ) from None


def _prompt_dismissed(exc: BaseException) -> bool:
    """Whether the Secret Service refused because nobody answered its prompt.

    keyring wraps SecretStorage's PromptDismissedException into an InitError
    ("Failed to create the collection: Prompt dismissed."); gnome-keyring gives it
    when it has no default collection (e.g. started with an empty password) and no
    display to ask on.
    """
    cause = exc.__cause__
    return type(cause).__name__ == "PromptDismissedException" or "Prompt dismissed" in str(exc)


def _platform_reasons() -> list[str]:
    """Why the backends for this OS are not viable, in their own words."""
    wanted = _PLATFORM_BACKENDS.get(sys.platform, ())
    try:
        keyring.backend.get_all_keyring()  # imports the built-in and plugin backends
    except Exception:
        return []
    reasons: dict[str, None] = {}  # ordered and without the repeats sibling classes give
    for cls in sorted(getattr(KeyringBackend, "_classes", ()), key=lambda c: c.__module__):
        module = cls.__module__.rsplit(".", 1)[-1]
        if module not in wanted:
            continue
        try:
            cls.priority  # noqa: B018 - evaluating it is the viability check
        except Exception as exc:
            reasons[f"{module}: {one_line(exc)}"] = None
    return list(reasons)
