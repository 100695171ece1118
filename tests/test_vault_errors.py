"""Every vault: failure is one line, exit 3, and never shows a secret (real servers only)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from samples import SAMPLE_STEP
from support import CliResult, run_cli
from vault_support import (  # noqa: F401
    ROOT_TOKEN,
    DevServer,
    bao_dev,
    free_port,
    fresh_key,
    new_key,
    ok,
    require_backend,
    rewriting_proxy,
    start_dev_server,
    use_server,
)

if TYPE_CHECKING:
    from agent_rerun.signer import Signer

require_backend()

EXIT_KEY = 3


def corrupt_signature(item: dict[str, str]) -> None:
    """Flip a bit of one ``batch_results`` item's signature (for a rewriting proxy)."""
    import base64

    prefix, _, sig = item["signature"].rpartition(":")
    raw = bytearray(base64.b64decode(sig))
    raw[0] ^= 1
    item["signature"] = f"{prefix}:{base64.b64encode(bytes(raw)).decode()}"


def last_signature_corrupted(data: bytes) -> bytes:
    """A sign answer with the last of its ``batch_results`` corrupted."""
    reply = json.loads(data)
    corrupt_signature(reply["data"]["batch_results"][-1])
    return json.dumps(reply).encode()


@contextlib.contextmanager
def signer_behind_proxy(server: DevServer, monkeypatch: pytest.MonkeyPatch,
                        rewrite: Callable[[str, int, bytes], bytes]) -> Iterator[Signer]:
    """A signer for a fresh key on ``server``, reached through a rewriting proxy."""
    from agent_rerun.signer import load_signer

    name = new_key(server, "e")
    use_server(monkeypatch, server)
    with rewriting_proxy(server.addr, rewrite) as address, \
            load_signer(f"vault:{name}?addr={address}") as signer:
        yield signer


def small_bundles(count: int) -> list[dict[str, object]]:
    """``count`` distinct unsigned bundles (the seed differs)."""
    from samples import sample_step

    from agent_rerun.capture import bundle_from_step

    return [bundle_from_step(sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i}))
            for i in range(count)]



def one_line_error(result: CliResult, *secrets: str) -> str:
    """The single error line, after checking exit 3 and that no secret leaked anywhere."""
    assert result.returncode == EXIT_KEY, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rerun: error: "), \
        result.stderr
    for secret in (ROOT_TOKEN, *secrets):
        assert secret not in result.stdout + result.stderr
    return result.stderr


def capture(server: DevServer, uri: str, tmp_path: Path, **env: str | None) -> CliResult:
    step = tmp_path / "step.json"
    step.write_text(json.dumps(SAMPLE_STEP), encoding="utf-8")
    return run_cli("capture", step, "-o", tmp_path / "out.rr", "--key", uri,
                   env=server.env(**env))


def test_unreachable_names_every_address(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    a, b = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    message = one_line_error(capture(bao_dev, f"vault:k?addr={a},{b}", tmp_path))
    assert time.monotonic() - started < 10
    assert a in message and b in message and "connection refused" in message
    assert not (tmp_path / "out.rr").exists()


def test_a_stopped_node_among_the_addresses_is_skipped(bao_dev: DevServer,  # noqa: F811
                                                       tmp_path: Path) -> None:
    name = new_key(bao_dev, "e")
    dead = f"http://127.0.0.1:{free_port()}"
    result = capture(bao_dev, f"vault:{name}?addr={dead},{bao_dev.addr}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.rr").is_file()


def test_sealed_server_and_a_sealed_node_skipped(bao_dev: DevServer,  # noqa: F811
                                                 tmp_path: Path) -> None:
    server = start_dev_server(tmp_path)
    try:
        name = fresh_key("e")
        ok(server.addr, "POST", f"transit/keys/{name}", {"type": "ed25519"})
        ok(bao_dev.addr, "POST", f"transit/keys/{name}", {"type": "ed25519"})
        ok(server.addr, "POST", "sys/seal")
        message = one_line_error(capture(server, f"vault:{name}", tmp_path))
        assert "sealed" in message and server.addr in message
        skipped = capture(server, f"vault:{name}?addr={server.addr},{bao_dev.addr}", tmp_path)
        assert skipped.returncode == 0, skipped.stderr
    finally:
        server.stop()


def test_permission_denied_names_the_path(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    name = new_key(bao_dev, "e")
    ok(bao_dev.addr, "PUT", f"sys/policies/acl/read-{name}",
       {"policy": f'path "transit/keys/{name}" {{ capabilities = ["read"] }}'})
    token = ok(bao_dev.addr, "POST", "auth/token/create",
               {"policies": [f"read-{name}"], "ttl": "5m"})["auth"]["client_token"]
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path, VAULT_TOKEN=token),
                             token)
    assert f"permission denied on transit/sign/{name}" in message and "'update'" in message


