"""The one sample step record ("say hi" → "hi") the CLI and signer tests capture and verify.

Imported as a sibling module (``from samples import ...``), like ``pkcs11_fixtures``.
``SAMPLE_STEP`` is shared between test modules: never mutate it; take a private
copy with ``sample_step()`` when a test needs to change something.
"""

from __future__ import annotations

import copy
from typing import Any

_STEP: dict[str, Any] = {
    "model": {"vendor": "anthropic", "id": "claude-opus-4-7", "fingerprint": "fp_test"},
    "sampling": {"temperature": 0, "top_p": 1, "seed": 42},
    "inputs": {
        "system_prompt": "you are a helpful assistant",
        "messages": [{"role": "user", "content": "say hi"}],
    },
    "runtime": {"class": "cloud", "tool_versions": {"python": "3.12.3"}},
    "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
    "tolerance": {"level": "byte"},
}


def sample_step(**overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of the sample step, with top-level fields replaced by ``overrides``."""
    step = copy.deepcopy(_STEP)
    step.update(copy.deepcopy(overrides))
    return step


def sample_actual(step: dict[str, Any]) -> dict[str, Any]:
    """The actual record of a run that reproduced ``step`` exactly."""
    return {"inputs": step["inputs"], "output": {"transcript": step["expected"]["transcript"]}}


SAMPLE_STEP = sample_step()
SAMPLE_ACTUAL = sample_actual(SAMPLE_STEP)
