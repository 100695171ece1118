"""The published package's own test suite (agent-rerun-py, tests/ and examples/) runs
unchanged against our package, so code written for it keeps working with ours.

The suite is test data in ../shared/peer, never copied into the project: it is
copied into a temporary folder for the run, beside the published vectors as the
``vectors/`` folder it expects.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support import PUBLISHED_VECTORS, REPO, SHARED, require_path

PEER = SHARED / "peer" / "agent-rerun-py"


def _suite_copy(tmp_path: Path) -> Path:
    peer = require_path(PEER, "the published package's test suite (../shared/peer)")
    vectors = require_path(PUBLISHED_VECTORS, "published conformance vectors (../shared)")
    root = tmp_path / "agent-rerun-py"
    shutil.copytree(peer / "tests", root / "tests")
    shutil.copytree(peer / "examples", root / "examples")
    shutil.copytree(vectors, root / "vectors")
    return root


def _ours_is_imported(cwd: Path) -> None:
    code = "import agent_rerun; print(agent_rerun.__file__)"
    probe = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                           text=True, check=True, timeout=60)
    assert Path(probe.stdout.strip()).resolve().is_relative_to(REPO), probe.stdout


def test_published_test_suite_passes_against_ours(tmp_path: Path) -> None:
    root = _suite_copy(tmp_path)
    _ours_is_imported(root)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
         "-c", "/dev/null", "tests"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout, run.stdout[-2000:]


def test_published_quickstart_runs_against_ours(tmp_path: Path) -> None:
    root = _suite_copy(tmp_path)
    run = subprocess.run([sys.executable, "examples/quickstart.py"], cwd=root,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "original     : PASS" in run.stdout and "tampered     : FAIL" in run.stdout
