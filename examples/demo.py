"""The main job, end to end through the real CLI: key, signed capture, verify, tampering.

Run by ``./dev.sh demo``. Everything is written to ./demo-out so you can look
at the files afterwards. Exits non-zero if any step does not behave as shown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path.cwd() / "demo-out"
RERUN = [sys.executable, "-m", "agent_rerun"]

STEP = {
    "model": {"vendor": "anthropic", "id": "claude-opus-4-7", "fingerprint": "fp_demo"},
    "sampling": {"temperature": 0, "top_p": 1, "seed": 42},
    "inputs": {
        "system_prompt": "you are a helpful assistant",
        "messages": [{"role": "user", "content": "say hi"}],
    },
    "runtime": {"class": "cloud"},
    "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
    "tolerance": {"level": "byte"},
}
ACTUAL = {
    "inputs": {"system_prompt": STEP["inputs"]["system_prompt"],
               "messages": STEP["inputs"]["messages"]},
    "output": {"transcript": STEP["expected"]["transcript"]},
}


def rerun(*args: str, expect: int = 0) -> str:
    """Run one CLI command, show it and its output, and insist on its exit code."""
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    print(f"\n$ rerun {shown}")
    env = {**os.environ, "RERUN_CONFIG": ""}  # the demo ignores any personal config
    env.pop("RERUN_KEY_PASSPHRASE", None)
    done = subprocess.run([*RERUN, *args], cwd=OUT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    print(f"(exit {done.returncode})")
    if done.returncode != expect:
        sys.exit(f"demo: expected exit {expect} from 'rerun {shown}', got {done.returncode}")
    return done.stdout


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    (OUT / "step.json").write_text(json.dumps(STEP, indent=2))
    (OUT / "actual.json").write_text(json.dumps(ACTUAL, indent=2))

    print("1. Alice makes a signing key (a 0600 PKCS#8 file; set RERUN_KEY_PASSPHRASE "
          "to encrypt it).")
    rerun("keygen", "alice.pem")
    ssh_line = rerun("pubkey", "alice.pem", "--format", "ssh").strip()
    (OUT / "allowed_signers").write_text(f'alice@example.com namespaces="agent-rerun" {ssh_line}\n')
    print("   Her public key goes into a trust file in OpenSSH allowed_signers format.")

    print("\n2. She captures the LLM step into a signed bundle.")
    rerun("capture", "step.json", "-o", "bundle.rr", "--key", "alice.pem")
    rerun("inspect", "bundle.rr", "--trusted-keys", "allowed_signers")

    print("\n3. Anyone verifies a replay against it, trusting only Alice.")
    rerun("verify", "bundle.rr", "actual.json", "--trusted-keys", "allowed_signers")

    print("\n4. Someone edits the bundle (temperature 0 -> 0.7): the signature breaks.")
    bundle = json.loads((OUT / "bundle.rr").read_bytes())
    bundle["sampling"]["temperature"] = 0.7
    (OUT / "tampered.rr").write_text(json.dumps(bundle))
    rerun("verify", "tampered.rr", "actual.json", "--trusted-keys", "allowed_signers", expect=1)

    print("\n5. Mallory re-signs the edited bundle with her own key: valid signature, "
          "untrusted signer.")
    rerun("keygen", "mallory.pem")
    rerun("sign", "tampered.rr", "--key", "mallory.pem", "-o", "resigned.rr")
    rerun("verify", "resigned.rr", "actual.json", "--trusted-keys", "allowed_signers", expect=1)

    print(f"\nDemo complete: every step behaved as expected. Files are in {OUT}.")


if __name__ == "__main__":
    main()
