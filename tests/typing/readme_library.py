"""The README's library example, verbatim: `./dev.sh test` type-checks it (mypy --strict).

Not collected by pytest (the name has no test_ prefix): it would need a key at the path it
names. tests/test_readme.py checks that the code below this docstring is exactly the
README's first ```python block, so the two cannot drift apart.
"""

import base64

from agent_rerun import CaptureOptions, StepRecord, capture, load_signer, verify

step: StepRecord = {
    "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
    "sampling": {"temperature": 0, "top_p": 1, "seed": 42},
    "inputs": {"system_prompt": "you are a helpful assistant",
               "messages": [{"role": "user", "content": "say hi"}]},
    "runtime": {"class": "cloud"},
    "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
    "tolerance": {"level": "byte"},
}

with load_signer("~/.config/agent-rerun/key.pem") as signer:   # or keyring:work, pkcs11:...
    bundle = capture(step, CaptureOptions(signer=signer))
    alice = base64.b64encode(signer.public_key).decode() + " alice"

actual = {"inputs": {"system_prompt": step["inputs"]["system_prompt"],
                     "messages": step["inputs"]["messages"]},
          "output": {"transcript": step["expected"]["transcript"]}}
result = verify(bundle, actual, trusted_keys=[alice])
print(result.verified, result.errors, result.signer)
