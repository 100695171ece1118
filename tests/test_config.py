"""The CLI config file: where it is found, what it may hold, how paths are anchored."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agent_rerun.config import CONFIG_ENV, BackendSection, Config, default_config_path, load_config
from agent_rerun.errors import InputError

REPO = Path(__file__).resolve().parent.parent
KEY = base64.b64encode(bytes(range(32))).decode()
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f bob"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_full_config(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        f"""
[sign]
key = "~/keys/signing.pem"

[verify]
trusted_keys = ["{KEY} alice", "{SSH_KEY}"]
trusted_keys_file = "allowed_signers"
require_signature = true

[pkcs11]
module = "/usr/lib/softhsm/libsofthsm2.so"
""",
    )
    config = load_config(path)
    assert config == Config(
        source=path,
        sign_key=str(tmp_path / "home" / "keys" / "signing.pem"),
        trusted_keys=(f"{KEY} alice", SSH_KEY),
        trusted_keys_file=tmp_path / "allowed_signers",
        require_signature=True,
        backend_sections={"pkcs11": BackendSection(
            "pkcs11", {"module": "/usr/lib/softhsm/libsofthsm2.so"}, path)},
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("keys/k.pem", "{base}/keys/k.pem"),
        ("file:keys/k.pem", "file:{base}/keys/k.pem"),
        ("/abs/k.pem", "/abs/k.pem"),
        ("file:///abs/k.pem", "file:///abs/k.pem"),
        ("keyring:signing?service=team", "keyring:signing?service=team"),
        ("pkcs11:token=t;object=o", "pkcs11:token=t;object=o"),
    ],
)
def test_sign_key_anchoring(tmp_path: Path, written: str, expected: str) -> None:
    path = _config(tmp_path, f'[sign]\nkey = "{written}"\n')
    assert load_config(path).sign_key == expected.format(base=tmp_path)


def test_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "[verify]\nrequire_signature = true\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    config = load_config()
    assert config.source == path
    assert config.require_signature is True


def test_explicit_path_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = _config(tmp_path, "[verify]\nrequire_signature = true\n")
    other = tmp_path / "other.toml"
    other.write_text('[sign]\nkey = "/k"\n')
    monkeypatch.setenv(CONFIG_ENV, str(env_file))
    assert load_config(other) == Config(source=other, sign_key="/k")


def test_default_location_used_and_optional(tmp_path: Path) -> None:
    default = default_config_path()
    assert default.name == "config.toml"
    assert load_config() == Config()  # absent: empty
    default.parent.mkdir(parents=True)
    default.write_text('[sign]\nkey = "/k"\n')
    assert load_config() == Config(source=default, sign_key="/k")


def test_empty_env_means_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = default_config_path()
    default.parent.mkdir(parents=True)
    default.write_text('[sign]\nkey = "/k"\n')
    monkeypatch.setenv(CONFIG_ENV, "")
    assert load_config() == Config()


def test_named_but_missing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "typo.toml"))
    with pytest.raises(InputError, match=r"typo\.toml: cannot read config file"):
        load_config()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[signing]\nkey = 'x'\n", "unknown section [signing]"),
        ("[verify]\ntrusted_key = ['x']\n", "unknown key verify.trusted_key"),
        ("[sign]\nkey = 3\n", "sign.key must be a string"),
        ("[sign]\nkey = ''\n", "sign.key must be a string"),
        ("[verify]\nrequire_signature = 'yes'\n", "verify.require_signature must be a boolean"),
        ("[verify]\ntrusted_keys = 'abc'\n", "verify.trusted_keys must be a list of strings"),
        ("[verify]\ntrusted_keys = ['not a key']\n", "verify.trusted_keys[0]"),
        ("sign = 'x'\n", "sign must be a [sign] table"),
        ("[sign\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert needle in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff")
    with pytest.raises(InputError, match="not UTF-8"):
        load_config(path)


def test_shipped_example_parses() -> None:
    config = load_config(REPO / "conf" / "config.example.toml")
    assert config.sign_key is not None
    assert config.trusted_keys_file is not None


@pytest.mark.parametrize("xdg", [None, "", "rel", "rel/", "./rel//x/", "/abs", "/abs/", "//net/x",
                                 "///three", "/a/./b/../c", "/with space/é", "~/tilde"])
@pytest.mark.parametrize("home", ["/home/user", "/home/user/", "/"])
def test_default_location_is_what_click_and_pathlib_give(
        monkeypatch: pytest.MonkeyPatch, xdg: str | None, home: str) -> None:
    """``rerun verify`` finds the config without click or pathlib: same string."""
    import click

    from agent_rerun.config import APP_NAME, default_config_location

    monkeypatch.setenv("HOME", home)
    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert default_config_location() == str(Path(click.get_app_dir(APP_NAME)) / "config.toml")


def test_dangling_config_link_at_default_location_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERUN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "agent-rerun"
    folder.mkdir()
    (folder / "config.toml").symlink_to(tmp_path / "unmounted" / "config.toml")
    with pytest.raises(InputError, match="dangling symbolic link"):
        load_config()
    (folder / "config.toml").unlink()
    (folder / "config.toml").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        load_config()
