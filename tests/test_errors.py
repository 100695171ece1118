"""agent_rerun.errors: the typed exceptions and the one-line message helper."""

from __future__ import annotations

import pytest

from agent_rerun.errors import one_line


@pytest.mark.parametrize(("text", "expected"), [
    ("a\n  b\tc", "a b c"), ("  ", ""), (ValueError("first\nsecond"), "first second"),
    (ValueError(), "ValueError"), (KeyError(), "KeyError"),
])
def test_one_line(text: str | BaseException, expected: str) -> None:
    assert one_line(text) == expected


def _public_exceptions() -> list[type[BaseException]]:
    import importlib
    import inspect
    import pkgutil

    import agent_rerun_keyring
    import agent_rerun_pkcs11

    import agent_rerun

    found = []
    for package in (agent_rerun, agent_rerun_keyring, agent_rerun_pkcs11):
        names = [package.__name__] + [info.name for info in pkgutil.walk_packages(
            package.__path__, package.__name__ + ".")]
        for name in names:
            module = importlib.import_module(name)
            for attr, value in vars(module).items():
                if (inspect.isclass(value) and issubclass(value, BaseException)
                        and not issubclass(value, Warning) and value.__module__ == name
                        and not attr.startswith("_")):
                    found.append(value)
    return found


def test_every_public_exception_is_a_rerun_error_with_an_exit_code() -> None:
    from agent_rerun.errors import RerunError

    found = _public_exceptions()
    names = {cls.__name__ for cls in found}
    assert {"Base64Error", "SignatureError", "EmbeddingError", "SignerError"} <= names
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in found
              if not issubclass(cls, RerunError)]
    assert strays == []
    assert all(isinstance(cls.exit_code, int) for cls in found)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("error", "code"), [
    ("agent_rerun.b64:Base64Error", 1), ("agent_rerun.errors:InputError", 1),
    ("agent_rerun.errors:SignerError", 3), ("agent_rerun.sshagent.protocol:AgentRefused", 3),
    ("agent_rerun_pkcs11.pin:PinUnavailable", 3),
])
def test_the_cli_exits_with_the_code_the_error_carries(error: str, code: int,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from agent_rerun.cli.common import reports_errors

    module, _, name = error.partition(":")
    cls = getattr(importlib.import_module(module), name)

    @reports_errors
    def command() -> None:
        raise cls("what went wrong\nsecond line")

    with pytest.raises(SystemExit) as exit_info:
        command()
    assert exit_info.value.code == code == cls.exit_code
    assert capsys.readouterr().err == "rerun: error: what went wrong\\nsecond line\n"
