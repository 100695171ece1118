"""vault: URIs are parsed strictly and printed without secrets (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vault_support import require_backend

require_backend()

from agent_rerun.errors import SignerError  # noqa: E402


@pytest.mark.parametrize(("uri", "needle"), [
    ("vault:k?addr=http://h:8200/v1", "no path or query"),
    ("vault:k?addr=ftp://h", "node URLs like https://host:8200"),
    ("vault:k?addr=https://user:pw@h:8200", "must not hold user info"),
    ("vault:k?version=0", "key version number"),
    ("vault:k?version=2&version=3", "given twice"),
    ("vault:k?colour=blue", "unknown URI attribute 'colour'"),
    ("vault:k?mount", "needs a value"),
    ("vault:k?auth=ldap", "auth= must be one of token, approle, jwt"),
    ("vault:a/b", "key name may only hold"),
    ("vault:k?mount=../sys", "mount= must be a path of names"),
])
def test_bad_uris_are_refused_without_repeating_values(uri: str, needle: str) -> None:
    from agent_rerun_vault import parse

    with pytest.raises(SignerError) as caught:
        parse(uri)
    assert needle in str(caught.value)
    assert "pw" not in str(caught.value) and "blue" not in str(caught.value)


def test_round_trip_and_defaults_from_the_environment() -> None:
    from agent_rerun_vault import parse
    from agent_rerun_vault.settings import resolve

    uri = parse("vault:ci-key?addr=https://a:8200,https://b:8200&version=3&mount=pki/transit"
                "&auth=jwt&role=release&jwt-source=env:CI_ID_TOKEN")
    assert uri.addrs == ("https://a:8200", "https://b:8200") and uri.version == 3
    assert parse(uri.format()) == uri
    settings = resolve(parse("vault:k"), {"BAO_ADDR": "http://127.0.0.1:1"})
    assert settings.addrs == ("http://127.0.0.1:1",) and settings.mount == "transit"
    with pytest.raises(SignerError, match=r"\$VAULT_ADDR"):
        resolve(parse("vault:k"), {})
    with pytest.raises(SignerError, match="auth=jwt needs role="):
        resolve(parse("vault:k?auth=jwt"), {"VAULT_ADDR": "http://h:1"})


def test_redaction_never_shows_unknown_values() -> None:
    from agent_rerun_vault import redact

    assert redact("vault:k?addr=http://h:1&mount=t") == "vault:k?addr=http://h:1&mount=t"
    shown = redact("vault:k?secret-id=abcd1234&x%3Dy=zzz999&addr=https://u:p4ss@h:1")
    for secret in ("abcd1234", "zzz999", "p4ss"):
        assert secret not in shown
    assert redact("vault:%ZZsecret?") .startswith("vault:")


def test_secret_files_are_bounded_and_a_silent_fifo_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9 item 11 for this backend's token/role/JWT files (docs/inputs.md)."""
    from agent_rerun_vault.settings import read_secret

    with pytest.raises(SignerError, match="/dev/zero: vault token file is larger than 64 KiB"):
        read_secret("/dev/zero", "token")
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("RERUN_INPUT_TIMEOUT", "0.2")
    with pytest.raises(SignerError, match=r"token\.fifo: cannot read vault token file: nothing"):
        read_secret(str(fifo), "token")
    (tmp_path / "token").write_text("s.abc\n")
    assert read_secret(str(tmp_path / "token"), "token") == "s.abc"
