"""Stopping ``rerun verify --batch --jobs N`` stops its workers too (issue 9, item 15).

A real run on a real process tree: the batch runs in its own session, is sent
SIGTERM (as ``kill`` does) or SIGINT to its whole process group (as Ctrl-C at
a terminal does), and afterwards no process of that group may still be alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from samples import sample_actual, sample_step

from agent_rerun import capture, jcs_bytes
from agent_rerun.capture import CaptureOptions

PAIRS = 2000  # far more than can be checked before the signal arrives


@pytest.fixture(scope="module")
def slow_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pair with a 2 MB actual record listed PAIRS times: tens of ms per check."""
    folder = tmp_path_factory.mktemp("batch")
    step = sample_step(inputs={"system_prompt": "s",
                               "messages": [{"role": "user", "content": "x" * 2_000_000}]})
    (folder / "b.rr").write_bytes(jcs_bytes(capture(step, CaptureOptions())))
    (folder / "a.json").write_text(json.dumps(sample_actual(step)))
    manifest = folder / "pairs.txt"
    manifest.write_text("b.rr a.json\n" * PAIRS)
    return manifest


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def batch_run(slow_manifest: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    # stderr goes to a file: a pipe would block the test for as long as a
    # stray worker holds it open, and stray workers are what is tested.
    with open(tmp_path / "stderr", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_rerun", "verify", "--batch", str(slow_manifest),
             "--jobs", "2"],
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        yield process
    finally:  # whatever happened, leave no process behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


@pytest.mark.parametrize("signum, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["kill-TERM-parent", "ctrl-c-group"])
def test_signal_stops_the_workers_and_says_so(batch_run: subprocess.Popen[bytes],
                                              tmp_path: Path, signum: int,
                                              to_group: bool) -> None:
    pgid = batch_run.pid
    assert wait_for(lambda: len(group_members(pgid)) >= 3, 60), "workers never started"
    workers = [pid for pid in group_members(pgid) if pid != pgid]
    if to_group:
        os.killpg(pgid, signum)
    else:
        os.kill(pgid, signum)
    assert batch_run.wait(60) == 128 + signum
    stderr = (tmp_path / "stderr").read_text()
    name = signal.Signals(signum).name
    assert f"rerun: interrupted by {name} after " in stderr, stderr
    assert "not checked" in stderr and "Traceback" not in stderr, stderr
    assert wait_for(lambda: not group_members(pgid), 10), \
        f"still running after the batch ended: {group_members(pgid)} (workers were {workers})"
