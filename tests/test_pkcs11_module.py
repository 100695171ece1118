"""Finding the PKCS#11 module and the PIN: each source in its order, each failure one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pkcs11_fixtures import import_or_skip, require_softhsm, skip_or_fail

from agent_rerun.errors import SignerError

import_or_skip("agent_rerun_pkcs11")

from agent_rerun_pkcs11.errors import describe  # noqa: E402
from agent_rerun_pkcs11.module import (  # noqa: E402
    ENV_MODULE,
    ModuleChoice,
    find_module,
    load_library,
)
from agent_rerun_pkcs11.pin import ENV_PIN, PinUnavailable, read_pin_file, resolve_pin  # noqa: E402
from agent_rerun_pkcs11.uri import parse  # noqa: E402


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERUN_CONFIG", "")
    monkeypatch.delenv(ENV_MODULE, raising=False)
    monkeypatch.delenv(ENV_PIN, raising=False)


def test_uri_module_path_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MODULE, "/from/env.so")
    choice = find_module(parse("pkcs11:?module-path=/from/uri.so"))
    assert choice == ModuleChoice("/from/uri.so", "the URI's module-path")


def test_environment_then_config_then_p11kit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bare = parse("pkcs11:token=t")
    proxy = tmp_path / "p11-kit-proxy.so"
    proxy.write_bytes(b"")
    config = tmp_path / "config.toml"
    config.write_text('[pkcs11]\nmodule = "/from/config.so"\n')

    monkeypatch.setenv(ENV_MODULE, "/from/env.so")
    monkeypatch.setenv("RERUN_CONFIG", str(config))
    assert find_module(bare, proxy_candidates=[str(proxy)]).path == "/from/env.so"

    monkeypatch.delenv(ENV_MODULE)
    choice = find_module(bare, proxy_candidates=[str(proxy)])
    assert choice.path == "/from/config.so"
    assert "[pkcs11] module" in choice.source and str(config) in choice.source

    monkeypatch.setenv("RERUN_CONFIG", "")
    assert find_module(bare, proxy_candidates=[str(proxy)]) == ModuleChoice(
        str(proxy), "p11-kit's proxy module"
    )


def test_no_module_anywhere_says_how_to_name_one() -> None:
    with pytest.raises(SignerError) as caught:
        find_module(parse("pkcs11:token=t"), proxy_candidates=["/nonexistent/p11-kit-proxy.so"])
    message = str(caught.value)
    assert "module-path=" in message and ENV_MODULE in message and "[pkcs11] module" in message


def test_module_name_is_looked_up_in_p11kit_registrations_and_lib_dirs() -> None:
    require_softhsm()
    registered = Path("/usr/share/p11-kit/modules/softhsm2.module")
    if not registered.is_file():
        skip_or_fail("softhsm2 is not registered with p11-kit here")
    choice = find_module(parse("pkcs11:?module-name=softhsm2"))
    assert Path(choice.path).is_file()
    assert Path(choice.path).name == "libsofthsm2.so"
    with pytest.raises(SignerError, match="no module named 'no-such-module'"):
        find_module(parse("pkcs11:?module-name=no-such-module"))
    with pytest.raises(SignerError, match="must be a bare name"):
        find_module(parse("pkcs11:?module-name=/usr/lib/x.so"))


def test_missing_module_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.so"
    with pytest.raises(SignerError, match=r"absent\.so \(from RERUN_PKCS11_MODULE\) does not"):
        load_library(ModuleChoice(str(path), ENV_MODULE))


def test_a_file_that_is_not_a_pkcs11_library(tmp_path: Path) -> None:
    import_or_skip("pkcs11")
    fake = tmp_path / "fake.so"
    fake.write_text("not a shared library\n")
    with pytest.raises(SignerError) as caught:
        load_library(ModuleChoice(str(fake), "the URI's module-path"))
    assert "is not a usable PKCS#11 module" in str(caught.value)
    assert str(fake) in str(caught.value)


def test_a_real_library_that_is_not_pkcs11() -> None:
    import_or_skip("pkcs11")
    import ctypes.util

    libz = ctypes.util.find_library("z")
    candidates = [p for p in (f"/usr/lib/x86_64-linux-gnu/{libz}", f"/lib/{libz}") if libz]
    found = next((p for p in candidates if Path(p).is_file()), None)
    if found is None:
        skip_or_fail("no libz on this system to stand in for a foreign library")
    with pytest.raises(SignerError, match="C_GetFunctionList"):
        load_library(ModuleChoice(found, "the URI's module-path"))


# ---------------------------------------------------------------- PIN


def test_pin_source_file_path_and_file_uri(tmp_path: Path) -> None:
    pin_file = tmp_path / "my pin+file"
    pin_file.write_text("12+34 5\n")
    pin_file.chmod(0o600)
    assert read_pin_file(str(pin_file)) == "12+34 5"
    file_uri = "file://" + str(pin_file).replace(" ", "%20").replace("+", "%2B")
    assert resolve_pin(parse(f"pkcs11:?pin-source={file_uri}"), "t", prompt=None) == "12+34 5"
    literal_plus = "file://" + str(pin_file).replace(" ", "%20")
    assert read_pin_file(literal_plus) == "12+34 5"


def test_pin_source_problems_name_the_file_not_the_pin(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match=r"absent: cannot read pin-source file: No such file"):
        read_pin_file(str(tmp_path / "absent"))
    empty = tmp_path / "empty"
    empty.write_text("")
    empty.chmod(0o600)
    with pytest.raises(SignerError, match="is empty"):
        read_pin_file(str(empty))


def test_pin_order_uri_then_environment_then_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append(text)
        return "typed"

    assert resolve_pin(parse("pkcs11:?pin-value=inline"), "t", prompt=prompt) == "inline"
    monkeypatch.setenv(ENV_PIN, "from-env")
    assert resolve_pin(parse("pkcs11:"), "t", prompt=prompt) == "from-env"
    monkeypatch.delenv(ENV_PIN)
    assert resolve_pin(parse("pkcs11:"), "my token", prompt=prompt) == "typed"
    assert asked == ["PIN for PKCS#11 token 'my token'"]


def test_no_pin_and_nobody_to_ask() -> None:
    with pytest.raises(PinUnavailable) as caught:
        resolve_pin(parse("pkcs11:"), "tok", prompt=None)
    assert "token 'tok' needs a PIN" in str(caught.value)
    assert ENV_PIN in str(caught.value)


def test_locked_pin_message() -> None:
    """SoftHSM 2.6 never locks a user PIN, so the mapping is checked on the library's class."""
    pkcs11 = import_or_skip("pkcs11")
    error = describe(pkcs11.exceptions.PinLocked(), token="yk", action="signing")
    assert "the user PIN of token 'yk' is locked" in str(error)
    incorrect = describe(pkcs11.exceptions.PinIncorrect(), token="yk", action="signing")
    assert str(incorrect).startswith("wrong PIN for token 'yk'")
