"""The helper process that checks a large batch's signatures (agent_rerun.sigcheck).

It stands between a signing service's answers and their use, so it must name
the first bad signature of each batch, fail closed on anything else, and never
outlive the process that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_rerun.sigcheck import BatchChecker, CheckerGone, first_failure
from agent_rerun.signer import InMemorySigner

KEY = InMemorySigner(bytes(range(32)))


def signed(count: int) -> tuple[list[bytes], list[bytes]]:
    payloads = [b"payload %d" % i for i in range(count)]
    return payloads, [KEY.sign(p) for p in payloads]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_each_batch_is_answered_with_its_first_bad_signature() -> None:
    payloads, signatures = signed(50)
    bad = list(signatures)
    bad[17] = bytes(64)
    bad[30] = bytes(64)
    short = list(signatures)
    short[3] = signatures[3][:63]
    checker = BatchChecker(KEY.public_key)
    try:
        checker.submit(payloads, signatures)
        checker.submit(payloads, bad)
        checker.submit(payloads, short)
        checker.submit([], [])
        assert checker.failures() == [-1, 17, 3, -1]
        assert checker.failures() == []
        assert first_failure(KEY.public_key, payloads, bad) == 17
    finally:
        checker.close()
    assert checker._process.returncode is not None  # closed means gone


def test_a_helper_that_dies_is_reported_never_taken_for_a_pass() -> None:
    payloads, signatures = signed(10)
    checker = BatchChecker(KEY.public_key)
    try:
        checker._process.kill()  # a helper killed from outside: nothing else can make it die
        checker._process.wait(10)
        with pytest.raises(CheckerGone):
            checker.submit(payloads, signatures)
            checker.failures()
    finally:
        checker.close()


def test_the_helper_leaves_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process holding a checker: the helper sees its input end and exits."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from agent_rerun.sigcheck import BatchChecker; "
         "c = BatchChecker(bytes(32)); print(c._process.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helper = int(parent.stdout.readline())
        assert alive(helper)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(helper) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(helper)
    finally:
        parent.kill()
        parent.wait(10)


def test_a_module_planted_in_the_working_folder_is_never_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -c`` would put the current folder first on the helper's path: a
    ``cryptography`` planted there could pass every forged signature."""
    planted = tmp_path / "cryptography"
    planted.mkdir()
    marker = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    payloads, signatures = signed(3)
    forged = [signatures[0], bytes(64), signatures[2]]
    checker = BatchChecker(KEY.public_key)
    try:
        checker.submit(payloads, forged)
        assert checker.failures() == [1]
    finally:
        checker.close()
    assert not marker.exists()


def test_more_batches_than_the_answer_pipe_holds_are_all_answered() -> None:
    """Answers are read as batches go out: 20,000 one-signature batches, none read
    by the caller until the end, would otherwise fill the helper's output pipe
    (16,384 answers) and leave both processes waiting on each other."""
    import threading

    payloads, signatures = signed(1)
    bad_at = {7, 19_999}
    checker = BatchChecker(KEY.public_key)
    answers: list[int] = []

    def run() -> None:
        for index in range(20_000):
            checker.submit(payloads, [bytes(64)] if index in bad_at else signatures)
        answers.extend(checker.failures())

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    stuck = worker.is_alive()
    if stuck:  # the helper's death frees the worker's blocked write
        checker._process.kill()
        worker.join(timeout=10)
    checker.close()
    assert not stuck, "submit and the helper waited on each other"
    assert answers == [0 if index in bad_at else -1 for index in range(20_000)]
