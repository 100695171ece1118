"""The session's Secret Service for the keyring tests: a probe and the fixtures built on it.

Imported as a sibling module by ``test_keyring_backend`` and ``test_keyring_cli``,
only after each has checked that ``keyring`` imports (they skip, or fail under
CI=true, with their own reason when it does not).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService
from support import require


def unique_name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def secret_service_problem(service: str) -> str | None:
    """Why the session's Secret Service cannot be used for these tests, or None.

    A round trip of a throwaway entry in ``service`` proves it is unlocked and keeps writes.
    """
    try:
        kr = keyring.get_keyring()
    except Exception as exc:
        return f"keyring cannot load a backend: {exc}"
    if not isinstance(kr, SecretService.Keyring):
        return (
            f"keyring selected {type(kr).__module__}.{type(kr).__name__}, not the Secret "
            "Service; run the tests under dbus-run-session with gnome-keyring-daemon "
            "--unlock --components=secrets"
        )
    probe = unique_name("probe")
    try:
        kr.set_password(service, probe, "round trip")
        value = kr.get_password(service, probe)
        kr.delete_password(service, probe)
    except keyring.errors.KeyringLocked:
        return (
            "the Secret Service's login collection stays locked: was its keyring file "
            "created with another password? Start gnome-keyring-daemon with a private, "
            "empty XDG_DATA_HOME"
        )
    except Exception as exc:
        return f"the Secret Service failed a round trip: {type(exc).__name__}: {exc}"
    return None if value == "round trip" else "the Secret Service did not keep a probe entry"


def secret_service_fixture(service: str) -> Any:
    """A module-scoped ``secret_service`` fixture probing with ``service``.

    Use as ``secret_service = secret_service_fixture(SERVICE)`` in the test module.
    """

    @pytest.fixture(scope="module")
    def secret_service() -> KeyringBackend:
        problem = secret_service_problem(service)
        require(problem is None, f"no usable Secret Service: {problem}")
        return keyring.get_keyring()

    return secret_service


def fresh_entry_fixture(service: str, tag: str) -> Callable[..., Iterator[str]]:
    """A fixture giving a fresh entry name (``tag-<hex>``) in ``service``, deleted afterwards.

    Use as ``entry = fresh_entry_fixture(SERVICE, "cli")``; it needs ``secret_service``.
    """

    @pytest.fixture
    def fresh_entry(secret_service: KeyringBackend) -> Iterator[str]:
        name = unique_name(tag)
        yield name
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            secret_service.delete_password(service, name)

    return fresh_entry
