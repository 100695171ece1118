"""Which PKCS#11 module (shared library) to load, and loading it with a clear failure.

Users rarely know where their vendor put the library, so the search order is
the most specific first: the URI, the environment, the config file, and
finally p11-kit's proxy (which fans out to every module the system
registered). When none applies the error says each way of naming one.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent_rerun.errors import SignerError
from agent_rerun_pkcs11.uri import Pkcs11Uri

if TYPE_CHECKING:
    # ``pkcs11.lib`` is a loader function in python-pkcs11 0.10; the class it returns:
    from pkcs11._pkcs11 import lib as Pkcs11Lib

ENV_MODULE = "RERUN_PKCS11_MODULE"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

_SUFFIX = ".dylib" if sys.platform == "darwin" else ".so"
_MULTIARCH = sysconfig.get_config_var("MULTIARCH") or ""


def _lib_dirs() -> list[str]:
    dirs = []
    if _MULTIARCH:
        dirs += [f"/usr/lib/{_MULTIARCH}", f"/usr/lib/{_MULTIARCH}/pkcs11"]
    dirs += ["/usr/lib64", "/usr/lib64/pkcs11", "/usr/lib", "/usr/lib/pkcs11"]
    dirs += ["/usr/lib/softhsm", "/usr/local/lib", "/usr/local/lib/pkcs11"]
    dirs += ["/opt/homebrew/lib", "/Library/OpenSC/lib"]
    return dirs


#: Where p11-kit's proxy module usually lives.
P11KIT_PROXY_CANDIDATES: tuple[str, ...] = tuple(
    f"{d}/p11-kit-proxy{_SUFFIX}" for d in _lib_dirs() if not d.endswith("pkcs11")
)

#: p11-kit module registrations (``*.module`` files with a ``module:`` line).
P11KIT_MODULE_DIRS = ("/usr/share/p11-kit/modules", "/etc/pkcs11/modules")


@dataclass(frozen=True)
class ModuleChoice:
    """A module path and where it came from, so errors can say which setting to fix."""

    path: str
    source: str


def find_module(
    uri: Pkcs11Uri,
    *,
    environ: Mapping[str, str] | None = None,
    proxy_candidates: Sequence[str] = P11KIT_PROXY_CANDIDATES,
) -> ModuleChoice:
    """Pick the module: URI, then ``RERUN_PKCS11_MODULE``, then config, then p11-kit."""
    env = os.environ if environ is None else environ
    if uri.module_path:
        return ModuleChoice(os.path.expanduser(uri.module_path), "the URI's module-path")
    if uri.module_name:
        return ModuleChoice(_by_name(uri.module_name), "the URI's module-name")
    if env.get(ENV_MODULE):
        return ModuleChoice(os.path.expanduser(env[ENV_MODULE]), ENV_MODULE)
    configured = _configured_module()
    if configured is not None:
        return configured
    for candidate in proxy_candidates:
        if os.path.isfile(candidate):
            return ModuleChoice(candidate, "p11-kit's proxy module")
    raise SignerError(
        "no PKCS#11 module given: add module-path=/path/to/module.so to the pkcs11: URI, "
        f"set {ENV_MODULE}, or set [pkcs11] module in the rerun config file "
        f"(SoftHSM: {SOFTHSM_MODULE})"
    )


def load_library(choice: ModuleChoice) -> Pkcs11Lib:
    """Load and initialise the module; a missing or foreign library is one clear line."""
    import pkcs11
    from pkcs11.exceptions import PKCS11Error

    path = Path(choice.path)
    if not path.exists():
        raise SignerError(f"PKCS#11 module {choice.path} (from {choice.source}) does not exist")
    if not path.is_file():
        raise SignerError(f"PKCS#11 module {choice.path} (from {choice.source}) is not a file")
    try:
        return pkcs11.lib(choice.path)
    except PKCS11Error as exc:
        raise SignerError(
            f"{choice.path} (from {choice.source}) is not a usable PKCS#11 module: "
            f"{_load_reason(exc)}"
        ) from None


def _load_reason(exc: Exception) -> str:
    """The loader's own words without the paths it repeats ("invalid ELF header")."""
    reason = str(exc)
    if reason.startswith("OS exception while loading "):
        reason = reason.split(": ", 1)[-1]
    while reason.startswith("/") and ": " in reason:
        reason = reason.split(": ", 1)[1]
    return reason or type(exc).__name__


def _by_name(name: str) -> str:
    """RFC 7512 module-name: a bare library name, looked up where systems install them."""
    if "/" in name or os.sep in name:
        raise SignerError(
            f"pkcs11 URI: module-name={name!r} must be a bare name; use module-path for paths"
        )
    for registry in P11KIT_MODULE_DIRS:
        found = _from_p11kit_registration(Path(registry) / f"{name}.module")
        if found:
            return found
    stems = [name, f"lib{name}"]
    for directory in _lib_dirs():
        for stem in stems:
            candidate = Path(directory) / f"{stem}{_SUFFIX}"
            if candidate.is_file():
                return str(candidate)
    raise SignerError(
        f"pkcs11 URI: no module named {name!r} found in the usual library folders; "
        "use module-path=/path/to/module.so instead"
    )


def _from_p11kit_registration(path: Path) -> str | None:
    from agent_rerun.inputs import LIST_LIMIT, read_input

    try:
        data = read_input(path, "p11-kit module registration", limit=LIST_LIMIT,
                          error=SignerError)
    except SignerError:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "module" and value.strip():
            target = Path(value.strip())
            if not target.is_absolute() and _MULTIARCH:
                target = Path(f"/usr/lib/{_MULTIARCH}/pkcs11") / target
            return str(target)
    return None


#: Keys this backend understands in its ``[pkcs11]`` config section.
CONFIG_KEYS = ("module",)


def _configured_module() -> ModuleChoice | None:
    """``[pkcs11] module`` from the user's config file, the section this backend owns."""
    from agent_rerun.config import backend_section

    section = backend_section("pkcs11")
    if section is None:
        return None
    section.refuse_unknown(CONFIG_KEYS)
    module = section.path("module")
    if module is None:
        return None
    return ModuleChoice(str(module), f"[pkcs11] module in {section.source}")
