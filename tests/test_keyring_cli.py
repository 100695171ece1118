"""``rerun`` with keyring: keys, end to end in subprocesses, against a real Secret Service.

keygen puts the key into the session's Secret Service, capture signs with it,
and verify runs in a process where keyring, SecretStorage, D-Bus bindings and
every signer backend are blocked from importing. Without a Secret Service
these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import in_ci, require

try:
    from keyring.backend import KeyringBackend
except ImportError as exc:  # pragma: no cover - depends on the installation
    if in_ci():
        raise
    pytest.skip(f"keyring is not installed ({exc})", allow_module_level=True)

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from keyring_support import fresh_entry_fixture, secret_service_fixture
from samples import SAMPLE_ACTUAL, SAMPLE_STEP

from agent_rerun.pubkey import fingerprint

SERVICE = "agent-rerun-cli-tests"
_SCRIPT = Path(sys.executable).with_name("rerun")
#: The installed console script, as a user would run it (or the same entry point).
RERUN = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from agent_rerun.cli import main; main()"]
)

#: Installed before the CLI runs: any import of these fails, and the attempt is reported.
BLOCK_KEY_STORES = """
import importlib.abc, sys
BLOCKED = {"keyring", "secretstorage", "jeepney", "dbus", "agent_rerun_keyring",
           "pkcs11", "agent_rerun_pkcs11"}
