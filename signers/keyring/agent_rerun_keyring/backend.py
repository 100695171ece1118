"""The ``keyring`` scheme: Ed25519 keys kept as entries of the OS keyring.

A Secret Service read costs milliseconds and may pop up an unlock prompt, so a
signer reads its entry once, when it is loaded (failing before any work is
done), keeps the key in memory for every signature, and drops it on close().
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from keyring.backend import KeyringBackend

from agent_rerun.errors import SignerError
from agent_rerun.pubkey import fingerprint
from agent_rerun.signer import InMemorySigner, KeyInfo, PromptFn, SignerBase
from agent_rerun_keyring import store
from agent_rerun_keyring.entry_format import decode_entry, encode_entry, public_from_private
from agent_rerun_keyring.uri import SCHEME, KeyringRef, parse_keyring_uri


class KeyringSigner(SignerBase):
    """A key read from the OS keyring, held in memory until close()."""

    def __init__(self, ref: KeyringRef, private_key: bytes) -> None:
        self._ref = ref
        self._inner: InMemorySigner | None = InMemorySigner(private_key)
        self._public_key = self._inner.public_key

    @property
    def uri(self) -> str:
        return self._ref.uri

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        if self._inner is None:
            raise SignerError(f"the signer for {self._ref.uri} was closed; load the key again")
        return self._inner.sign(data)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None

    def __repr__(self) -> str:
        state = "closed" if self._inner is None else "open"
        return f"KeyringSigner({self._ref.uri!r}, {fingerprint(self._public_key)}, {state})"


class KeyringKeyBackend:
    """The Backend object registered for ``keyring:`` URIs.

    ``prompt`` is accepted for the protocol but unused: unlocking is the OS
    keyring's own dialog, never a secret that passes through agent-rerun.
    """

    scheme = SCHEME

    def load(self, uri: str, *, prompt: PromptFn | None = None) -> KeyringSigner:
        ref = parse_keyring_uri(uri)
        kr = store.open_keyring()
        text = store.read_entry(kr, ref)
        if text is None:
            raise SignerError(f"no {ref.describe()}; create it with: rerun keygen {ref.uri}")
        return KeyringSigner(ref, decode_entry(text, ref.describe()))

    def generate(self, uri: str, *, force: bool = False, prompt: PromptFn | None = None) -> KeyInfo:
        ref = parse_keyring_uri(uri)
        kr = store.open_keyring()
        if not force and store.read_entry(kr, ref) is not None:
            raise SignerError(
                f"{ref.describe()} already exists; refusing to overwrite it "
                "(--force replaces it and the old key is lost)"
            )
        private_key = Ed25519PrivateKey.generate().private_bytes_raw()
        store.write_entry(kr, ref, encode_entry(private_key))
        return self._info(ref, public_from_private(private_key), kr)

    def list_keys(self, uri: str, *, prompt: PromptFn | None = None) -> list[KeyInfo]:
        """One key when NAME is given; every agent-rerun entry of the service otherwise.

        Entries of the service that are not agent-rerun keys are left out.
        """
        ref = parse_keyring_uri(uri, name_required=False)
        if ref.name:
            with self.load(uri) as signer:
                return [self._info(ref, signer.public_key, None)]
        kr = store.open_keyring()
        infos: list[KeyInfo] = []
        for name, text in store.list_entries(kr, ref.service):
            entry = KeyringRef(name=name, service=ref.service)
            try:
                private_key = decode_entry(text, entry.describe())
            except SignerError:
                continue
            infos.append(self._info(entry, public_from_private(private_key), kr))
        return infos

    @staticmethod
    def _info(ref: KeyringRef, public_key: bytes, kr: KeyringBackend | None) -> KeyInfo:
        where = f" via {store.backend_name(kr)}" if kr is not None else ""
        return KeyInfo(uri=ref.uri, public_key=public_key, description=f"{ref.describe()}{where}")
