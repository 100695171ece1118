"""Where the token's user PIN comes from: the URI, the environment or a prompt.

A PIN on the command line would show in ``ps``, so the URI's ``pin-source``
(a file) is the intended way; ``pin-value`` is accepted for tests only and
redacted everywhere it could be printed. The PIN is returned to the caller and
never stored on any object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from agent_rerun.errors import SignerError
from agent_rerun.signer import PromptFn
from agent_rerun.uri import file_location_path
from agent_rerun_pkcs11.uri import Pkcs11Uri

ENV_PIN = "RERUN_PKCS11_PIN"


class PinUnavailable(SignerError):
    """No PIN source, no environment variable and nobody at a terminal to ask."""


def pin_source_path(source: str) -> Path:
    """A ``pin-source`` value as a path: a plain path, ``file:PATH`` or a ``file://`` URI."""
    return Path(file_location_path(source, "pin-source")).expanduser()


def read_pin_file(source: str) -> str:
    """The PIN in a ``pin-source`` file, without its final line break.

    Read through :func:`agent_rerun.inputs.read_input`: bounded (a PIN is short;
    ``/dev/zero`` is refused, not read into memory), and a FIFO nobody writes
    to times out instead of hanging. A file others can read gets the same
    warning as a key file.
    """
    from agent_rerun.inputs import SECRET_LIMIT, read_input_with_mode, warn_if_shared

    path = pin_source_path(source)
    data, mode = read_input_with_mode(path, "pin-source file", limit=SECRET_LIMIT,
                                      error=SignerError)
    warn_if_shared(path, mode, "pin-source file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SignerError(f"pin-source {path} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise SignerError(f"pin-source {path} is empty")
    return text


def resolve_pin(
    uri: Pkcs11Uri,
    token_label: str,
    *,
    prompt: PromptFn | None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Find the user PIN for ``token_label``: URI, then ``RERUN_PKCS11_PIN``, then prompt."""
    env = os.environ if environ is None else environ
    if uri.pin_source is not None and uri.pin_value is not None:
        raise SignerError("pkcs11 URI: give either pin-source or pin-value, not both")
    if uri.pin_source is not None:
        return read_pin_file(uri.pin_source)
    if uri.pin_value is not None:
        if not uri.pin_value:
            # Never send an empty PIN: each wrong try may count toward locking the token.
            raise SignerError("pkcs11 URI: pin-value is empty; give the PIN (or use "
                              "pin-source=FILE), nothing was sent to the token")
        return uri.pin_value
    if env.get(ENV_PIN):
        return env[ENV_PIN]
    if prompt is not None:
        pin = prompt(f"PIN for PKCS#11 token {token_label!r}", False)
        if not pin:
            raise SignerError(f"no PIN entered for token {token_label!r}")
        return pin
    raise PinUnavailable(
        f"token {token_label!r} needs a PIN: add pin-source=/path/to/pin-file to the URI, "
        f"set {ENV_PIN}, or run at a terminal to be asked"
    )
