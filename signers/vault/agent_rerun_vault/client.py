"""Requests to one or several server nodes: failover, login, re-login, one-line errors.

Any node of a cluster can serve a sign (a standby forwards it or, in OpenBao
2.5 and later, serves it itself), so a request that fails because its node is
down, sealed, a standby without a leader, or briefly lacks a key that was just
created is tried on the next node, with backoff and an overall deadline.
Ed25519 is deterministic: repeating a sign can never yield a second, different
signature. Errors that another node would repeat (a policy that refuses) stop
at once. No message ever holds a token, secret id or JWT.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac.adapters  # type: ignore[import-untyped]
import requests

from agent_rerun.errors import SignerError
from agent_rerun_vault.settings import Settings, read_secret

#: Give up on a request after this long, whatever the nodes say.
DEADLINE_SECONDS = 30.0
#: Nodes that refuse connections, are sealed or lack the key (replication lag) on
#: every try are reported after this many rounds (about 0.7 s); a node answering
#: "unavailable" (an election under way) is retried until the deadline.
MISSING_ROUNDS = 4
#: Log in again this long before a token's lease ends.
RENEW_MARGIN_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 10.0
#: Node failures that waiting a few rounds will not change: the node gave no answer.
SILENT_KINDS = frozenset({"tls", "sealed", "unreachable", "redirected"})


class ServerRefused(SignerError):
    """The server answered a request with an error another node would repeat."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooComplex(SignerError):
    """The server refused a batch as too many items; the caller sends smaller ones."""


class TooLarge(SignerError):
    """The request body is larger than the server accepts."""


@dataclass(frozen=True)
class Operation:
    """What a request is for, so a refusal can name the policy path and capability."""

    path: str
    capability: str
    key: str = ""


