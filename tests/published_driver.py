"""Capture and verify with the *published* agent-rerun 0.1.0, for tests/test_differential.py.

Run by that test under bench/.published-venv's interpreter, as a script (so
``sys.path`` holds this folder and that venv's site-packages, never this
project). Reads one JSON request on stdin and writes one JSON reply:

* request: ``{"key": hex, "cases": [{"step": text, "ours": base64 | null,
  "actuals": [text, ...]}, ...]}``;
* reply: per case ``{"bundle": base64 | null, "error": str | null,
  "theirs": [verdict per actual], "ours": [verdict per actual] | null}``, where
  a verdict is ``{"verified", "errors", "warnings"}`` or ``{"raised": str}``.

Only the standard library and the published package: it must run where this
project is not installed.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import agent_rerun
from agent_rerun import CaptureOptions, capture, jcs_bytes, verify


def _verdict(bundle_bytes: bytes, actual_text: str) -> dict[str, Any]:
    try:
        result = verify(json.loads(bundle_bytes), json.loads(actual_text))
    except Exception as exc:  # the published verify can raise; report it as such
        return {"raised": f"{type(exc).__name__}: {exc}"}
    return {"verified": result.verified, "errors": result.errors, "warnings": result.warnings}


def _case(key: bytes, case: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"bundle": None, "error": None, "theirs": [], "ours": None}
    bundle_bytes = None
    try:
        bundle_bytes = jcs_bytes(capture(json.loads(case["step"]), CaptureOptions(signing_key=key)))
    except Exception as exc:
        reply["error"] = f"{type(exc).__name__}: {exc}"
    if bundle_bytes is not None:
        reply["bundle"] = base64.b64encode(bundle_bytes).decode("ascii")
        reply["theirs"] = [_verdict(bundle_bytes, actual) for actual in case["actuals"]]
    if case["ours"] is not None:
        ours = base64.b64decode(case["ours"])
        reply["ours"] = [_verdict(ours, actual) for actual in case["actuals"]]
    return reply


def main() -> None:
    request = json.load(sys.stdin)
    key = bytes.fromhex(request["key"])
    replies = [_case(key, case) for case in request["cases"]]
    json.dump({"file": agent_rerun.__file__, "replies": replies}, sys.stdout)


if __name__ == "__main__":
    main()