def test_missing_key_says_how_to_make_it(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    message = one_line_error(capture(bao_dev, "vault:nosuchkey?mount=transit", tmp_path))
    assert "no key 'nosuchkey'" in message
    assert "rerun keygen vault:nosuchkey?mount=transit" in message


@pytest.mark.parametrize(("body", "needle"), [
    ({"type": "rsa-2048"}, "is a rsa-2048 key; agent-rerun signs with ed25519 keys only"),
    ({"type": "ed25519", "derived": True}, "derived key"),
])
def test_unusable_key_types(bao_dev: DevServer, tmp_path: Path, body: dict[str, object],  # noqa: F811
                            needle: str) -> None:
    name = fresh_key("e")
    ok(bao_dev.addr, "POST", f"transit/keys/{name}", body)
    assert needle in one_line_error(capture(bao_dev, f"vault:{name}", tmp_path))


def test_expired_token_without_a_way_to_log_in_again(bao_dev: DevServer,  # noqa: F811
                                                     tmp_path: Path) -> None:
    name = new_key(bao_dev, "e")
    token = ok(bao_dev.addr, "POST", "auth/token/create",
               {"policies": ["root"], "ttl": "1s", "explicit_max_ttl": "1s"})["auth"][
                   "client_token"]
    time.sleep(2.2)
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path, VAULT_TOKEN=token),
                             token)
    assert "expired or invalid" in message and "auth=approle or auth=jwt" in message


def test_tls_verification_failure_names_ca(tmp_path: Path) -> None:
    server = start_dev_server(tmp_path, tls=True)
    try:
        ok(server.addr, "POST", "transit/keys/k", {"type": "ed25519"}, ca=server.ca)
        message = one_line_error(capture(server, "vault:k", tmp_path, VAULT_CACERT=None))
        assert "TLS verification failed" in message and "ca=FILE" in message
        good = capture(server, f"vault:k?ca={server.ca}", tmp_path, VAULT_CACERT=None)
        assert good.returncode == 0, good.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("attribute", ["token", "secret-id", "jwt"])
def test_secrets_in_the_uri_are_refused_unseen(bao_dev: DevServer, tmp_path: Path,  # noqa: F811
                                               attribute: str) -> None:
    secret = "hvs.DoNotShowThis" + uuid.uuid4().hex
    message = one_line_error(capture(bao_dev, f"vault:k?{attribute}={secret}", tmp_path),
                             secret)
    assert f"a secret ({attribute}=) must not be written into the key URI" in message


def test_redaction_hides_what_it_does_not_know() -> None:
    from agent_rerun.signer import display_uri

    shown = display_uri("vault:k?addr=https://u:pw@h:8200&token=s3cret&version=2")
    assert "s3cret" not in shown and "pw" not in shown and "version=2" in shown


def test_token_file_and_missing_token(bao_dev: DevServer, tmp_path: Path) -> None:  # noqa: F811
    name = new_key(bao_dev, "e")
    token_file = tmp_path / "token"
    token_file.write_text(ROOT_TOKEN + "\n")
    good = capture(bao_dev, f"vault:{name}?token-source={token_file}", tmp_path,
                   VAULT_TOKEN=None, HOME=str(tmp_path))
    assert good.returncode == 0, good.stderr
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path, VAULT_TOKEN=None,
                                     HOME=str(tmp_path)))
    assert "no token found" in message and "$VAULT_TOKEN" in message


