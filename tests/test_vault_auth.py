"""Short-lived CI identities against a real server: AppRole, JWT, tokens expiring mid-batch.

The AppRole identity gets the sign-only policy shipped in conf/; the JWT tests
make their own RSA key, configure ``auth/jwt`` with it and bind a role to
repository and branch claims, as a CI's OIDC provider would be.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest
from samples import SAMPLE_STEP
from support import REPO, CliResult, run_cli
from vault_support import (  # noqa: F401
    ROOT_TOKEN,
    DevServer,
    bao_dev,
    environ_for,
    new_key,
    ok,
    require_backend,
)

require_backend()

EXIT_KEY = 3
POLICY = REPO / "conf" / "vault-sign-only.hcl"


def sign_only_policy(server: DevServer, key: str) -> str:
    """The shipped policy file, for ``key`` instead of its example key name."""
    name = f"sign-{key}"
    text = POLICY.read_text(encoding="utf-8").replace("rerun-ci", key)
    ok(server.addr, "PUT", f"sys/policies/acl/{name}", {"policy": text})
    return name


def capture(server: DevServer, uri: str, tmp_path: Path, **env: str | None) -> CliResult:
    step = tmp_path / "step.json"
    step.write_text(json.dumps(SAMPLE_STEP), encoding="utf-8")
    out = tmp_path / f"{uuid.uuid4().hex}.rr"
    return run_cli("capture", step, "-o", out, "--key", uri,
                   env=server.env(VAULT_TOKEN=None, HOME=str(tmp_path), **env))


def no_secret(result: CliResult, *secrets: str) -> None:
    for secret in (ROOT_TOKEN, *secrets):
        assert secret not in result.stdout + result.stderr


class AppRole:
    def __init__(self, server: DevServer, policy: str, tmp_path: Path, *,
                 token_ttl: str = "5m", secret_id_num_uses: int = 1) -> None:
        self.server = server
        self.mount = "approle-" + uuid.uuid4().hex[:8]
        ok(server.addr, "POST", f"sys/auth/{self.mount}", {"type": "approle"})
        ok(server.addr, "POST", f"auth/{self.mount}/role/ci",
           {"token_policies": [policy], "secret_id_num_uses": secret_id_num_uses,
            "token_ttl": token_ttl, "token_max_ttl": token_ttl})
        self.role_id = ok(server.addr, "GET", f"auth/{self.mount}/role/ci/role-id")["data"][
            "role_id"]
        self.secret_file = tmp_path / f"secret-id-{self.mount}"

    def fresh_secret_id(self) -> str:
        secret = ok(self.server.addr, "POST", f"auth/{self.mount}/role/ci/secret-id")["data"][
            "secret_id"]
        self.secret_file.write_text(secret)
        return str(secret)

    def uri(self, key: str, *, role_id_file: Path | None = None) -> str:
        if role_id_file is None:
            role = f"role-id={self.role_id}"
        else:
            role_id_file.write_text(self.role_id)
            role = f"role-id-source={role_id_file}"
        return (f"vault:{key}?auth=approle&auth-mount={self.mount}&{role}"
                f"&secret-id-source={self.secret_file}")


def approle_for_this_process(server: DevServer, key: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch, *, token_ttl: str,
                             secret_id_num_uses: int) -> AppRole:
    """A sign-only AppRole with a fresh secret id, and this process pointed at the
    server with no token of its own (for in-process ``load_signer``)."""
    role = AppRole(server, sign_only_policy(server, key), tmp_path, token_ttl=token_ttl,
                   secret_id_num_uses=secret_id_num_uses)
    role.fresh_secret_id()
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    for variable, value in environ_for(server).items():
        if variable != "VAULT_TOKEN":
            monkeypatch.setenv(variable, value)
    return role


def test_approle_with_the_sign_only_policy(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    key = new_key(bao_dev, "a")
    role = AppRole(bao_dev, sign_only_policy(bao_dev, key), tmp_path)
    secret = role.fresh_secret_id()
    good = capture(bao_dev, role.uri(key), tmp_path)
    assert good.returncode == 0, good.stderr
    no_secret(good, secret)

    secret = role.fresh_secret_id()
    keygen = run_cli("keygen", role.uri(key + "x"), env=bao_dev.env(VAULT_TOKEN=None))
    assert keygen.returncode == EXIT_KEY
    assert f"permission denied on transit/keys/{key}x" in keygen.stderr
    no_secret(keygen, secret)

    secret = role.fresh_secret_id()
    rotate = run_cli("keys", "rotate", role.uri(key), env=bao_dev.env(VAULT_TOKEN=None))
    assert rotate.returncode == EXIT_KEY
    assert f"permission denied on transit/keys/{key}/rotate" in rotate.stderr
    no_secret(rotate, secret)

    used = capture(bao_dev, role.uri(key), tmp_path)  # the single-use secret id was spent
    assert used.returncode == EXIT_KEY
    assert f"approle login at auth/{role.mount}/login was refused" in used.stderr
    no_secret(used, secret)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(private_key: object, claims: dict[str, object]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    assert isinstance(private_key, rsa.RSAPrivateKey)
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = private_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64url(signature)}"


@pytest.fixture
def jwt_login(bao_dev: DevServer) -> tuple[str, str, object]:  # noqa: F811
    """An ``auth/jwt``-type mount trusting our own key; a role bound to repo and branch."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    key = new_key(bao_dev, "a")
    mount = "jwt-" + uuid.uuid4().hex[:8]
    ok(bao_dev.addr, "POST", f"sys/auth/{mount}", {"type": "jwt"})
    ok(bao_dev.addr, "POST", f"auth/{mount}/config",
       {"jwt_validation_pubkeys": [pem.decode()], "bound_issuer": "https://ci.example"})
    ok(bao_dev.addr, "POST", f"auth/{mount}/role/release",
       {"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["agent-rerun"],
        "bound_claims": {"repository": "org/app", "ref": "refs/heads/main"},
        "token_policies": [sign_only_policy(bao_dev, key)], "token_ttl": "5m"})
    return key, mount, private


