"""Project Wycheproof's Ed25519 suite through the project's one signature-check function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import WYCHEPROOF_ED25519

from agent_rerun.signature import SignatureError, check_ed25519


def _cases() -> list[Any]:
    if not WYCHEPROOF_ED25519.is_file():
        return []
    suite = json.loads(WYCHEPROOF_ED25519.read_text())
    return [
        pytest.param(group["publicKey"]["pk"], case, id=f"tc{case['tcId']}-{case['result']}")
        for group in suite["testGroups"]
        for case in group["tests"]
    ]


CASES = _cases()


def test_suite_counts(wycheproof_ed25519: Path) -> None:
    """The suite is there and whole: 151 cases, 88 valid and 63 invalid in this release."""
    suite = json.loads(wycheproof_ed25519.read_text())
    results = [case["result"] for group in suite["testGroups"] for case in group["tests"]]
    assert len(results) == suite["numberOfTests"] == len(CASES)
    assert results.count("valid") + results.count("invalid") == len(results)  # no "acceptable"
    assert (results.count("valid"), results.count("invalid")) == (88, 63)


@pytest.mark.parametrize(("public_key_hex", "case"), CASES)
def test_wycheproof_case(public_key_hex: str, case: dict[str, Any]) -> None:
    public_key = bytes.fromhex(public_key_hex)
    signature = bytes.fromhex(case["sig"])
    message = bytes.fromhex(case["msg"])
    if case["result"] == "valid":
        check_ed25519(public_key, signature, message)
    else:
        with pytest.raises(SignatureError):
            check_ed25519(public_key, signature, message)
