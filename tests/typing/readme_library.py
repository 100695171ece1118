"""The README's library example, verbatim: `./dev.sh test` type-checks it (mypy --strict).

Not collected by pytest (the name has no test_ prefix): it would need a key at the path it
names. Keep it in step with README.md; a change there that stops type-checking fails here.
"""

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

actual = {"inputs": {"system_prompt": step["inputs"]["system_prompt"],
                     "messages": step["inputs"]["messages"]},
          "output": {"transcript": step["expected"]["transcript"]}}
result = verify(bundle, actual, trusted_keys=["ssh-ed25519 AAAAC3Nza... alice"])
print(result.verified, result.errors, result.signer)