class _NodeFailure(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # unreachable, sealed, unavailable, tls, missing, redirected
        self.reason = reason


class _Forbidden(Exception):
    pass


class Cluster:
    """The nodes of one server (or one node), a logged-in token and the retry policy."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._environ = environ
        self._session = requests.Session()
        self._session.verify = settings.verify  # hvac takes it from a shared session
        self._adapters = [
            # No redirects: requests would resend X-Vault-Token (and a login's secret id)
            # to wherever a Location header points, another host or plain http included.
            hvac.adapters.RawAdapter(base_uri=addr, verify=settings.verify,
                                     timeout=REQUEST_TIMEOUT_SECONDS, session=self._session,
                                     namespace=settings.namespace or None,
                                     allow_redirects=False)
            for addr in settings.addrs
        ]
        self._current = 0
        self._token = ""
        #: When the token's lease ends, and when to log in again ahead of that.
        self._ends_at: float | None = None
        self._renew_at: float | None = None
        self.deadline_seconds = DEADLINE_SECONDS
        self.logins = 0
        #: HTTP requests sent (every node, every attempt): what batching saves.
        self.requests_sent = 0

    def close(self) -> None:
        self._token = ""
        self._session.close()

    # ------------------------------------------------------------ requests

    def request(self, method: str, op: Operation, body: Any = None, *,
                probe: bool = False) -> dict[str, Any]:
        """Send ``method`` to ``op.path``, logged in, with failover.

        With ``probe``, a path every answering node reports missing raises
        ``LookupError`` at once instead of waiting out replication lag.
        """
        self._ensure_login()
        try:
            return self._with_failover(method, op, body, token=True, probe=probe)
        except _Forbidden:
            pass
        # Refused: a policy that does not allow it, or a token that died early. Only
        # the second is worth a new login (which may spend a single-use secret id).
        if self._token_is_valid():
            raise SignerError(self._denied(op))
        if self.settings.auth == "token":
            raise SignerError(
                "vault: the token is expired or invalid, and auth=token cannot log in again; "
                "give a fresh token, or use auth=approle or auth=jwt so agent-rerun can")
        self._login()
        try:
            return self._with_failover(method, op, body, token=True, probe=probe)
        except _Forbidden:
            raise SignerError(self._denied(op)) from None

    def _denied(self, op: Operation) -> str:
        return (f"vault: permission denied on {op.path}: the token's policy must allow "
                f"{op.capability!r} on {op.path}")

    def _token_is_valid(self) -> bool:
        try:
            self._with_failover("GET", Operation("auth/token/lookup-self", "read"), None,
                                token=True)
        except _Forbidden:
            return False
        except SignerError:
            return True  # cannot tell; report the refusal of the original request
        return True  # lookup-self is in every token's default policy

    def _with_failover(self, method: str, op: Operation, body: Any, *,
                       token: bool, probe: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + self.deadline_seconds
        failures: dict[str, _NodeFailure] = {}
        rounds = 0
        count = len(self._adapters)
        while True:
            for offset in range(count):
                index = (self._current + offset) % count
                try:
                    result = self._once(index, method, op, body, token=token)
                except _NodeFailure as failure:
                    failures[self.settings.addrs[index]] = failure
                    continue
                self._current = index
                return result
            rounds += 1
            kinds = {f.kind for f in failures.values()}
            # A probe asks whether the path exists: the nodes that answered say no, and
            # the ones that did not answer (down, sealed) cannot say otherwise.
            if probe and "missing" in kinds and kinds <= SILENT_KINDS | {"missing"}:
                raise LookupError(op.path)
            out_of_time = time.monotonic() >= deadline
            settled = kinds <= SILENT_KINDS | {"missing"}
            if (out_of_time or kinds <= {"tls"} or (settled and rounds >= MISSING_ROUNDS)):
                raise SignerError(self._summary(op, failures, rounds, out_of_time))
            time.sleep(min(0.05 * 2 ** rounds, 1.0, max(0.0, deadline - time.monotonic())))

    def _once(self, index: int, method: str, op: Operation, body: Any, *,
              token: bool) -> dict[str, Any]:
        adapter = self._adapters[index]
        adapter.token = self._token if token else None
        self.requests_sent += 1
        try:
            response = adapter.request(method, f"/v1/{op.path}", json=body,
                                       raise_exception=False)
        except requests.exceptions.SSLError as exc:
            raise _NodeFailure("tls", _short_reason(exc)) from None
        except requests.exceptions.RequestException as exc:  # refused, reset, timed out, ...
            raise _NodeFailure("unreachable", _short_reason(exc)) from None
        finally:
            adapter.token = None
        status = response.status_code
        payload = _json(response)
        errors = " ".join(str(e) for e in payload.get("errors") or [])
        if status in (200, 204):
            return payload
        if status == 403:
            raise _Forbidden()
        if 300 <= status < 400:
            raise _NodeFailure("redirected", f"HTTP {status} redirect, not followed")
        if status == 413 or "request body too large" in errors:
            raise TooLarge("vault: the request is larger than the server accepts "
                           "(max_request_size, 32 MiB by default)")
        if "high complexity" in errors or "maximum number of" in errors:
            raise TooComplex(f"vault: the server refused the batch: {errors}")
        if status == 503 and "sealed" in errors.lower():
            raise _NodeFailure("sealed", "sealed")
        if status in (429, 500, 502, 503, 504):
            raise _NodeFailure("unavailable", f"HTTP {status} {errors}".strip())
        if "key not found" in errors or (status == 404 and not errors):
            raise _NodeFailure("missing", "key not found")
        if status == 404 and "no handler for route" in errors:
            mount = op.path.split("/")[0]
            raise SignerError(f"vault: no such path {op.path} on {self.settings.addrs[index]}; "
                              f"is a Transit engine mounted at {mount}/? "
                              f"(bao secrets enable -path={mount} transit)")
        raise ServerRefused(f"vault: {method} {op.path} failed on {self.settings.addrs[index]}: "
                            f"HTTP {status} {errors}".rstrip(), errors or f"HTTP {status}")

    def _summary(self, op: Operation, failures: Mapping[str, _NodeFailure], rounds: int,
                 out_of_time: bool) -> str:
        kinds = {f.kind for f in failures.values()}
        tried = ", ".join(f"{addr} ({f.reason})" for addr, f in failures.items())
        if "missing" in kinds and op.key:
            return (f"vault: no key {op.key!r} at mount {self.settings.mount!r} ({tried}); "
                    f"create it with: rerun keygen {self.settings.uri.with_key(op.key).format()}")
        if kinds == {"tls"}:
            return (f"vault: TLS verification failed ({tried}); give the server's CA bundle "
                    "with ca=FILE in the URI (or $VAULT_CACERT)")
        if kinds <= {"sealed", "tls"}:
            return f"vault: the server is sealed ({tried}); unseal it first"
        when = f"after {self.deadline_seconds:g} s" if out_of_time else f"after {rounds} rounds"
        return f"vault: no server could serve {op.path} {when}; tried {tried}"

    # ------------------------------------------------------------ login

    def _ensure_login(self) -> None:
        now = time.monotonic()
        if not self._token or (self._ends_at is not None and now >= self._ends_at):
            self._login()
        elif self._renew_at is not None and now >= self._renew_at:
            # Early, so no request meets a token dying under it. A login that fails
            # now (a single-use secret id already spent, say) must not stop a
            # batch whose token still works: keep it to its end, and fail then.
            token, ends_at = self._token, self._ends_at
            try:
                self._login()
            except SignerError:
                self._token, self._ends_at, self._renew_at = token, ends_at, None

    def _login(self) -> None:
        """Get a token: read it (auth=token) or log in with AppRole or a JWT."""
        settings = self.settings
        self.logins += 1
        if settings.auth == "token":
            self._token = read_secret(settings.token_source, "token",
                                      env_defaults=("VAULT_TOKEN", "BAO_TOKEN"),
                                      file_default=Path("~/.vault-token").expanduser(),
                                      environ=self._environ)
            self._ends_at = self._renew_at = None
            return
        if settings.auth == "approle":
            role_id = settings.role_id or read_secret(
                settings.role_id_source, "role id", env_defaults=("VAULT_ROLE_ID",),
                environ=self._environ)
            secret_id = read_secret(settings.secret_id_source, "secret id",
                                    env_defaults=("VAULT_SECRET_ID",), environ=self._environ)
            body = {"role_id": role_id, "secret_id": secret_id}
        else:
            jwt = read_secret(settings.jwt_source, "jwt", env_defaults=("VAULT_JWT",),
                              environ=self._environ)
            body = {"role": settings.role, "jwt": jwt}
        path = f"auth/{settings.auth_mount}/login"
        self._token = ""
        try:
            reply = self._with_failover("POST", Operation(path, "update"), body, token=False)
        except _Forbidden:
            raise SignerError(f"vault: {settings.auth} login at {path} was refused "
                              "(permission denied)") from None
        except ServerRefused as exc:
            raise SignerError(_without(f"vault: {settings.auth} login at {path} was refused: "
                                       f"{exc.reason}", body.values())) from None
        except SignerError as exc:
            raise SignerError(_without(str(exc), body.values())) from None
        auth = reply.get("auth") or {}
        token = auth.get("client_token")
        if not isinstance(token, str) or not token:
            raise SignerError(f"vault: {path} returned no token")
        self._token = token
        lease = auth.get("lease_duration")
        if isinstance(lease, int) and lease > 0:
            self._ends_at = time.monotonic() + lease
            self._renew_at = self._ends_at - min(RENEW_MARGIN_SECONDS, lease / 4)
        else:
            self._ends_at = self._renew_at = None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {"errors": [response.text[:200].strip()]} if response.text else {}
    return value if isinstance(value, dict) else {}


def _short_reason(exc: Exception) -> str:
    text = str(exc)
    for marker, reason in (("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
                           ("Connection refused", "connection refused"),
                           ("timed out", "timed out"),
                           ("Name or service not known", "unknown host"),
                           ("Connection reset", "connection reset"),
                           ("RemoteDisconnected", "connection closed"),
                           ("Connection aborted", "connection aborted")):
        if marker in text:
            return reason
    return type(exc).__name__


def _without(message: str, secrets: Any) -> str:
    """``message`` with any secret value cut out (a server may echo a bad secret id)."""
    for secret in secrets:
        if isinstance(secret, str) and len(secret) >= 4:
            message = message.replace(secret, "<not shown>")
    return message
