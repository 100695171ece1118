"""Transit key operations: read a key's live versions, create, rotate, list, sign a batch.

Only non-derived ``ed25519`` keys are usable: a derived key signs with a
per-context key that no verifier could look up from the public key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent_rerun.errors import SignerError
from agent_rerun_vault.client import Cluster, Operation


@dataclass(frozen=True)
class TransitKey:
    """What ``read transit/keys/NAME`` says, checked: type, and each live version's key."""

    name: str
    type: str
    derived: bool
    latest_version: int
    #: Live (not trimmed) versions, oldest first, with their raw 32-byte public keys.
    versions: dict[int, bytes]

    def problem(self) -> str:
        """Why this key cannot sign rerun bundles, or '' when it can."""
        if self.type != "ed25519":
            return f"a {self.type} key; agent-rerun signs with ed25519 keys only"
        if self.derived:
            return ("a derived key (derived=true): it signs with per-context keys a verifier "
                    "cannot look up; make a non-derived ed25519 key")
        return ""

    def checked(self) -> TransitKey:
        problem = self.problem()
        if problem:
            raise SignerError(f"vault: key {self.name!r} is {problem}")
        return self

    def public_key(self, version: int | None) -> tuple[int, bytes]:
        chosen = self.latest_version if version is None else version
        if chosen not in self.versions:
            live = ", ".join(str(v) for v in self.versions) or "none"
            raise SignerError(f"vault: key {self.name!r} has no live version {chosen} "
                              f"(live: {live})")
        return chosen, self.versions[chosen]


def read_key(cluster: Cluster, name: str) -> TransitKey:
    path = f"{cluster.settings.mount}/keys/{name}"
    reply = cluster.request("GET", Operation(path, "read", key=name))
    return _parse_key(name, reply.get("data"), path)


def key_exists(cluster: Cluster, name: str) -> str | None:
    """The type of the key called ``name``, or None when there is none (no retries for lag)."""
    path = f"{cluster.settings.mount}/keys/{name}"
    try:
        reply = cluster.request("GET", Operation(path, "read", key=name), probe=True)
    except LookupError:
        return None
    return str(_data(reply).get("type", "unknown"))


def create_key(cluster: Cluster, name: str) -> TransitKey:
    """Create the key; what it is comes from the answer (see :func:`rotate_key`)."""
    path = f"{cluster.settings.mount}/keys/{name}"
    reply = cluster.request("POST", Operation(path, "create"),
                            {"type": "ed25519", "exportable": False})
    return _answered_key(cluster, name, reply, after=0)


def rotate_key(cluster: Cluster, name: str, latest_version: int) -> TransitKey:
    """Add a version to a key whose latest version is ``latest_version``; the key after.

    The key comes from the server's answer to the write, not from reading it
    back: a write sent to a standby is done by the active node, and the
    standby applies it a few milliseconds later, so a read there can still
    show the old latest version, which would be printed as the new one.
    """
    path = f"{cluster.settings.mount}/keys/{name}/rotate"
    reply = cluster.request("POST", Operation(path, "update", key=name), {})
    return _answered_key(cluster, name, reply, after=latest_version)


def _answered_key(cluster: Cluster, name: str, reply: dict[str, Any], *,
                  after: int) -> TransitKey:
    """The key in a write's answer (OpenBao sends it), else read back, never older than asked."""
    data = _data(reply)
    path = f"{cluster.settings.mount}/keys/{name}"
    key = _parse_key(name, data, path) if data.get("keys") else read_key(cluster, name)
    if key.latest_version <= after:
        raise SignerError(
            f"vault: key {name!r} was changed, but the server still shows version "
            f"{key.latest_version}; see the new version with: rerun keys list "
            f"{cluster.settings.uri.with_key(name).format()}")
    return key


def key_names(cluster: Cluster) -> list[str]:
    path = f"{cluster.settings.mount}/keys"
    try:
        reply = cluster.request("LIST", Operation(path, "list"), probe=True)
    except LookupError:
        return []  # a mount without keys answers 404
    keys = _data(reply).get("keys")
    return sorted(str(k) for k in keys) if isinstance(keys, list) else []


def sign_batch(cluster: Cluster, name: str, version: int,
               payloads: Sequence[bytes]) -> list[bytes]:
    """Raw 64-byte signatures of ``payloads`` by ``version``, in one ``batch_input`` request."""
    path = f"{cluster.settings.mount}/sign/{name}"
    body = {"key_version": version,
            "batch_input": [{"input": base64.b64encode(p).decode("ascii")} for p in payloads]}
    reply = cluster.request("POST", Operation(path, "update", key=name), body)
    results = _data(reply).get("batch_results")
    if not isinstance(results, list) or len(results) != len(payloads):
        count = len(results) if isinstance(results, list) else "no"
        raise SignerError(f"vault: {path} answered {count} results for {len(payloads)} inputs")
    return [_signature(item, version, path) for item in results]


def _data(reply: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` object of an answer, or {} when there is none or it is not an object."""
    data = reply.get("data")
    return data if isinstance(data, dict) else {}


def _signature(item: Any, version: int, path: str) -> bytes:
    if not isinstance(item, dict):
        raise SignerError(f"vault: {path} returned a malformed batch result")
    if item.get("error"):
        raise SignerError(f"vault: {path} refused an input: {item['error']}")
    text = item.get("signature")
    prefix = f"vault:v{version}:"
    if not isinstance(text, str) or not text.startswith(prefix):
        raise SignerError(f"vault: {path} did not sign with key version {version}")
    try:
        raw = base64.b64decode(text[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise SignerError(f"vault: {path} returned a signature that is not base64") from None
    if len(raw) != 64:
        raise SignerError(f"vault: {path} returned a {len(raw)}-byte signature, not Ed25519's 64")
    return raw


def _parse_key(name: str, data: Any, path: str) -> TransitKey:
    """The checked key description; a malformed one (a broken proxy, a hostile server)
    is refused in one line rather than crashing on it."""
    try:
        versions: dict[int, bytes] = {}
        for number, entry in sorted(data["keys"].items(), key=lambda kv: int(kv[0])):
            text = entry.get("public_key") if isinstance(entry, dict) else None
            if not text:
                continue
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                continue  # another type's key (RSA and ECDSA keys are PEM)
            if len(raw) == 32:
                versions[int(number)] = raw
        return TransitKey(
            name=name,
            type=str(data.get("type", "unknown")),
            derived=bool(data.get("derived")),
            latest_version=int(data.get("latest_version") or 0),
            versions=versions,
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SignerError(f"vault: {path} answered a key description this backend does not "
                          "understand (is addr= a Transit server?)") from None