def test_a_payload_larger_than_the_server_accepts(bao_dev: DevServer,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_rerun.errors import SignerError
    from agent_rerun.signer import load_signer

    name = new_key(bao_dev, "e")
    use_server(monkeypatch, bao_dev)
    with load_signer(f"vault:{name}") as signer, pytest.raises(SignerError) as caught:
        signer.sign(b"x" * (33 * 1024 * 1024))
    assert "larger than the server accepts" in str(caught.value)


def test_a_signature_that_does_not_verify_is_never_written(bao_dev: DevServer,  # noqa: F811
                                                           tmp_path: Path) -> None:
    """A real server never returns a bad signature, so a loopback proxy in front of it
    corrupts the signatures of sign answers (the only stand-in in these tests)."""
    def corrupt(path: str, status: int, data: bytes) -> bytes:
        if "/transit/sign/" not in path or status != 200:
            return data
        reply = json.loads(data)
        for item in reply["data"]["batch_results"]:
            corrupt_signature(item)
        return json.dumps(reply).encode()

    name = new_key(bao_dev, "e")
    with rewriting_proxy(bao_dev.addr, corrupt) as address:
        message = one_line_error(capture(bao_dev, f"vault:{name}?addr={address}", tmp_path))
    assert "does not verify with version 1" in message
    assert not (tmp_path / "out.rr").exists()


@pytest.mark.parametrize("keys", [{"one": {"public_key": "AAAA"}}, ["1"], "x"])
def test_a_malformed_key_description_is_refused_in_one_line(
        bao_dev: DevServer, tmp_path: Path, keys: object) -> None:  # noqa: F811
    """A real server never sends these, so a loopback proxy rewrites its key description;
    they gave internal errors (ValueError, AttributeError) instead of one line."""
    def mangle(path: str, status: int, data: bytes) -> bytes:
        if "/transit/keys/" not in path or status != 200:
            return data
        reply = json.loads(data)
        reply["data"]["keys"] = keys
        return json.dumps(reply).encode()

    name = new_key(bao_dev, "e")
    with rewriting_proxy(bao_dev.addr, mangle) as address:
        message = one_line_error(capture(bao_dev, f"vault:{name}?addr={address}", tmp_path))
    assert f"transit/keys/{name} answered a key description" in message


def test_a_missing_ca_bundle_names_where_it_was_given(bao_dev: DevServer,  # noqa: F811
                                                      tmp_path: Path) -> None:
    """requests raised a bare OSError (exit 1, no ca= in it) for a CA path that is not there."""
    https = f"https://127.0.0.1:{free_port()}"
    message = one_line_error(capture(bao_dev, f"vault:k?addr={https}&ca=/no/such/ca.pem",
                                     tmp_path))
    assert "ca= names the CA bundle /no/such/ca.pem, which is not a readable file" in message
    message = one_line_error(capture(bao_dev, f"vault:k?addr={https}", tmp_path,
                                     VAULT_CACERT="/no/such/env-ca.pem"))
    assert "$VAULT_CACERT names the CA bundle /no/such/env-ca.pem" in message


def test_a_token_no_header_can_carry_is_refused_in_words(bao_dev: DevServer,  # noqa: F811
                                                         tmp_path: Path) -> None:
    """Non-ASCII gave an internal error; a newline, "no server could serve (InvalidHeader)"."""
    name = new_key(bao_dev, "e")
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path,
                                     VAULT_TOKEN="hvs.s3cr\u20act"), "s3cr")
    assert "the token in $VAULT_TOKEN holds spaces, control or non-ASCII characters" in message
    token_file = tmp_path / "token"
    token_file.write_text("hvs.first-half\nhvs.second-half\n")
    message = one_line_error(capture(bao_dev, f"vault:{name}?token-source={token_file}",
                                     tmp_path), "first-half", "second-half")
    assert f"the token in {token_file} holds spaces" in message


@pytest.mark.parametrize(("attributes", "needle"), [
    ("secret-id-source=/ci/secret-id", "secret-id-source= is for auth=approle, but this key "
     "logs in with auth=token"),
    ("auth=approle&role-id=r1&jwt-source=/ci/oidc", "jwt-source= is for auth=jwt"),
    ("auth=jwt&role=release&token-source=/ci/token", "token-source= is for auth=token"),
])
def test_settings_of_another_login_method_are_refused(bao_dev: DevServer,  # noqa: F811
                                                      tmp_path: Path, attributes: str,
                                                      needle: str) -> None:
    """``secret-id-source=`` without ``auth=approle`` signed with $VAULT_TOKEN's identity."""
    name = new_key(bao_dev, "e")
    message = one_line_error(capture(bao_dev, f"vault:{name}?{attributes}", tmp_path))
    assert needle in message
    assert not (tmp_path / "out.rr").exists()


