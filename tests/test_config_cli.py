"""Issue 9 item 4 through the CLI: a config file that exists but cannot be used is an error.

A dangling link, a folder or an unreadable file, at the default location or
named by ``$RERUN_CONFIG``: one line naming it and the reason, exit 1 for
verify and exit 3 where a key is being loaded (``capture`` taking ``[sign]
key``), never "no config". Before the fix a dangling link at the default
location silently dropped the trust policy and verify exited 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import require, run_cli

EXIT_FAILED = 1
EXIT_KEY = 3
#: Root without the capabilities that let it read any file: mode 0000 then means
#: "Permission denied" for real, from the kernel (tests run as root in CI).
DROP_FILE_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder others can enter (so a process without root can run there), with inputs.

    Not under pytest's tmp_path: that tree is private to the user running pytest.
    """
    with tempfile.TemporaryDirectory(prefix="rerun-config-cli-") as name:
        base = Path(name)
        base.chmod(0o755)
        yield from _filled(base)


def _filled(base: Path) -> Iterator[Path]:
    (base / "step.json").write_text(json.dumps(SAMPLE_STEP))
    (base / "actual.json").write_text(json.dumps(SAMPLE_ACTUAL))
    done = run_cli("capture", base / "step.json", "-o", base / "step.rr", "--unsigned",
                   env={"RERUN_CONFIG": ""})
    assert done.returncode == 0, done.stderr
    for name in ("step.json", "actual.json", "step.rr"):
        (base / name).chmod(0o644)
    (base / "out").mkdir(mode=0o777)
    (base / "out").chmod(0o777)
    yield base


def _break(config: Path, how: str) -> str:
    """Make ``config`` unusable in way ``how``; returns the reason the message must give."""
    config.parent.mkdir(parents=True, exist_ok=True)
    config.parent.chmod(0o755)
    if how == "dangling link":
        config.symlink_to(config.parent / "unmounted" / "config.toml")
        return "dangling symbolic link"
    if how == "folder":
        config.mkdir()
        return "it is a folder"
    config.write_text('[verify]\ntrusted_keys = []\n')
    config.chmod(0o000)
    return "Permission denied"


def _run(world: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``rerun ARGS``; as a user that is not root when the test runs as root.

    Root reads a mode-0000 file anyway, so for that case the process drops to
    ``nobody`` first: the permission check is then the kernel's, for real.
    """
    drop = os.geteuid() == 0 and env.pop("_DROP", "") == "1"
    full = {k: v for k, v in os.environ.items() if not k.startswith("RERUN_")}
    full.update(env, HOME=str(world))
    command = [sys.executable, "-m", "agent_rerun", *args]
    if drop:
        require(shutil.which("setpriv") is not None,
                "setpriv (util-linux) is needed to test an unreadable file as root")
        command = [*DROP_FILE_OVERRIDE, *command]
    return subprocess.run(command, capture_output=True, text=True, env=full, cwd=world,
                          timeout=60, stdin=subprocess.DEVNULL)


def _where(world: Path, location: str, how: str) -> tuple[Path, dict[str, str]]:
    if location == "default":
        config = world / "xdg" / "agent-rerun" / "config.toml"
        env = {"XDG_CONFIG_HOME": str(world / "xdg")}
    else:
        config = world / "named" / "config.toml"
        env = {"RERUN_CONFIG": str(config)}
    if how == "unreadable":
        env["_DROP"] = "1"
    return config, env


def _one_line(done: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    """Exit ``code``, one ``rerun:`` line on stderr saying ``says``, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rerun: "), done.stderr
    for text in says:
        assert text in lines[0], lines[0]


LOCATIONS = ["default", "RERUN_CONFIG"]
WAYS = ["dangling link", "folder", "unreadable"]


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("how", WAYS)
def test_verify_refuses_an_unusable_config(world: Path, location: str, how: str) -> None:
    config, env = _where(world, location, how)
    reason = _break(config, how)
    done = _run(world, env, "verify", "step.rr", "actual.json")
    _one_line(done, EXIT_FAILED, str(config), "cannot read config file", reason)
    assert json.loads(done.stdout)["verified"] is False


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("how", WAYS)
def test_capture_loading_the_config_key_exits_3(world: Path, location: str, how: str) -> None:
    config, env = _where(world, location, how)
    reason = _break(config, how)
    out = world / "out" / "never.rr"
    done = _run(world, env, "capture", "step.json", "-o", str(out))
    _one_line(done, EXIT_KEY, str(config), "cannot read config file", reason)
    assert done.stderr.startswith("rerun: error: ") and done.stdout == ""
    assert not out.exists()


def test_a_usable_config_at_the_default_location_still_applies(world: Path) -> None:
    """The control: the same runs with a readable config behave as the config says."""
    config, env = _where(world, "default", "ok")
    config.parent.mkdir(parents=True)
    config.write_text("[verify]\nrequire_signature = true\n")
    done = _run(world, env, "verify", "step.rr", "actual.json")
    assert done.returncode == EXIT_FAILED, done.stderr
    assert json.loads(done.stdout)["verified"] is False
    config.unlink()
    done = _run(world, env, "verify", "step.rr", "actual.json")
    assert done.returncode == 0, done.stderr
