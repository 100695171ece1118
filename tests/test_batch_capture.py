"""``rerun capture`` of many steps signs them in chunks, and still fails as one-by-one did.

A signer that batches (``sign_many``) gets whole chunks; whatever goes wrong
mid-batch, every bundle before the failing step is written, complete and in
order, and nothing after a signer failure is.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from samples import SAMPLE_STEP, sample_actual, sample_step
from support import run_cli

from agent_rerun.b64 import encode
from agent_rerun.errors import SignerError
from agent_rerun.signer import InMemorySigner, SignerBase
from agent_rerun.verify import verify


class FailsAtSeed(SignerBase):
    """An in-memory key that refuses one step's payload, batched or alone.

    A stand-in for a token that fails part-way (pulled out, or refusing a payload
    it cannot sign): the real tokens here cannot be made to fail at the k-th
    signature on demand.
    """

    def __init__(self, bad_seed: int | None) -> None:
        self._inner = InMemorySigner(bytes(range(32)))
        self._bad = None if bad_seed is None else b'"seed":%d,' % bad_seed
        self.batches: list[int] = []

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def sign(self, data: bytes) -> bytes:
        if self._bad is not None and self._bad in data:
            raise SignerError("the token refused this payload")
        return self._inner.sign(data)

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        self.batches.append(len(payloads))
        return [self.sign(p) for p in payloads]


def make_steps(tmp_path: Path, count: int) -> list[tuple[str, str]]:
    targets = []
    for i in range(count):
        path = tmp_path / f"s{i:02d}.json"
        path.write_text(json.dumps(sample_step(sampling={"temperature": 0, "top_p": 1,
                                                         "seed": i})), encoding="utf-8")
        targets.append((str(path), str(tmp_path / "out" / f"s{i:02d}.rr")))
    (tmp_path / "out").mkdir()
    return targets


def test_a_signer_failure_mid_chunk_writes_every_bundle_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_rerun.cli import capture_cmd

    monkeypatch.setattr(capture_cmd, "SIGN_CHUNK", 4)
    targets = make_steps(tmp_path, 10)
    signer = FailsAtSeed(6)  # the third step of the second chunk
    with pytest.raises(SignerError) as raised:
        capture_cmd._capture_batch(targets, signer)
    assert str(raised.value) == f"{targets[6][0]}: the token refused this payload"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"s{i:02d}.rr" for i in range(6)]  # no temporaries, nothing after
    for i in range(6):
        bundle = json.loads(Path(targets[i][1]).read_bytes())
        step = json.loads(Path(targets[i][0]).read_bytes())
        trusted = [encode(signer.public_key)]
        assert verify(bundle, sample_actual(step), trusted_keys=trusted).verified


def test_a_batching_signer_gets_chunks_and_bad_steps_are_reported_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from agent_rerun.cli import capture_cmd

    monkeypatch.setattr(capture_cmd, "SIGN_CHUNK", 4)
    targets = make_steps(tmp_path, 9)
    Path(targets[2][0]).write_text('{"not": "a step"}', encoding="utf-8")
    Path(targets[5][1]).mkdir()  # this bundle cannot be written
    signer = FailsAtSeed(None)
    assert capture_cmd._capture_batch(targets, signer) == 2
    assert signer.batches == [3, 4, 1]  # the bad step is not sent to the signer
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert targets[2][0] in errors[0] and targets[5][1] in errors[1]
    written = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file())
    assert written == [f"s{i:02d}.rr" for i in range(9) if i not in (2, 5)]


def test_batch_capture_goes_on_after_a_write_error(tmp_path: Path) -> None:
    steps = []
    for name in ("a", "b", "c"):
        steps.append(tmp_path / f"{name}.json")
        steps[-1].write_text(json.dumps(SAMPLE_STEP))
    out = tmp_path / "out"
    (out / "b.rr").mkdir(parents=True)  # cannot be replaced by a file
    run = run_cli("capture", *steps, "-o", out, "--unsigned")
    assert run.returncode == 1
    assert f"rerun: error: {out / 'b.rr'}: Is a directory" in run.stderr
    assert "1 of 3 steps could not be captured" in run.stderr
    assert (out / "a.rr").is_file() and (out / "c.rr").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_output_with_a_trailing_slash_is_a_folder(tmp_path: Path) -> None:
    step = tmp_path / "one.json"
    step.write_text(json.dumps(SAMPLE_STEP))
    run = run_cli("capture", step, "-o", f"{tmp_path / 'new'}{os.sep}", "--unsigned")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "new" / "one.rr").is_file()


class OneThreadAtATime(FailsAtSeed):
    """Records, for each batch, how many steps had been captured when it was signed;
    refuses to be used by two threads at once (no backend promises it can be)."""

    def __init__(self, bad_seed: int | None, captured: list[int], wait_for: int) -> None:
        super().__init__(bad_seed)
        self._captured = captured
        self._wait_for = wait_for
        self._busy = threading.Lock()
        self.seen: list[int] = []

    def sign(self, data: bytes) -> bytes:
        with self._exclusive():
            return super().sign(data)

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        with self._exclusive():
            # Give the batch a moment to capture the next chunk meanwhile: one
            # that captures only after signing waits here in vain.
            deadline = time.monotonic() + 5
            while self._captured[0] < self._wait_for and time.monotonic() < deadline:
                time.sleep(0.01)
            self.seen.append(self._captured[0])
            self.batches.append(len(payloads))
            return [FailsAtSeed.sign(self, p) for p in payloads]

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise AssertionError("the signer was used by two threads at once")
        try:
            yield
        finally:
            self._busy.release()


def counting_captures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from agent_rerun.cli import capture_cmd

    captured = [0]
    real = capture_cmd.capture_file

    def counted(step_path: str, options: Any) -> Any:
        captured[0] += 1
        return real(step_path, options)

    monkeypatch.setattr(capture_cmd, "capture_file", counted)
    return captured


def test_the_next_chunk_is_captured_while_one_is_being_signed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_rerun.cli import capture_cmd

    monkeypatch.setattr(capture_cmd, "SIGN_CHUNK", 4)
    targets = make_steps(tmp_path, 10)
    captured = counting_captures(monkeypatch)
    signer = OneThreadAtATime(None, captured, wait_for=8)
    assert capture_cmd._capture_batch(targets, signer) == 0
    assert signer.batches == [4, 4, 2]
    assert signer.seen[0] == 8  # the second chunk was captured while the first was signed
    for step_path, out_path in targets:
        bundle = json.loads(Path(out_path).read_bytes())
        step = json.loads(Path(step_path).read_bytes())
        assert verify(bundle, sample_actual(step), trusted_keys=[encode(signer.public_key)])


def test_a_failure_in_the_first_chunk_writes_nothing_of_the_next_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The second chunk is already captured (its bad step too) when the first fails: it is
    neither sent to the signer, nor written, nor reported."""
    from agent_rerun.cli import capture_cmd

    monkeypatch.setattr(capture_cmd, "SIGN_CHUNK", 4)
    targets = make_steps(tmp_path, 10)
    Path(targets[5][0]).write_text('{"not": "a step"}', encoding="utf-8")
    captured = counting_captures(monkeypatch)
    signer = OneThreadAtATime(2, captured, wait_for=8)
    with pytest.raises(SignerError) as raised:
        capture_cmd._capture_batch(targets, signer)
    assert str(raised.value) == f"{targets[2][0]}: the token refused this payload"
    assert signer.batches == [4] and signer.seen == [8]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s00.rr", "s01.rr"]
    assert targets[5][0] not in capsys.readouterr().err
