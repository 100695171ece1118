"""Open one logged-in session on the token a URI names.

Every operation (sign, keygen, list) starts the same way: find the module,
pick the token, get the PIN, log in once. Doing it in one place keeps the
"never retry a wrong PIN" rule in one place too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_rerun.signer import PromptFn
from agent_rerun_pkcs11.errors import describe
from agent_rerun_pkcs11.module import find_module, load_library
from agent_rerun_pkcs11.pin import resolve_pin
from agent_rerun_pkcs11.token import select_token
from agent_rerun_pkcs11.uri import Pkcs11Uri

if TYPE_CHECKING:
    import pkcs11

    # ``pkcs11.lib`` is a loader function in python-pkcs11 0.10; the class it returns:
    from pkcs11._pkcs11 import lib as Pkcs11Lib


@dataclass
class OpenToken:
    """A session and what it was opened on; close it with :meth:`close`."""

    lib: Pkcs11Lib
    token: pkcs11.Token
    session: pkcs11.Session
    module_path: str

    @property
    def label(self) -> str:
        return self.token.label

    def close(self) -> None:
        """Log out and close; a token pulled out meanwhile is not an error worth raising."""
        from pkcs11.exceptions import PKCS11Error

        with contextlib.suppress(PKCS11Error):
            self.session.close()


def open_library(uri: Pkcs11Uri, environ: Mapping[str, str] | None = None) -> tuple[
    Pkcs11Lib, str
]:
    choice = find_module(uri, environ=environ)
    return load_library(choice), choice.path


def open_token(
    uri: Pkcs11Uri,
    *,
    prompt: PromptFn | None,
    rw: bool = False,
    login: bool = True,
    action: str,
    environ: Mapping[str, str] | None = None,
) -> OpenToken:
    """Select the token and open a session, logged in as user when ``login``."""
    from pkcs11 import PROTECTED_AUTH, TokenFlag
    from pkcs11.exceptions import PKCS11Error, UserAlreadyLoggedIn

    lib, module_path = open_library(uri, environ)
    token = select_token(lib, uri)
    user_pin: object = None
    if login and token.flags & TokenFlag.LOGIN_REQUIRED:
        if token.flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH and not (
            uri.pin_source or uri.pin_value
        ):
            user_pin = PROTECTED_AUTH  # PIN pad on the reader: never ask here
        else:
            user_pin = resolve_pin(uri, token.label, prompt=prompt, environ=environ)
    try:
        session = token.open(rw=rw, user_pin=user_pin)
    except UserAlreadyLoggedIn:
        # Another signer in this process already logged in: login state is per
        # application in PKCS#11, so a plain session shares it.
        try:
            session = token.open(rw=rw)
        except PKCS11Error as exc:
            raise describe(exc, token=token.label, action=action) from None
    except PKCS11Error as exc:
        raise describe(exc, token=token.label, action=action) from None
    finally:
        user_pin = None
    return OpenToken(lib=lib, token=token, session=session, module_path=module_path)
