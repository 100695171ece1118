"""The ``vault`` backend object the core finds through the entry point.

It parses the URI, resolves the settings and hands each job to the Transit
module; ``rotate`` goes beyond the core contract (see
docs/vault.md).
"""

from __future__ import annotations

# Imported here, not lazily, so a missing hvac fails when the core loads the
# entry point, which turns it into one line saying what to install.
import hvac  # type: ignore[import-untyped]  # noqa: F401

from agent_rerun.errors import SignerError
from agent_rerun.signer import KeyInfo, PromptFn
from agent_rerun_vault.client import Cluster
from agent_rerun_vault.settings import resolve
from agent_rerun_vault.signer import VaultSigner
from agent_rerun_vault.transit import (
    TransitKey,
    create_key,
    key_exists,
    key_names,
    read_key,
    rotate_key,
)
from agent_rerun_vault.uri import VaultUri, parse, redact


class VaultBackend:
    """Ed25519 keys in an OpenBao or HashiCorp Vault Transit engine."""

    scheme = "vault"

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> VaultSigner:
        parsed = _named(uri)
        cluster = Cluster(resolve(parsed))
        try:
            key = read_key(cluster, parsed.key).checked()
            version, public_key = key.public_key(parsed.version)
        except BaseException:
            cluster.close()
            raise
        return VaultSigner(cluster, parsed.key, version, public_key,
                           parsed.with_key(parsed.key, version).format())

    def generate(
        self, uri: str, *, force: bool = False, prompt: PromptFn | None = None
    ) -> KeyInfo:
        """A new non-exportable ed25519 key; ``force`` is ignored: Transit keys stay."""
        parsed = _named(uri)
        if parsed.version is not None:
            raise SignerError("vault: keygen makes version 1; drop version= from the URI")
        with _cluster(parsed) as cluster:
            existing = key_exists(cluster, parsed.key)
            if existing is not None:
                raise SignerError(
                    f"vault: a key {parsed.key!r} ({existing}) already exists at mount "
                    f"{cluster.settings.mount!r}; Transit keys are never replaced: pick another "
                    f"name, or add a version with: rerun keys rotate {parsed.format()}")
            return _infos(parsed, create_key(cluster, parsed.key).checked())[-1]

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
        """Every live version of the mount's keys (or of the named key), oldest first."""
        parsed = parse(uri)
        with _cluster(parsed) as cluster:
            names = [parsed.key] if parsed.key else key_names(cluster)
            infos: list[KeyInfo] = []
            for name in names:
                infos.extend(_infos(parsed, read_key(cluster, name)))
            return infos

    def public_key(self, uri: str, *, prompt: PromptFn | None = None) -> bytes:
        parsed = _named(uri)
        with _cluster(parsed) as cluster:
            return read_key(cluster, parsed.key).checked().public_key(parsed.version)[1]

    def rotate(self, uri: str, *, prompt: PromptFn | None = None) -> KeyInfo:
        """Add a version to the key and return it; older versions stay live until trimmed."""
        parsed = _named(uri)
        with _cluster(parsed) as cluster:
            before = read_key(cluster, parsed.key).checked()
            return _infos(parsed, rotate_key(cluster, parsed.key,
                                             before.latest_version).checked())[-1]

    def redact_uri(self, uri: str) -> str:
        return redact(uri)


class _cluster:
    def __init__(self, parsed: VaultUri) -> None:
        self.cluster = Cluster(resolve(parsed))

    def __enter__(self) -> Cluster:
        return self.cluster

    def __exit__(self, *exc_info: object) -> None:
        self.cluster.close()


def _named(uri: str) -> VaultUri:
    parsed = parse(uri)
    if not parsed.key:
        raise SignerError("vault: name a key: vault:KEY?addr=...")
    return parsed


def _infos(parsed: VaultUri, key: TransitKey) -> list[KeyInfo]:
    problem = key.problem()
    base = parsed.with_key(key.name)
    if problem:
        return [KeyInfo(uri=base.format(), public_key=b"", unusable=problem)]
    return [
        KeyInfo(
            uri=base.with_key(key.name, number).format(),
            public_key=public_key,
            description=f"Transit key {key.name!r} version {number} of {key.latest_version}"
            + (" (latest: signs when no version= is given)" if number == key.latest_version
               else ""),
        )
        for number, public_key in key.versions.items()
    ]


backend = VaultBackend()
