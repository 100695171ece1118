"""``capture_many``: in order, every signature checked, failures where ``capture`` has them.

The pipelined path is taken for signers with ``sign_unchecked`` (the PKCS#11
signer; tests/test_pkcs11_softhsm.py runs it against SoftHSM2). A token that
returns bad signatures cannot be made from a real SoftHSM, so the faulty
signer here is a stand-in built on the real in-memory Ed25519 signer.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from samples import SAMPLE_STEP

from agent_rerun.capture import CaptureOptions, capture, capture_many
from agent_rerun.errors import SignerError, ValidationError
from agent_rerun.signer import InMemorySigner

KEY = bytes([1]) * 32


class UncheckedSigner(InMemorySigner):
    """Offers the unchecked entry point; ``bad_at`` makes that signature garbage."""

    checks_signatures = False

    def __init__(self, bad_at: int | None = None) -> None:
        super().__init__(KEY)
        self.bad_at = bad_at
        self.calls = 0

    def sign_unchecked(self, data: bytes) -> bytes:
        signature = self.sign(data)
        self.calls += 1
        if self.calls - 1 == self.bad_at:
            return bytes(64)
        return signature


def _steps(count: int) -> list[dict[str, Any]]:
    return [{**SAMPLE_STEP, "sampling": {**SAMPLE_STEP["sampling"], "seed": i}}
            for i in range(count)]


def test_same_bundles_as_capture_in_the_same_order() -> None:
    steps = _steps(30)
    expected = [capture(step, CaptureOptions(signing_key=KEY)) for step in steps]
    assert list(capture_many(steps, CaptureOptions(signer=UncheckedSigner()))) == expected


def test_signers_without_the_unchecked_entry_point_capture_one_by_one() -> None:
    steps = _steps(5)
    options = CaptureOptions(signer=InMemorySigner(KEY))
    assert list(capture_many(steps, options)) == [capture(step, options) for step in steps]
    assert list(capture_many(steps)) == [capture(step) for step in steps]


@pytest.mark.parametrize("bad_at", [0, 3, 9])
def test_a_bad_signature_fails_after_the_bundles_before_it(bad_at: int) -> None:
    got = []
    with pytest.raises(SignerError, match="unusable signature"):
        for bundle in capture_many(_steps(10), CaptureOptions(signer=UncheckedSigner(bad_at))):
            got.append(bundle)
    assert len(got) == bad_at


def test_an_invalid_step_fails_in_its_place() -> None:
    steps = _steps(6)
    steps[4] = {**steps[4], "tolerance": {"level": "nonsense"}}
    got = []
    with pytest.raises(ValidationError, match="tolerance"):
        for bundle in capture_many(steps, CaptureOptions(signer=UncheckedSigner())):
            got.append(bundle)
    assert len(got) == 4


def test_the_checker_thread_ends_when_the_caller_stops_early() -> None:
    before = threading.active_count()
    batch = capture_many(_steps(10), CaptureOptions(signer=UncheckedSigner()))
    next(batch)
    batch.close()
    assert threading.active_count() == before
