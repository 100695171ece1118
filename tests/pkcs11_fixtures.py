"""A real SoftHSM2 for the PKCS#11 tests: a temporary token folder, two tokens, a PIN file.

Imported by the ``test_pkcs11_*`` modules (not a conftest: the lead owns
that). SoftHSM reads ``SOFTHSM2_CONF`` once, when the module is first loaded
into a process, and python-pkcs11 keeps it loaded, so one token folder serves
the whole test session and every token is initialised before any load.
Without SoftHSM the tests skip with the reason, except when ``CI=true``:
then they fail, because CI must exercise them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF_TEMPLATE = ROOT / "conf" / "softhsm2.conf"
MODULE = os.environ.get("RERUN_TEST_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
RERUN = Path(sys.executable).with_name("rerun")

MAIN_TOKEN = "rerun-main"
OTHER_TOKEN = "rerun-other"
USER_PIN = "4711+0 pin"  # a '+' and a space: both must survive URI decoding untouched
SO_PIN = "so-secret-1234"


@dataclass(frozen=True)
class SoftHsm:
    """Where the session's SoftHSM lives and how to name its tokens."""

    conf: Path
    module: str
    pin_file: Path

    def uri(self, path: str = "", *, pin: bool = True) -> str:
        """``pkcs11:<path>?module-path=...[&pin-source=...]``."""
        query = f"module-path={self.module}"
        if pin:
            query += f"&pin-source={self.pin_file}"
        return f"pkcs11:{path}?{query}"

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment for ``rerun`` subprocesses: this SoftHSM, no user config."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RERUN_", "SOFTHSM2_")) and k != "PYTHONPATH"
        }
        env.update({"SOFTHSM2_CONF": str(self.conf), "RERUN_CONFIG": ""})
        env.update(extra)
        return env


def import_or_skip(name: str) -> Any:
    """``pytest.importorskip`` that fails instead of skipping when ``CI=true``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {name} cannot be imported: {exc}", pytrace=False)
        pytest.skip(f"{name} is not installed ({exc})", allow_module_level=True)


def _missing() -> str | None:
    try:
        import pkcs11  # noqa: F401
    except ImportError as exc:
        return f"python-pkcs11 is not installed ({exc})"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not found (apt-get install softhsm2)"
    if not Path(MODULE).is_file():
        return f"SoftHSM module {MODULE} not found (apt-get install softhsm2)"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail under CI=true, where nothing may be skipped."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_softhsm() -> None:
    """Skip (or, under CI=true, fail) when SoftHSM2 cannot be used here."""
    problem = _missing()
    if problem is not None:
        skip_or_fail(problem)


def init_token(conf: Path, label: str) -> None:
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label,
         "--so-pin", SO_PIN, "--pin", USER_PIN],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """Two initialised tokens in a fresh folder; SOFTHSM2_CONF set for this process."""
    require_softhsm()
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(CONF_TEMPLATE.read_text().replace("@TOKENDIR@", str(tokens)))
    for label in (MAIN_TOKEN, OTHER_TOKEN):
        init_token(conf, label)
    pin_file = base / "user.pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield SoftHsm(conf=conf, module=MODULE, pin_file=pin_file)
    finally:
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture(name="session")
def token_session(softhsm: SoftHsm) -> Iterator[Any]:
    """A logged-in raw python-pkcs11 session on the main token, to set up and inspect objects."""
    import pkcs11

    token = pkcs11.lib(softhsm.module).get_token(token_label=MAIN_TOKEN)
    try:
        opened = token.open(rw=True, user_pin=USER_PIN)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        opened = token.open(rw=True)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(name="workdir")
def sample_workdir(tmp_path: Path) -> Path:
    """A folder holding the sample ``step.json`` and its ``actual.json``."""
    import json

    from samples import SAMPLE_ACTUAL, SAMPLE_STEP

    (tmp_path / "step.json").write_text(json.dumps(SAMPLE_STEP))
    (tmp_path / "actual.json").write_text(json.dumps(SAMPLE_ACTUAL))
    return tmp_path


def key_field(stdout: str, name: str) -> str:
    """The value of ``name:`` in the CLI's key printout (``key:``, ``public key:``, ...)."""
    for line in stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"no {name!r} in {stdout!r}")


def rerun(
    *args: str, env: dict[str, str], cwd: Path, preamble: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the ``rerun`` CLI in a fresh interpreter, optionally after ``preamble`` code."""
    code = f"{preamble}\nimport sys\nfrom agent_rerun.cli import main\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
    )


#: Makes python-pkcs11 and this backend unimportable, for real, and reports any attempt.
BLOCK_PKCS11 = """
import importlib.abc, sys
class _BlockPkcs11(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"pkcs11", "agent_rerun_pkcs11"}:
            sys.stderr.write(f"blocked-import: {name}\\n")
            raise ImportError(f"{name} is blocked in this process", name=name)
        return None
sys.meta_path.insert(0, _BlockPkcs11())
"""


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, says: str) -> str:
    """Exit ``code``, exactly one ``rerun: error:`` line containing ``says``, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rerun: error: "), done.stderr
    assert says in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]
