"""Batch signing in the core: ``SignsMany`` signers get whole chunks, others one by one.

A signing service answers a batch in one round trip, so ``rerun capture`` of
many steps must hand a batching signer chunks of bundles, not one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from samples import sample_actual, sample_step
from support import run_cli

from agent_rerun.signer import InMemorySigner, SignerBase

EXIT_KEY = 3


class BatchingSigner(SignerBase):
    """An in-memory key that records how it was asked to sign."""

    def __init__(self) -> None:
        self._inner = InMemorySigner(bytes(range(32)))
        self.batches: list[int] = []
        self.singles = 0

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def sign(self, data: bytes) -> bytes:
        self.singles += 1
        return self._inner.sign(data)

    def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
        self.batches.append(len(payloads))
        return [self._inner.sign(p) for p in payloads]


def test_batch_capture_hands_a_batching_signer_whole_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_rerun.cli import capture_cmd
    from agent_rerun.verify import verify

    monkeypatch.setattr(capture_cmd, "SIGN_CHUNK", 10)  # small chunks: a quick test
    steps = [sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i})
             for i in range(25)]
    targets = []
    for i, step in enumerate(steps):
        path = tmp_path / f"s{i}.json"
        path.write_text(json.dumps(step), encoding="utf-8")
        targets.append((str(path), str(tmp_path / f"s{i}.rr")))
    signer = BatchingSigner()
    assert capture_cmd._capture_batch(targets, signer) == 0
    assert signer.batches == [10, 10, 5] and signer.singles == 0
    for (_, out), step in zip(targets, steps, strict=True):
        bundle = json.loads(Path(out).read_text())
        from agent_rerun.b64 import encode

        assert verify(bundle, sample_actual(step), trusted_keys=[encode(signer.public_key)])


def test_sign_bundles_checks_a_signer_that_does_not_promise_to(tmp_path: Path) -> None:
    """A batching signer returning garbage is caught, as sign_bundle catches it."""
    from agent_rerun.capture import bundle_from_step, sign_bundles
    from agent_rerun.errors import SignerError

    class Broken(BatchingSigner):
        def sign_many(self, payloads: Sequence[bytes]) -> list[bytes]:
            return [bytes(64) for _ in payloads]

    with pytest.raises(SignerError, match="unusable signature"):
        sign_bundles([bundle_from_step(sample_step())], Broken())


def test_keys_rotate_is_refused_by_backends_that_cannot(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    assert run_cli("keygen", key).returncode == 0
    result = run_cli("keys", "rotate", key)
    assert result.returncode == EXIT_KEY
    assert "'file' backend cannot rotate keys" in result.stderr
    assert result.stderr.count("\n") == 1