def test_settings_outside_the_uri_are_checked_and_named(bao_dev: DevServer,  # noqa: F811
                                                        tmp_path: Path) -> None:
    """$VAULT_ADDR errors said "addr"; a [vault] mount was never checked at all."""
    message = one_line_error(capture(bao_dev, "vault:k", tmp_path,
                                     VAULT_ADDR="https://user:pw1234@h:8200"), "pw1234")
    assert "$VAULT_ADDR must not hold user info" in message
    name = new_key(bao_dev, "e")
    config = tmp_path / "config.toml"
    config.write_text('[vault]\nmount = "transit/../sys"\n')
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path,
                                     RERUN_CONFIG=str(config)))
    assert f"{config}: [vault] mount must be a path of names" in message
    config.write_text('[vault]\nauth = "approle"\nrole_id = "r1"\njwt_source = "/ci/oidc"\n')
    message = one_line_error(capture(bao_dev, f"vault:{name}", tmp_path,
                                     RERUN_CONFIG=str(config)))
    assert f"{config}: [vault] jwt_source is for auth=jwt" in message


def test_a_redirect_is_not_followed_with_the_token(bao_dev: DevServer,  # noqa: F811
                                                   tmp_path: Path) -> None:
    """requests resends X-Vault-Token to any Location; the node is skipped instead.

    The bao dev server forwards instead of redirecting, so a loopback stand-in
    answers 307 towards a second listener that records what reaches it.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-Vault-Token") or "")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    recorder = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    elsewhere = f"http://127.0.0.1:{recorder.server_address[1]}"

    class Redirector(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", elsewhere + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    for server in (recorder, redirector):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        name = new_key(bao_dev, "e")
        redirecting = f"http://127.0.0.1:{redirector.server_address[1]}"
        good = capture(bao_dev, f"vault:{name}?addr={redirecting},{bao_dev.addr}", tmp_path)
        assert good.returncode == 0, good.stderr
        message = one_line_error(capture(bao_dev, f"vault:{name}?addr={redirecting}", tmp_path))
        assert f"{redirecting} (HTTP 307 redirect, not followed)" in message
        assert ROOT_TOKEN not in seen and seen == []
    finally:
        redirector.shutdown()
        recorder.shutdown()


def test_a_server_killed_mid_batch_leaves_only_complete_bundles(tmp_path: Path) -> None:
    """kill -9 of the only server while ``rerun capture`` of 2,200 steps runs: exit 3 in one
    line, and what was written is whole chunks of complete bundles, in order, that verify.

    The second chunk is sent while the first is written, so it may be signed before
    the kill lands (then two chunks are written); the third is sent only after the
    first is written, and cannot be.

    The bundles go to /dev/shm when there is one: 1,000 fsynced files on a busy
    disk take ten seconds, and what is tested is the batch, not the disk.
    """
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from samples import sample_actual, sample_step

    from agent_rerun.verify import verify

    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else tmp_path))
    server = start_dev_server(tmp_path)
    try:
        name = fresh_key("e")
        ok(server.addr, "POST", f"transit/keys/{name}", {"type": "ed25519"})
        steps, out = scratch / "steps", scratch / "out"
        steps.mkdir()
        records = {}
        for i in range(2200):
            step = sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i})
            (steps / f"s{i:04}.json").write_text(json.dumps(step), encoding="utf-8")
            records[f"s{i:04}.rr"] = step
        env = {k: v for k, v in {**os.environ, **server.env()}.items() if v is not None}
        run = subprocess.Popen(
            [sys.executable, "-m", "agent_rerun", "capture",
             *sorted(str(p) for p in steps.iterdir()), "-o", f"{out}/", "--key",
             f"vault:{name}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (out.is_dir() and any(out.glob("*.rr"))) and time.monotonic() < deadline:
            assert run.poll() is None, run.communicate()
            time.sleep(0.005)
        server.process.kill()  # the first chunk is being written; the next cannot be signed
        stdout, stderr = run.communicate(timeout=60)
        result = CliResult(run.returncode, stdout, stderr)
        message = one_line_error(result)
        assert f"{server.addr} (connection refused)" in message
        written = sorted(p.name for p in out.iterdir())
        assert len(written) in (1000, 2000)  # whole chunks (SIGN_CHUNK); no temp file
        assert written == sorted(records)[:len(written)]  # in order: nothing after a gap
        assert f"s{len(written):04}.json" in message  # the first step not signed
        public = json.loads((out / written[0]).read_text())["signature"]["pubkey"]
        for file_name in written:
            bundle = json.loads((out / file_name).read_text())
            assert verify(bundle, sample_actual(records[file_name]),
                          trusted_keys=[public]).verified, file_name
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def test_keygen_and_keys_list_with_a_node_down(bao_dev: DevServer) -> None:  # noqa: F811
    """The live node's "no such key" was waited out because the dead node said nothing,
    and keygen then failed with "no key ...; create it with: rerun keygen"."""
    name = fresh_key("e")
    dead = f"http://127.0.0.1:{free_port()}"
    made = run_cli("keygen", f"vault:{name}?addr={dead},{bao_dev.addr}", env=bao_dev.env())
    assert made.returncode == 0, made.stderr
    assert f"vault:{name}?addr={dead},{bao_dev.addr}&version=1" in made.stdout
    mount = "empty-" + fresh_key("m")
    ok(bao_dev.addr, "POST", f"sys/mounts/{mount}", {"type": "transit"})
    listed = run_cli("keys", "list", f"vault:?addr={dead},{bao_dev.addr}&mount={mount}",
                     env=bao_dev.env())
    assert listed.returncode == 0, listed.stderr
    assert "no keys at" in listed.stdout + listed.stderr


def test_a_bad_signature_in_a_large_batch_is_caught_by_the_checking_process(
        bao_dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """1,200 signatures are checked in the helper process; one corrupted by the proxy
    (the only stand-in: a real server never returns one) fails the whole batch, and
    when the helper is killed the signer checks the next batches itself."""
    from agent_rerun.capture import sign_bundles
    from agent_rerun.errors import SignerError
    from agent_rerun.sigcheck import BatchChecker

    corrupting = [False]

    def corrupt_one(path: str, status: int, data: bytes) -> bytes:
        if "/transit/sign/" not in path or status != 200 or not corrupting[0]:
            return data
        return last_signature_corrupted(data)

    bundles = small_bundles(1200)
    with signer_behind_proxy(bao_dev, monkeypatch, corrupt_one) as signer:
        assert len(sign_bundles(bundles, signer)) == 1200
        checker = signer._batch_checker  # type: ignore[attr-defined]
        assert isinstance(checker, BatchChecker)  # the helper checked them
        corrupting[0] = True
        with pytest.raises(SignerError, match="does not verify with version 1"):
            sign_bundles(bundles, signer)
        checker.processes[0].kill()  # the helper dies (nothing else can make it)
        checker.processes[0].wait(10)
        with pytest.raises(SignerError, match="does not verify with version 1"):
            sign_bundles(bundles, signer)  # checked here now, still caught
        assert signer._batch_checker is False  # type: ignore[attr-defined]
        corrupting[0] = False
        assert len(sign_bundles(bundles, signer)) == 1200


def test_a_batch_that_fails_midway_leaves_no_answer_for_the_next_batch(
        bao_dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The first request's signatures (one corrupted) go to the checking process, then
    the second request fails: the next batch must not be judged by that unread answer.
    The proxy is the only stand-in: a real server neither corrupts nor garbles."""
    from agent_rerun.capture import sign_bundles
    from agent_rerun.errors import SignerError

    signs = [0]

    def first_corrupt_second_garbled(path: str, status: int, data: bytes) -> bytes:
        if "/transit/sign/" not in path or status != 200:
            return data
        signs[0] += 1
        if signs[0] == 2:
            return b'{"data": {}}'
        if signs[0] != 1:
            return data
        return last_signature_corrupted(data)

    bundles = small_bundles(1200)
    with signer_behind_proxy(bao_dev, monkeypatch, first_corrupt_second_garbled) as signer:
        with pytest.raises(SignerError, match="answered no results"):
            sign_bundles(bundles, signer)
        assert len(sign_bundles(bundles, signer)) == 1200  # judged on its own answers
