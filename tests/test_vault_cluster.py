"""High availability against a real 3-node OpenBao Raft cluster on loopback.

The active node is killed with SIGKILL while a batch of 2,000 captures signs
through all three addresses: every bundle must be written and verify, and the
longest sign request after the kill (the signing stall, failover included) is printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from samples import sample_actual, sample_step
from vault_support import ok, require_backend, start_raft_cluster

require_backend()

STEPS = 2000


@pytest.mark.slow
def test_kill_9_of_the_active_node_mid_batch_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_rerun.cli.capture_cmd import _capture_batch
    from agent_rerun.signer import load_signer
    from agent_rerun.verify import verify

    raft = tmp_path / "raft"
    raft.mkdir()
    started = time.monotonic()
    cluster = start_raft_cluster(raft)
    setup_seconds = time.monotonic() - started
    try:
        active = cluster.active()
        root = cluster.root_token
        ok(active.addr, "POST", "sys/mounts/transit", {"type": "transit"}, token=root)
        ok(active.addr, "POST", "transit/keys/ha", {"type": "ed25519"}, token=root)
        # The active node first: the signer uses it until it dies.
        addrs = [active.addr] + [a for a in cluster.addrs if a != active.addr]
        monkeypatch.setenv("VAULT_TOKEN", root)
        monkeypatch.delenv("VAULT_ADDR", raising=False)

        steps, out = tmp_path / "steps", tmp_path / "out"
        steps.mkdir()
        out.mkdir()
        records = {}
        targets = []
        for i in range(STEPS):
            step = sample_step(sampling={"temperature": 0, "top_p": 1, "seed": i})
            path = steps / f"s{i:04}.json"
            path.write_text(json.dumps(step), encoding="utf-8")
            records[f"s{i:04}"] = step
            targets.append((str(path), str(out / f"s{i:04}.rr")))

        answered: list[float] = []
        latencies: list[float] = []  # per sign request, failover included
        with load_signer(f"vault:ha?addr={','.join(addrs)}") as signer:
            signer.batch_items = 20  # type: ignore[attr-defined]  # many requests: a fine clock
            real_request = signer._request  # type: ignore[attr-defined]

            def timed_request(chunk: list[bytes]) -> list[bytes]:
                asked = time.monotonic()
                signatures: list[bytes] = real_request(chunk)
                answered.append(time.monotonic())
                latencies.append(answered[-1] - asked)
                if len(answered) == 30:
                    active.process.kill()  # SIGKILL, mid-batch
                return signatures

            signer._request = timed_request  # type: ignore[attr-defined]
            batch_start = time.monotonic()
            failures = _capture_batch(targets, signer)
            public_key = signer.public_key
        assert failures == 0
        assert not active.alive()
        stall = max(latencies[30:])  # the requests after the kill

        from agent_rerun.b64 import encode

        trusted = [encode(public_key)]
        for name, step in records.items():
            bundle = json.loads((out / f"{name}.rr").read_text())
            assert verify(bundle, sample_actual(step), trusted_keys=trusted).verified, name
        with capsys.disabled():
            print(f"\n[vault cluster] setup {setup_seconds:.1f} s; {STEPS} captures in "
                  f"{answered[-1] - batch_start:.2f} s; longest sign request after kill -9 "
                  f"of the active node: {stall * 1000:.1f} ms (before it: "
                  f"{max(latencies[:30]) * 1000:.1f} ms)")
    finally:
        cluster.stop()
