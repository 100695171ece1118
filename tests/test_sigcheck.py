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
    assert all(p.returncode is not None for p in checker.processes)  # closed means gone


@pytest.mark.parametrize("killed", [0, 1])
def test_a_helper_that_dies_is_reported_never_taken_for_a_pass(killed: int) -> None:
    payloads, signatures = signed(10)
    checker = BatchChecker(KEY.public_key, helpers=2)
    try:
        checker.processes[killed].kill()  # killed from outside: nothing else can make it die
        checker.processes[killed].wait(10)
        with pytest.raises(CheckerGone):
            checker.submit(payloads, signatures)
            checker.failures()
    finally:
        checker.close()


@pytest.mark.parametrize("helpers", [1, 2, 3])
def test_a_batch_split_between_helpers_names_its_first_bad_signature(helpers: int) -> None:
    """Each batch is cut into one part per helper; the answer is the first failure of
    the whole batch, wherever the parts fall, for every size from empty up."""
    payloads, signatures = signed(9)
    cases = [(size, bad) for size in range(10) for bad in [(), *((i,) for i in range(size)),
                                                              (0, size - 1), (size // 2, size - 1)]
             if all(0 <= i < size for i in bad)]
    checker = BatchChecker(KEY.public_key, helpers=helpers)
    try:
        assert len(checker.processes) == helpers
        for size, bad in cases:
            forged = [bytes(64) if i in bad else signature
                      for i, signature in enumerate(signatures[:size])]
            checker.submit(payloads[:size], forged)
        assert checker.failures() == [min(bad, default=-1) for _, bad in cases]
    finally:
        checker.close()


def test_the_helper_leaves_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process holding a checker: the helper sees its input end and exits."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from agent_rerun.sigcheck import BatchChecker; "
         "c = BatchChecker(bytes(32), helpers=2); "
         "print(*(p.pid for p in c.processes), flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helpers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(helpers) == 2 and all(alive(helper) for helper in helpers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(helper) for helper in helpers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(helper) for helper in helpers)
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
        checker.processes[0].kill()
        worker.join(timeout=10)
    checker.close()
    assert not stuck, "submit and the helper waited on each other"
    assert answers == [0 if index in bad_at else -1 for index in range(20_000)]


@pytest.mark.parametrize("cut_short", ["submit", "failures"])
def test_a_call_cut_short_never_lets_a_later_batch_take_an_old_answer(
        cut_short: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or a timeout raised by a signal handler) between two helpers' parts:
    some helper then owes an answer nobody expects, which the next batch would be
    judged by. Mock: the interruption, raised where a real one can land but not on
    demand. The checker must refuse every later call, never pass a forged batch."""
    payloads, signatures = signed(10)
    checker = BatchChecker(KEY.public_key, helpers=2)
    second = checker._helpers[1]
    method = "submit" if cut_short == "submit" else "answer"
    real = getattr(second, method)

    def interrupted(*args: object) -> object:
        monkeypatch.setattr(second, method, real)
        raise KeyboardInterrupt

    try:
        if cut_short == "failures":
            checker.submit(payloads, signatures)
        monkeypatch.setattr(second, method, interrupted)
        with pytest.raises(KeyboardInterrupt):
            checker.submit(payloads, signatures)
            checker.failures()
        forged = [bytes(64), *signatures[1:]]
        outcome: list[object] = []

        def judge_the_forged_batch() -> None:
            try:
                checker.submit(payloads, forged)
                outcome.append(checker.failures())
            except CheckerGone as exc:
                outcome.append(exc)

        import threading

        judge = threading.Thread(target=judge_the_forged_batch, daemon=True)
        judge.start()
        judge.join(timeout=30)
        stuck = judge.is_alive()
        if stuck:  # waiting for an answer that will not come: free it
            for process in checker.processes:
                process.kill()
            judge.join(timeout=10)
        assert not stuck, "the checker waited for an answer owed to an earlier batch"
        assert len(outcome) == 1 and isinstance(outcome[0], CheckerGone), outcome
        assert all(process.poll() is not None for process in checker.processes)
    finally:
        checker.close()
