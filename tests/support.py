"""Shared test helpers: where the shared data lives, skipping honestly, running the CLI.

Imported as a sibling module (``from support import run_cli``), like ``samples``;
``conftest.py`` holds only fixtures. Shared data (published vectors, JCS and
Wycheproof suites, the seed page) lives beside the repository in ``../shared``
and is never copied in. A test that needs it skips with the reason when it is
absent on a developer machine, but fails when ``CI=true``: a CI run that
silently skipped the conformance suite would report green for nothing.
"""


from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PUBLISHED_VECTORS = SHARED / "conformance" / "agent-rerun-v0.1"
JCS_TESTDATA = SHARED / "testdata" / "jcs"
WYCHEPROOF_ED25519 = SHARED / "testdata" / "wycheproof" / "ed25519_test.json"
SEED_PAGE = SHARED / "seed" / "agent-rerun-pypi-page.txt"
OUR_VECTORS = REPO / "vectors"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition`` holds; under ``CI=true`` fail instead."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(reason)


def require_path(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip (or fail in CI) naming what is missing."""
    require(path.exists(), f"{what} not found at {path}")
    return path


def vector_dirs(root: Path) -> list[Path]:
    """The vector folders under ``root`` (those holding an expected.json), sorted."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "expected.json").is_file())


def vector_matches(expected: Mapping[str, Any], result: Mapping[str, Any]) -> list[str]:
    """Why a result ({verified, errors, warnings}) misses ``expected``; [] when it matches."""
    problems = []
    if result["verified"] is not expected["verified"]:
        problems.append(f"verified is {result['verified']}, expected {expected['verified']}")
    for needle in expected.get("errorContains", []):
        if not any(needle in error for error in result["errors"]):
            problems.append(f"no error contains {needle!r}")
    for needle in expected.get("warningContains", []):
        if not any(needle in warning for warning in result["warnings"]):
            problems.append(f"no warning contains {needle!r}")
    return problems


@dataclass(frozen=True)
class CliResult:
    """A finished ``python -m agent_rerun`` run; stdout/stderr decoded, raw bytes kept."""

    returncode: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.stdout_bytes)


def run_cli(
    *args: str | os.PathLike[str],
    input: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run the CLI in a real subprocess (``python -m agent_rerun ARGS``).

    ``env`` is laid over the current environment (which already points
    RERUN_CONFIG away from the user's file); a ``None`` value removes a variable.
    """
    full_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    data = input.encode("utf-8") if isinstance(input, str) else input
    completed = subprocess.run(
        [sys.executable, "-m", "agent_rerun", *map(os.fspath, args)],
        input=data if data is not None else b"",
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def as_doubles(value: Any) -> Any:
    """Integers rfc8785 refuses but the JCS domain admits (the canonical digits of
    a double, beyond 2**53) given to rfc8785 as the double they spell."""
    from agent_rerun.jsonvalue import MAX_SAFE_INTEGER, integer_in_domain

    if isinstance(value, dict):
        return {key: as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_doubles(item) for item in value]
    if type(value) is int and abs(value) > MAX_SAFE_INTEGER and integer_in_domain(value):
        return float(value)
    return value


def invoke_cli(*args: str, input: str | None = None,
               env: dict[str, str] | None = None) -> Any:
    """The CLI in this process through click's CliRunner (a ``click.testing.Result``);
    for tests that patch the process, where :func:`run_cli` would not see it."""
    from click.testing import CliRunner

    from agent_rerun.cli import cli

    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def output_fields(output: str) -> dict[str, str]:
    """``name: value`` lines of a command's text output (keygen, pubkey, inspect) as a dict."""
    pairs = (line.split(":", 1) for line in output.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in pairs}