def ci_claims(ref: str) -> dict[str, object]:
    now = int(time.time())
    return {"iss": "https://ci.example", "aud": "agent-rerun", "sub": "repo:org/app",
            "repository": "org/app", "ref": ref, "iat": now, "nbf": now - 5, "exp": now + 300}


def test_jwt_login_bound_to_repository_and_branch(bao_dev: DevServer, tmp_path: Path,  # noqa: F811
                                                  jwt_login: tuple[str, str, object]) -> None:
    key, mount, private = jwt_login
    token_file = tmp_path / "oidc-token"
    uri = f"vault:{key}?auth=jwt&auth-mount={mount}&role=release&jwt-source={token_file}"

    good_jwt = make_jwt(private, ci_claims("refs/heads/main"))
    token_file.write_text(good_jwt)
    good = capture(bao_dev, uri, tmp_path)
    assert good.returncode == 0, good.stderr
    no_secret(good, good_jwt)

    other_jwt = make_jwt(private, ci_claims("refs/heads/feature"))
    token_file.write_text(other_jwt)
    refused = capture(bao_dev, uri, tmp_path)
    assert refused.returncode == EXIT_KEY
    assert refused.stderr.count("\n") == 1
    assert f"jwt login at auth/{mount}/login was refused" in refused.stderr
    assert "ref" in refused.stderr  # the server names the claim that did not match
    no_secret(refused, other_jwt)

    from_env = capture(bao_dev, f"vault:{key}?auth=jwt&auth-mount={mount}&role=release",
                       tmp_path, VAULT_JWT=good_jwt)
    assert from_env.returncode == 0, from_env.stderr


def test_a_token_expiring_mid_batch_is_renewed_by_logging_in_again(
        bao_dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Tokens live 2 s; a batch lasting longer completes and every signature verifies."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from agent_rerun.signer import load_signer

    key = new_key(bao_dev, "a")
    role = approle_for_this_process(bao_dev, key, tmp_path, monkeypatch, token_ttl="2s",
                                    secret_id_num_uses=0)
    payloads = [b"step %d" % i for i in range(600)]
    with load_signer(role.uri(key, role_id_file=tmp_path / "role-id")) as signer:
        signatures = []
        for start in range(0, len(payloads), 150):
            signatures += signer.sign_many(payloads[start:start + 150])  # type: ignore[attr-defined]
            time.sleep(1.2)
        # A token revoked early (not just expired) is answered by one fresh login too.
        ok(bao_dev.addr, "POST", f"sys/leases/revoke-prefix/auth/{role.mount}/login")
        signatures += signer.sign_many([b"after revocation"])  # type: ignore[attr-defined]
        logins = signer._cluster.logins  # type: ignore[attr-defined]
        public = Ed25519PublicKey.from_public_bytes(signer.public_key)
    assert logins >= 3
    for payload, signature in zip([*payloads, b"after revocation"], signatures, strict=True):
        public.verify(signature, payload)


def test_a_failed_early_login_keeps_the_token_to_its_end(
        bao_dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A single-use secret id cannot log in twice: the first token serves its whole life.

    The backend logs in again 2 s before a lease ends; with the secret id spent
    that login is refused, and the batch goes on with the token it has until the
    lease really ends, then fails in one line.
    """
    from agent_rerun.errors import SignerError
    from agent_rerun.signer import load_signer

    key = new_key(bao_dev, "a")
    role = approle_for_this_process(bao_dev, key, tmp_path, monkeypatch, token_ttl="8s",
                                    secret_id_num_uses=1)
    with load_signer(role.uri(key)) as signer:
        started = time.monotonic()
        signer.sign_many([b"first"])  # type: ignore[attr-defined]
        time.sleep(max(0.0, started + 6.5 - time.monotonic()))  # inside the last 2 s
        in_the_margin = signer.sign_many([b"in the margin"])  # type: ignore[attr-defined]
        assert len(in_the_margin) == 1
        time.sleep(max(0.0, started + 8.5 - time.monotonic()))
        with pytest.raises(SignerError, match=f"approle login at auth/{role.mount}/login "
                                              "was refused"):
            signer.sign_many([b"after the end"])  # type: ignore[attr-defined]
