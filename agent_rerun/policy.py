"""The verify policy: who may sign, who may not, and whether a signature is required.

One frozen object carries it from wherever it was decided (flags, config, a
library caller) to every check, so batch verify parses a 10,000-key trust file
once, not once per pair, and the CLI commands cannot drift apart in how they
read it. ``resolve_policy`` is the one place flags and the config file merge.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agent_rerun.errors import InputError
from agent_rerun.record import FrozenRecord

# The trust and revocation modules (and the pathlib and datetime they use) load
# only when there are keys to parse: a plain ``rerun verify`` has none.
if TYPE_CHECKING:
    from datetime import datetime
    from typing import TypeAlias

    from agent_rerun.config import Config
    from agent_rerun.revocation import RevocationList
    from agent_rerun.trust import TrustedKey, TrustIndex
    from agent_rerun.verify import KnownSigner

    #: What ``trusted_keys`` may hold: raw 32-byte keys, base64 keys or OpenSSH
    #: public-key lines (``ssh-ed25519 AAAA... name``), or parsed ``TrustedKey``s.
    TrustedKeyLike: TypeAlias = bytes | str | TrustedKey
    #: What ``revoked_keys`` may be: a loaded list, or raw keys / key texts.
    RevokedKeysLike: TypeAlias = RevocationList | Iterable[bytes | str]


def __getattr__(name: str) -> Any:
    """``TrustedKeyLike`` and ``RevokedKeysLike`` at run time, built on first use."""
    if name == "TrustedKeyLike":
        from agent_rerun.trust import TrustedKey

        return bytes | str | TrustedKey
    if name == "RevokedKeysLike":
        from agent_rerun.revocation import RevocationList

        return RevocationList | Iterable[bytes | str]
    raise AttributeError(f"module 'agent_rerun.policy' has no attribute {name!r}")


class VerifyPolicy(FrozenRecord):
    """``trusted`` None means no trust checking; an empty index means nobody is trusted.

    ``revoked`` None means no revocation list was given; ``trust_source`` says
    where the trusted keys came from, for ``inspect``.
    """

    _fields = ("trusted", "revoked", "require_signature", "now", "trust_source")
    __slots__ = (*_fields, "known_signers")
    trusted: TrustIndex | None
    revoked: RevocationList | None
    require_signature: bool
    now: datetime | None
    trust_source: str | None
    #: What verify worked out about each signing key it met under this policy:
    #: a batch meets the same few keys thousands of times (see ``verify.KnownSigner``).
    #: Not part of the value: neither compared, shown nor pickled.
    known_signers: dict[bytes, KnownSigner]

    def __init__(self, trusted: TrustIndex | None = None, revoked: RevocationList | None = None,
                 require_signature: bool = False, now: datetime | None = None,
                 trust_source: str | None = None) -> None:
        self._assign(trusted, revoked, require_signature, now, trust_source)
        object.__setattr__(self, "known_signers", {})


#: The policy of a verify given no trust arguments, shared by all of them, so
#: the few signing keys a process meets are each worked out once (a fingerprint,
#: a ``SignerInfo``), not once per bundle: without trust or revocation nothing
#: in that depends on the bundle or the clock. Bounded like any policy's cache.
NO_POLICY = VerifyPolicy()


def make_policy(
    trusted_keys: Iterable[TrustedKeyLike] | None = None,
    revoked_keys: RevokedKeysLike | None = None,
    *,
    require_signature: bool = False,
    now: datetime | None = None,
) -> VerifyPolicy:
    """A policy from library arguments; ``InputError`` names what is unusable."""
    return VerifyPolicy(trust_index_from(trusted_keys), revocation_list_from(revoked_keys),
                        require_signature, now)


def trust_index_from(trusted_keys: Iterable[TrustedKeyLike] | None) -> TrustIndex | None:
    """``trusted_keys`` as an index (None stays None: no trust checking)."""
    if trusted_keys is None:
        return None
    from agent_rerun.trust import TrustIndex

    if isinstance(trusted_keys, TrustIndex):
        return trusted_keys
    return TrustIndex(_as_trusted_keys(trusted_keys))


def revocation_list_from(revoked_keys: RevokedKeysLike | None) -> RevocationList | None:
    """``revoked_keys`` as a list (None stays None: no revocation check)."""
    if revoked_keys is None:
        return None
    from agent_rerun.revocation import RevocationList, revoked_keys_from

    if isinstance(revoked_keys, RevocationList):
        return revoked_keys
    return revoked_keys_from(revoked_keys)


def resolve_policy(
    trusted_key_texts: Iterable[str] = (),
    trust_file: str | os.PathLike[str] | None = None,
    revoked_files: Iterable[str | os.PathLike[str]] = (),
    *,
    require_signature: bool = False,
    config: Config | None = None,
) -> VerifyPolicy:
    """The CLI's policy: trust flags replace the config's trusted keys; revocation
    files from flags and config both apply (a revocation only ever narrows trust).

    ``config`` None reads the config file (``load_config``).
    """
    if config is None:
        from agent_rerun.configpath import config_file_to_read

        if (config_file_to_read() is None and not trusted_key_texts and trust_file is None
                and not revoked_files):
            # Nothing to merge (the usual CI case): skip loading the config reader.
            return VerifyPolicy(require_signature=require_signature)
        from agent_rerun.config import load_config

        config = load_config()
    texts = tuple(trusted_key_texts)
    trusted: TrustIndex | None = None
    source: str | None = None
    # "Given" means present, even if empty: an empty trust setting must fail
    # closed (nobody trusted), never quietly switch trust checking off.
    if texts or trust_file is not None:
        if trust_file is not None and not os.fspath(trust_file).strip():
            raise InputError("--trusted-keys: the trust file path is empty")
        from agent_rerun.trust import TrustIndex

        trusted = TrustIndex(_parse_keys(texts, trust_file, "--trusted-key"))
        source = "the --trusted-key/--trusted-keys flags"
    elif config.trusted_keys is not None or config.trusted_keys_file is not None:
        from agent_rerun.trust import TrustIndex

        trusted = TrustIndex(_parse_keys(config.trusted_keys or (), config.trusted_keys_file,
                                         f"{config.source}: verify.trusted_keys"))
        source = f"config {config.source}"
    files = list(revoked_files)
    if any(not os.fspath(name).strip() for name in files):
        raise InputError("--revoked-keys: the revocation file path is empty")
    files.extend(config.revoked_keys_files)
    revoked: RevocationList | None = None
    if files:
        from agent_rerun.revocation import load_revocation_file
    for name in files:
        loaded = load_revocation_file(name)
        revoked = loaded if revoked is None else revoked.merged(loaded)
    return VerifyPolicy(trusted, revoked, require_signature or config.require_signature,
                        trust_source=source)


def _parse_keys(texts: Iterable[str], trust_file: str | os.PathLike[str] | None,
                label: str) -> list[TrustedKey]:
    from agent_rerun.trust import parse_trust_file, parse_trusted_key

    keys: list[TrustedKey] = []
    for text in texts:
        try:
            keys.append(parse_trusted_key(text))
        except InputError as exc:
            raise InputError(f"{label}: {exc}") from None
    if trust_file:
        keys.extend(parse_trust_file(trust_file))
    return keys


def _as_trusted_keys(keys: Iterable[TrustedKeyLike]) -> list[TrustedKey]:
    from agent_rerun.trust import TrustedKey, parse_trusted_key

    if isinstance(keys, (str, bytes, bytearray, TrustedKey)):
        raise InputError("trusted_keys must be a list of keys, not a single key")
    parsed: list[TrustedKey] = []
    for key in keys:
        if isinstance(key, TrustedKey):
            parsed.append(key)
        elif isinstance(key, (bytes, bytearray)):
            parsed.append(TrustedKey(public_key=bytes(key)))
        elif isinstance(key, str):
            parsed.append(parse_trusted_key(key))
        else:
            raise InputError(f"a trusted key cannot be a {type(key).__name__}")
    return parsed
