"""``rerun verify BUNDLE ACTUAL`` prints the same bytes with or without click.

The console script takes a click-free path for exactly that command line
(agent_rerun/cli/quick_verify.py). Every conformance vector and every error
case here runs through both that path (``agent_rerun.cli:main``) and the click
group (``agent_rerun.cli.app:main``); stdout, stderr and the exit code must be
identical, and the quick path must not have loaded click.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import OUR_VECTORS, PUBLISHED_VECTORS, REPO, vector_dirs

from agent_rerun.cli.quick_verify import quick_verify_paths
from agent_rerun.cli.streams import EXIT_BROKEN_PIPE

#: Runs ``main()`` with the arguments as given, then writes whether click was loaded
#: to the file named by RERUN_TEST_CLICK_MARK, so stdout and stderr stay untouched.
_PROGRAM = """
import os, sys
from {module} import main
try:
    main()
finally:
    with open(os.environ["RERUN_TEST_CLICK_MARK"], "w") as mark:
        mark.write(str("click" in sys.modules))
"""

KEY = (REPO / "vectors" / "test-key.json").read_text()
PUBLIC_KEY = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
OTHER_KEY = "A" * 43 + "="


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: bytes
    stderr: bytes
    click_loaded: bool


def _run(module: str, args: list[str | bytes], env: dict[str, str], tmp: Path,
         stdout: int | None = subprocess.PIPE) -> Run:
    mark = tmp / f"mark-{module}"
    done = subprocess.run([sys.executable, "-c", _PROGRAM.format(module=module), *args],
                          stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          env={**env, "RERUN_TEST_CLICK_MARK": str(mark)}, cwd=tmp, timeout=60,
                          check=False)
    return Run(done.returncode, done.stdout or b"", done.stderr, mark.read_text() == "True")


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _both(args: list[str | bytes], env: dict[str, str], tmp: Path, quick: bool = True) -> Run:
    fast = _run("agent_rerun.cli", args, env, tmp)
    slow = _run("agent_rerun.cli.app", args, env, tmp)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode, slow.stdout, slow.stderr)
    assert slow.click_loaded
    assert fast.click_loaded is not quick, "the quick path was (not) taken as expected"
    return fast


VECTORS = [pytest.param(folder, id=f"{kind}/{folder.name}")
           for kind, root in (("ours", OUR_VECTORS), ("published", PUBLISHED_VECTORS))
           for folder in vector_dirs(root)]


@pytest.mark.parametrize("folder", VECTORS)
def test_every_vector_prints_the_same(folder: Path, tmp_path: Path) -> None:
    _both(["verify", str(folder / "bundle.rr"), str(folder / "actual.json")], _env(), tmp_path)


def test_there_are_vectors() -> None:
    assert len(VECTORS) >= 30


def _pair(tmp: Path) -> tuple[Path, Path]:
    folder = OUR_VECTORS / "c1-byte-replay-passes"
    bundle, actual = tmp / "bundle.rr", tmp / "actual.json"
    bundle.write_bytes((folder / "bundle.rr").read_bytes())
    actual.write_bytes((folder / "actual.json").read_bytes())
    return bundle, actual


FILE_CASES = {
    "empty bundle": (b"", None),
    "bom": (b"\xef\xbb\xbf{}", None),
    "not utf-8": (b'{"a": "\xff"}', None),
    "not json": (b"{", None),
    "a list": (b"[]", None),
    "duplicate key in actual": (None, b'{"inputs": {}, "inputs": {}, "output": {}}'),
    "huge integer in actual": (None, b'{"inputs": {"n": 123456789012345678901234}}'),
    "nan in actual": (None, b'{"inputs": NaN}'),
    "deep actual": (None, b"[" * 100_000 + b"]" * 100_000),
    "lone surrogate": (None, b'{"inputs": {"system_prompt": "\\ud800", "messages": []}, '
                             b'"output": {"transcript": null}}'),
    "control characters": (None, b'{"inputs": {"\\u001b[31m\\n": 1}}'),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_files_print_the_same(case: str, tmp_path: Path) -> None:
    bundle, actual = _pair(tmp_path)
    bundle_bytes, actual_bytes = FILE_CASES[case]
    if bundle_bytes is not None:
        bundle.write_bytes(bundle_bytes)
    if actual_bytes is not None:
        actual.write_bytes(actual_bytes)
    _both(["verify", str(bundle), str(actual)], _env(), tmp_path)


@pytest.mark.parametrize("names", [
    ("missing.rr", "actual.json"), ("bundle.rr", "missing.json"), (".", "actual.json"),
    ("bundle.rr", "bundle.rr"), ("relative/../bundle.rr", "actual.json"),
    ("new\nline\x1b[31m.rr", "actual.json"), ("日本語 😀.rr", "actual.json"),
])
def test_odd_paths_print_the_same(names: tuple[str, str], tmp_path: Path) -> None:
    _pair(tmp_path)
    (tmp_path / "relative").mkdir()
    _both(["verify", *names], _env(), tmp_path)


def test_a_path_that_is_not_utf8_prints_the_same(tmp_path: Path) -> None:
    _pair(tmp_path)
    _both(["verify", os.fsencode("b\udcff.rr"), "actual.json"], _env(), tmp_path)


def _config(tmp: Path, text: str) -> dict[str, str]:
    path = tmp / "config.toml"
    path.write_text(text)
    return _env(RERUN_CONFIG=str(path))


CONFIGS = {
    "trusted": f'[verify]\ntrusted_keys = ["{PUBLIC_KEY}"]\n',
    "untrusted": f'[verify]\ntrusted_keys = ["{OTHER_KEY}"]\n',
    "nobody trusted": "[verify]\ntrusted_keys = []\n",
    "bad key": '[verify]\ntrusted_keys = ["nonsense"]\n',
    "revocation file missing": '[verify]\nrevoked_keys_file = "nowhere"\n',
    "revoked": '[verify]\nrevoked_keys_file = "revoked.txt"\n',
    "require signature": "[verify]\nrequire_signature = true\n",
    "not toml": "[verify\n",
    "unknown section": "[nosuch]\nx = 1\n",
    "unknown key": "[verify]\ntrusted = []\n",
    "trust file missing": '[verify]\ntrusted_keys_file = "nowhere"\n',
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_config_files_print_the_same(case: str, tmp_path: Path) -> None:
    bundle, actual = _pair(tmp_path)
    (tmp_path / "revoked.txt").write_text(PUBLIC_KEY + "\n")
    _both(["verify", str(bundle), str(actual)], _config(tmp_path, CONFIGS[case]), tmp_path)


def test_an_unsigned_bundle_with_require_signature_prints_the_same(tmp_path: Path) -> None:
    folder = OUR_VECTORS / "structural-unsupported"
    env = _config(tmp_path, "[verify]\nrequire_signature = true\n")
    _both(["verify", str(folder / "bundle.rr"), str(folder / "actual.json")], env, tmp_path)


@pytest.mark.parametrize("where", ["missing", "folder", "dangling link", "empty name"])
def test_unusable_config_locations_print_the_same(where: str, tmp_path: Path) -> None:
    bundle, actual = _pair(tmp_path)
    target = tmp_path / "cfg"
    if where == "folder":
        target.mkdir()
    elif where == "dangling link":
        target.symlink_to(tmp_path / "nowhere")
    env = _env(RERUN_CONFIG="" if where == "empty name" else str(target))
    _both(["verify", str(bundle), str(actual)], env, tmp_path)


@pytest.mark.parametrize("xdg", [None, "", "xdg", "xdg//", "/nonexistent/xdg/"])
@pytest.mark.parametrize("present", ["absent", "trusting", "broken", "folder"])
def test_the_default_config_location_prints_the_same(xdg: str | None, present: str,
                                                      tmp_path: Path) -> None:
    """No ``$RERUN_CONFIG``: the file under ``$XDG_CONFIG_HOME`` (or ``~/.config``)."""
    bundle, actual = _pair(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = _env(RERUN_CONFIG=None, HOME=str(home), XDG_CONFIG_HOME=xdg)
    base = Path(xdg) if xdg else home / ".config"
    folder = (tmp_path / base if not base.is_absolute() else base) / "agent-rerun"
    if present != "absent" and not str(folder).startswith("/nonexistent"):
        folder.mkdir(parents=True)
        config = folder / "config.toml"
        if present == "folder":
            config.mkdir()
        else:
            config.write_text(f'[verify]\ntrusted_keys = ["{OTHER_KEY}"]\n' if present == "trusting"
                              else "[verify\n")
    _both(["verify", str(bundle), str(actual)], env, tmp_path)


def test_a_closed_stdout_ends_the_same(tmp_path: Path) -> None:
    bundle, actual = _pair(tmp_path)
    runs = []
    for module in ("agent_rerun.cli", "agent_rerun.cli.app"):
        read, write = os.pipe()
        os.close(read)  # nobody will read: the first write fails with EPIPE
        try:
            runs.append(_run(module, ["verify", str(bundle), str(actual)], _env(), tmp_path,
                             stdout=write))
        finally:
            os.close(write)
    fast, slow = runs
    assert (fast.returncode, fast.stderr) == (slow.returncode, slow.stderr)
    assert fast.returncode == EXIT_BROKEN_PIPE and not fast.click_loaded


def test_streams_that_are_not_utf8_go_through_click(tmp_path: Path) -> None:
    bundle, actual = _pair(tmp_path)
    _both(["verify", str(bundle), str(actual)], _env(PYTHONIOENCODING="ascii"), tmp_path,
          quick=False)


@pytest.mark.parametrize("args", [
    ["verify"], ["verify", "a"], ["verify", "a", "b", "c"], ["verify", "-", "a"],
    ["verify", "a", "-"], ["verify", "--", "a", "b"], ["verify", "--help", "a"],
    ["capture", "a", "b"], ["verify", "", "a"], ["verify", "--require-signature", "a"],
])
def test_every_other_command_line_goes_through_click(args: list[str]) -> None:
    assert quick_verify_paths(args) is None


def test_shell_completion_goes_through_click(monkeypatch: pytest.MonkeyPatch) -> None:
    assert quick_verify_paths(["verify", "a", "b"]) == ("a", "b")
    monkeypatch.setenv("_RERUN_COMPLETE", "bash_complete")
    assert quick_verify_paths(["verify", "a", "b"]) is None
