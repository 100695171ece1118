"""Benchmark: batch capture of 1,000 small steps with a SoftHSM2 key vs raw token signing.

The target (issue #4) is that a batch capture reaches at least half of the
token's raw Ed25519 signing rate, measured by python-pkcs11 on the same token
and key in the same run. Everything runs on a fresh temporary token, so the
numbers are comparable between machines and runs; nothing is asserted, the
script prints the rates and ratios.

    .venv/bin/python bench/pkcs11_batch.py [--steps 1000] [--rounds 3] [--cli]

Rows:
  raw python-pkcs11   C_Sign(CKM_EDDSA) on a bundle-sized payload, nothing else
  signer.sign         the backend's sign(): C_Sign plus the software check of the result
  library per step    load_signer once + capture() of every step, signed one by one
  library batch       load_signer once, capture() of every step unsigned, then
                      sign_bundles(): the signer's sign_many, which keeps the token
                      signing in a second thread while this one checks each signature
  library batch+write the same, writing each bundle atomically as the CLI does
  cli batch           `rerun capture STEP... -o DIR --key pkcs11:...` (with --cli;
                      includes interpreter start-up and the login)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULE = os.environ.get("RERUN_BENCH_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "rerun-bench"
PIN = "bench-pin-1234"


def small_step(i: int) -> dict[str, Any]:
    """The README quickstart step, made distinct per index through its seed."""
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
        "sampling": {"temperature": 0, "top_p": 1, "seed": i},
        "inputs": {
            "system_prompt": "you are a helpful assistant",
            "messages": [{"role": "user", "content": f"say hi #{i}"}],
        },
        "runtime": {"class": "cloud"},
        "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
        "tolerance": {"level": "byte"},
    }


def make_token(base: Path) -> Path:
    """A fresh SoftHSM token folder with one initialised token; returns the conf path."""
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    template = (ROOT / "conf" / "softhsm2.conf").read_text()
    conf.write_text(template.replace("@TOKENDIR@", str(tokens)))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
         "--so-pin", "so-" + PIN, "--pin", PIN],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    return conf


def best_rate(count: int, rounds: int, run: Callable[[], None]) -> float:
    """Operations per second of the fastest of ``rounds`` runs of ``count`` operations."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cli", action="store_true", help="also time the rerun CLI batch")
    args = parser.parse_args()
    if shutil.which("softhsm2-util") is None or not Path(MODULE).is_file():
        print("softhsm2 is not installed (apt-get install softhsm2)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="rerun-pkcs11-bench-"))
    try:
        os.environ["SOFTHSM2_CONF"] = str(make_token(work))  # before the module is loaded
        return run_bench(work, args.steps, args.rounds, args.cli)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_bench(work: Path, steps: int, rounds: int, cli: bool) -> int:
    import pkcs11
    from pkcs11 import KeyType, Mechanism, ObjectClass

    from agent_rerun.capture import capture
    from agent_rerun.signature import signing_payload
    from agent_rerun.signer import generate_key

    pin_file = work / "pin"
    pin_file.write_text(PIN)
    pin_file.chmod(0o600)  # a PIN file others can read is warned about
    uri = f"pkcs11:token={TOKEN};object=bench?module-path={MODULE}&pin-source={pin_file}"
    key_uri = generate_key(uri).uri
    records = [small_step(i) for i in range(steps)]
    payload = signing_payload(capture(records[0]))

    token = pkcs11.lib(MODULE).get_token(token_label=TOKEN)
    with token.open(user_pin=PIN) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label="bench")

        def raw() -> None:
            for _ in range(steps):
                private.sign(payload, mechanism=Mechanism.EDDSA)

        print(f"payload {len(payload)} bytes, {steps} steps, best of {rounds} interleaved "
              f"rounds, SoftHSM module {MODULE}")
        return measure(steps, rounds, cli, work, records, key_uri, raw)


def measure(steps: int, rounds: int, cli: bool, work: Path, records: list[dict[str, Any]],
            key_uri: str, raw: Callable[[], None]) -> int:
    from agent_rerun.atomic import write_atomic
    from agent_rerun.canonical import jcs_bytes
    from agent_rerun.capture import CaptureOptions, capture, sign_bundles
    from agent_rerun.signature import signing_payload
    from agent_rerun.signer import closing_signer, load_signer

    def library_per_step() -> None:
        with closing_signer(load_signer(key_uri)) as signer:
            options = CaptureOptions(signer=signer)
            for record in records:
                capture(record, options)

    def library_batch() -> None:
        with closing_signer(load_signer(key_uri)) as signer:
            sign_bundles([capture(record) for record in records], signer)

    def signer_only() -> None:
        payload = signing_payload(capture(records[0]))
        with closing_signer(load_signer(key_uri)) as signer:
            for _ in records:
                signer.sign(payload)

    out = work / "bundles"
    out.mkdir()

    def library_batch_write() -> None:
        with closing_signer(load_signer(key_uri)) as signer:
            bundles = sign_bundles([capture(record) for record in records], signer)
            for i, bundle in enumerate(bundles):
                write_atomic(out / f"step{i}.rr", jcs_bytes(bundle))

    # The machine's load drifts; alternate the contenders within each round so
    # every ratio compares neighbours in time, and keep each one's best round.
    contenders: list[tuple[str, Callable[[], None]]] = [
        ("raw python-pkcs11 C_Sign", raw),
        ("pkcs11 signer.sign + check", signer_only),
        ("library per step (capture)", library_per_step),
        ("library batch (sign_bundles)", library_batch),
        ("library batch + write", library_batch_write),
    ]
    if cli:
        contenders.append(("cli batch (rerun capture)", cli_runner(work, records, key_uri)))
    report_interleaved(contenders, steps, rounds)
    return 0


def report_interleaved(contenders: list[tuple[str, Callable[[], None]]], steps: int,
                       rounds: int) -> None:
    """Run the contenders in turn, round after round, and print each one's best rate.

    The first contender is the raw rate every other row is a ratio of. The load
    of a shared machine drifts; alternating within each round makes every ratio
    compare neighbours in time.
    """
    best = {name: 0.0 for name, _ in contenders}
    for _ in range(rounds):
        for name, run in contenders:
            best[name] = max(best[name], best_rate(steps, 1, run))
    raw_name = contenders[0][0]
    for name, rate in best.items():
        ratio = "" if name == raw_name else f"  ratio {rate / best[raw_name]:.2f}x of raw"
        print(f"{name:28s} {rate:9.0f} signatures/s{ratio}")


def cli_runner(work: Path, records: list[dict[str, Any]], key_uri: str) -> Callable[[], None]:
    steps_dir = work / "steps"
    steps_dir.mkdir()
    paths = []
    for i, record in enumerate(records):
        path = steps_dir / f"step{i}.json"
        path.write_text(json.dumps(record))
        paths.append(str(path))
    rerun = Path(sys.executable).with_name("rerun")

    def run() -> None:
        out = work / "cli-out"
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([str(rerun), "capture", *paths, "-o", str(out), "--key", key_uri],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)

    return run


if __name__ == "__main__":
    raise SystemExit(main())
