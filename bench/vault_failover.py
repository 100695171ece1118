"""Benchmark: the signing stall when the active node of a 3-node OpenBao Raft cluster dies.

Starts the cluster the tests use (tests/vault_support.py: loopback, one key
share), signs PAYLOADS small payloads through all three addresses in requests
of BATCH inputs, and sends SIGKILL to the active node after a third of them.
Prints the cluster set-up time, the longest sign request before and after the
kill (failover included) and the signatures/s of the whole run. Nothing is
asserted.

    .venv/bin/python bench/vault_failover.py [--payloads 6000] [--batch 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()

    from vault_support import ok, start_raft_cluster

    from agent_rerun.signer import load_signer

    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        cluster = start_raft_cluster(Path(folder))
        setup = time.monotonic() - started
        try:
            active = cluster.active()
            ok(active.addr, "POST", "sys/mounts/transit", {"type": "transit"},
               token=cluster.root_token)
            ok(active.addr, "POST", "transit/keys/ha", {"type": "ed25519"},
               token=cluster.root_token)
            addrs = [active.addr] + [a for a in cluster.addrs if a != active.addr]
            os.environ["VAULT_TOKEN"] = cluster.root_token
            payloads = [b"payload %d" % i for i in range(args.payloads)]
            latencies: list[float] = []
            kill_at = len(payloads) // args.batch // 3
            with load_signer(f"vault:ha?addr={','.join(addrs)}") as signer:
                signer.batch_items = args.batch  # type: ignore[attr-defined]
                real = signer._request  # type: ignore[attr-defined]

                def timed(chunk: list[bytes]) -> list[bytes]:
                    asked = time.monotonic()
                    result: list[bytes] = real(chunk)
                    latencies.append(time.monotonic() - asked)
                    if len(latencies) == kill_at:
                        active.process.kill()
                    return result

                signer._request = timed  # type: ignore[attr-defined]
                run_start = time.perf_counter()
                signatures = signer.sign_many(payloads)  # type: ignore[attr-defined]
                seconds = time.perf_counter() - run_start
            assert len(signatures) == len(payloads) and not active.alive()
            before, after = latencies[:kill_at], latencies[kill_at:]
            print(f"3-node Raft cluster up in {setup:.1f} s; {len(payloads)} signatures in "
                  f"{len(latencies)} requests of {args.batch}, {len(payloads) / seconds:.0f} sig/s")
            print(f"  sign request before kill -9: median {statistics.median(before) * 1e3:.1f} ms,"
                  f" max {max(before) * 1e3:.1f} ms")
            print(f"  sign request after kill -9:  median {statistics.median(after) * 1e3:.1f} ms,"
                  f" max {max(after) * 1e3:.1f} ms (the stall, failover included)")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