class BlockKeyStores(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            sys.stderr.write(f"blocked-import: {name}\\n")
            raise ImportError(f"{name} is blocked in this process", name=name)
        return None
sys.meta_path.insert(0, BlockKeyStores())
for loaded in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
    del sys.modules[loaded]
"""


def rerun(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RERUN, *args], capture_output=True, text=True, env=env, cwd=cwd)


def rerun_without_key_stores(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    code = BLOCK_KEY_STORES + "from agent_rerun.cli import main\nsys.argv[0] = 'rerun'\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rerun: error: "), done.stderr
    assert says in lines[0], lines[0]


def public_key_in_entry(entry: str) -> bytes:
    """The entry encoding of docs/keyring.md, decoded without the package."""
    prefix, private_b64, public_b64 = entry.split(":")
    assert prefix == "agent-rerun-ed25519-v1"
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_b64, validate=True))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert base64.b64decode(public_b64, validate=True) == public
    return public


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "step.json").write_text(json.dumps(SAMPLE_STEP), encoding="utf-8")
    (tmp_path / "actual.json").write_text(json.dumps(SAMPLE_ACTUAL), encoding="utf-8")
    return tmp_path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The session's environment (D-Bus address included) without any user config."""
    config = tmp_path / "empty-config.toml"
    config.write_text("", encoding="utf-8")
    isolated = {**os.environ, "RERUN_CONFIG": str(config)}
    for name in ("PYTHON_KEYRING_BACKEND", "RERUN_KEYRING_ALLOW_INSECURE", "RERUN_KEY_PASSPHRASE"):
        isolated.pop(name, None)
    isolated["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")  # no keyringrc.cfg
    return isolated


secret_service = secret_service_fixture(SERVICE)
entry = fresh_entry_fixture(SERVICE, "cli")


# ------------------------------------------------------------------ the import block is real


def test_the_verify_process_really_cannot_import_a_key_store(workdir: Path) -> None:
    for module in ("keyring", "secretstorage", "agent_rerun_keyring"):
        done = subprocess.run(
            [sys.executable, "-c", BLOCK_KEY_STORES + f"import {module}\n"],
            capture_output=True,
            text=True,
            cwd=workdir,
        )
        assert done.returncode != 0
        assert f"blocked-import: {module}" in done.stderr
        assert f"ImportError: {module} is blocked" in done.stderr


# ------------------------------------------------------------------ end to end, real Secret Service


@pytest.mark.keyring
def test_keygen_capture_then_verify_without_keyring(
    secret_service: KeyringBackend, entry: str, workdir: Path, env: dict[str, str]
) -> None:
    uri = f"keyring:{entry}?service={SERVICE}"
    made = rerun("keygen", uri, env=env, cwd=workdir)
    assert made.returncode == 0, made.stderr
    stored = secret_service.get_password(SERVICE, entry)
    assert stored is not None
    public = public_key_in_entry(stored)
    public_b64 = base64.b64encode(public).decode()
    assert public_b64 in made.stdout and fingerprint(public) in made.stdout
    assert stored.split(":")[1] not in made.stdout + made.stderr  # the private key

    shown = rerun("pubkey", uri, env=env, cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert public_b64 in shown.stdout and fingerprint(public) in shown.stdout

    captured = rerun("capture", "step.json", "-o", "b.rr", "--key", uri, env=env, cwd=workdir)
    assert captured.returncode == 0, captured.stderr
    bundle = json.loads((workdir / "b.rr").read_bytes())
    assert bundle["signature"]["pubkey"] == public_b64

    verified = rerun_without_key_stores(
        "verify", "b.rr", "actual.json", "--trusted-key", public_b64, env=env, cwd=workdir
    )
    assert "blocked-import" not in verified.stderr, verified.stderr
    assert verified.returncode == 0, (verified.stdout, verified.stderr)
    assert json.loads(verified.stdout)["verified"] is True

    stranger = base64.b64encode(bytes(range(1, 33))).decode()
    untrusted = rerun_without_key_stores(
        "verify", "b.rr", "actual.json", "--trusted-key", stranger, env=env, cwd=workdir
    )
    assert untrusted.returncode == 1
    assert any("UntrustedSigner" in e for e in json.loads(untrusted.stdout)["errors"])


@pytest.mark.keyring
def test_keygen_refuses_to_overwrite_unless_forced(
    secret_service: KeyringBackend, entry: str, workdir: Path, env: dict[str, str]
) -> None:
    uri = f"keyring:{entry}?service={SERVICE}"
    assert rerun("keygen", uri, env=env, cwd=workdir).returncode == 0
    before = secret_service.get_password(SERVICE, entry)
    again = rerun("keygen", uri, env=env, cwd=workdir)
    assert_one_line_error(again, 3, "already exists")
    assert secret_service.get_password(SERVICE, entry) == before
    forced = rerun("keygen", "--force", uri, env=env, cwd=workdir)
    assert forced.returncode == 0, forced.stderr
    after = secret_service.get_password(SERVICE, entry)
    assert after is not None and after != before
    assert base64.b64encode(public_key_in_entry(after)).decode() in forced.stdout


@pytest.mark.keyring
def test_capture_refuses_a_foreign_or_missing_entry_and_writes_nothing(
    secret_service: KeyringBackend, entry: str, workdir: Path, env: dict[str, str]
) -> None:
    uri = f"keyring:{entry}?service={SERVICE}"
    missing = rerun("capture", "step.json", "-o", "b.rr", "--key", uri, env=env, cwd=workdir)
    assert_one_line_error(missing, 3, f"rerun keygen {uri}")
    secret_service.set_password(SERVICE, entry, "my mail password")
    foreign = rerun("capture", "step.json", "-o", "b.rr", "--key", uri, env=env, cwd=workdir)
    assert_one_line_error(foreign, 3, "not an agent-rerun key")
    assert "mail password" not in foreign.stderr
    assert not (workdir / "b.rr").exists()
    assert secret_service.get_password(SERVICE, entry) == "my mail password"


@pytest.mark.keyring
def test_keys_list_shows_the_services_keys(
    secret_service: KeyringBackend, entry: str, workdir: Path, env: dict[str, str]
) -> None:
    uri = f"keyring:{entry}?service={SERVICE}"
    assert rerun("keygen", uri, env=env, cwd=workdir).returncode == 0
    public = public_key_in_entry(secret_service.get_password(SERVICE, entry) or "")
    listed = rerun("keys", "list", f"keyring:?service={SERVICE}", env=env, cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    assert uri in listed.stdout and base64.b64encode(public).decode() in listed.stdout


LOCK_DEFAULT_COLLECTION = """
from contextlib import closing
import secretstorage
with closing(secretstorage.dbus_init()) as bus:
    collection = secretstorage.get_default_collection(bus)
    collection.lock()
    assert collection.is_locked()
"""


def _private_session_env(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` without a display or session bus, with its own HOME, runtime and data
    folders: a ``dbus-run-session`` started with it gets a fresh gnome-keyring that
    can show no prompt and touches no one's real keyring."""
    missing = [t for t in ("dbus-run-session", "gnome-keyring-daemon") if not shutil.which(t)]
    require(not missing, f"needs {', '.join(missing)} (apt-get install dbus gnome-keyring)")
    private = {k: v for k, v in env.items()
               if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    for var, sub in (("HOME", "home"), ("XDG_RUNTIME_DIR", "run"), ("XDG_DATA_HOME", "data")):
        (tmp_path / sub).mkdir(mode=0o700)
        private[var] = str(tmp_path / sub)
    return private


def test_a_locked_keyring_is_refused_in_one_line(
    tmp_path: Path, workdir: Path, env: dict[str, str]
) -> None:
    """A private D-Bus session and gnome-keyring whose collection gets locked.

    With no display, gnome-keyring's unlock prompt cannot be shown, exactly as
    when a user dismisses it; HOME and XDG_RUNTIME_DIR are private, so neither
    the session's daemon nor a developer's login keyring is touched.
    """
    private = _private_session_env(tmp_path, env)
    rerun_cmd = shlex.join(RERUN)
    script = (
        "printf %s throwaway | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
        f" && {rerun_cmd} keygen keyring:locked >/dev/null"
        f' && {shlex.quote(sys.executable)} -c "$LOCK"'
        f" && {rerun_cmd} capture step.json -o b.rr --key keyring:locked"
    )
    done = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**private, "LOCK": LOCK_DEFAULT_COLLECTION},
        cwd=workdir,
        timeout=60,
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("rerun:")]
    assert len(ours) == 1 and ours[0].startswith("rerun: error: "), done.stderr
    assert "locked" in ours[0] and "unlock" in ours[0]
    assert not (workdir / "b.rr").exists()


def test_a_dismissed_create_prompt_gets_a_hint(
    tmp_path: Path, workdir: Path, env: dict[str, str]
) -> None:
    """gnome-keyring started with an empty password has no default collection.

    SecretStorage then asks the daemon to create one, whose prompt cannot be shown
    without a display ("Prompt dismissed"), exactly what a pasted recipe with an
    unset password variable met. The one line must say how to get a keyring.
    """
    private = _private_session_env(tmp_path, env)
    script = (
        "printf %s '' | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
        f" && {shlex.join(RERUN)} keygen keyring:nocollection"
    )
    done = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=private,
        cwd=workdir,
        timeout=60,
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("rerun:")]
    assert len(ours) == 1 and ours[0].startswith("rerun: error: "), done.stderr
    assert "no default keyring" in ours[0]
    assert "gnome-keyring-daemon --unlock" in ours[0]


# ------------------------------------------------------------------ no keyring, insecure keyring


def test_a_headless_box_without_dbus_gets_one_line(workdir: Path, env: dict[str, str]) -> None:
    headless = {k: v for k, v in env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    done = rerun("keygen", "keyring:nowhere", env=headless, cwd=workdir)
    assert_one_line_error(done, 3, "no usable OS keyring")
    for hint in ("DBUS_SESSION_BUS_ADDRESS", "gnome-keyring-daemon", "PYTHON_KEYRING_BACKEND"):
        assert hint in done.stderr


@pytest.mark.parametrize(
    "chosen", ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"]
)
def test_keyring_backends_that_store_nothing_are_refused(
    chosen: str, workdir: Path, env: dict[str, str]
) -> None:
    done = rerun(
        "keygen", "keyring:nothing", env={**env, "PYTHON_KEYRING_BACKEND": chosen}, cwd=workdir
    )
    assert_one_line_error(done, 3, "no usable OS keyring")
    assert "file key" in done.stderr


PLAINTEXT_BACKEND = '''
import json, pathlib
from keyring.backend import KeyringBackend
from keyring.compat import properties

STORE = pathlib.Path(__file__).with_name("plaintext.json")

class Keyring(KeyringBackend):
    """Keeps secrets in a plain JSON file, like keyrings.alt's PlaintextKeyring."""

    @properties.classproperty
    def priority(cls):
        return 0.5

    def _load(self):
        return json.loads(STORE.read_text()) if STORE.exists() else {}

    def get_password(self, service, username):
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        data = self._load()
        data[f"{service}/{username}"] = password
        STORE.write_text(json.dumps(data))
'''


def test_a_plaintext_backend_needs_explicit_consent(
    tmp_path: Path, workdir: Path, env: dict[str, str]
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "plainkr.py").write_text(PLAINTEXT_BACKEND, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(plugins), env.get("PYTHONPATH")) if p)
    plain = {**env, "PYTHONPATH": path, "PYTHON_KEYRING_BACKEND": "plainkr.Keyring"}
    refused = rerun("keygen", "keyring:plain", env=plain, cwd=workdir)
    assert_one_line_error(refused, 3, "refusing the keyring backend plainkr.Keyring")
    assert "RERUN_KEYRING_ALLOW_INSECURE=1" in refused.stderr
    assert not (plugins / "plaintext.json").exists()

    allowed = {**plain, "RERUN_KEYRING_ALLOW_INSECURE": "1"}
    made = rerun("keygen", "keyring:plain", env=allowed, cwd=workdir)
    assert made.returncode == 0, made.stderr
    stored = json.loads((plugins / "plaintext.json").read_text())["agent-rerun/plain"]
    assert base64.b64encode(public_key_in_entry(stored)).decode() in made.stdout
