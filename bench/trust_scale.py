"""Trust at scale: what a 10,000-key trust file and a 10,000-key revocation list add to a batch.

    .venv/bin/python bench/trust_scale.py              # 20,000 pairs, 10,000 + 10,000 keys
    .venv/bin/python bench/trust_scale.py --tiny       # seconds: proves the script works

Measures ``rerun verify --batch`` wall time on the same 20,000 pairs, run
alternately round by round: without trust settings; with ``--trusted-keys``
(10,000 allowed_signers lines; the bundles' 100 signing keys spread through
it, so a scan would pay for its length) plus ``--revoked-keys`` (10,000 other
keys as a key list); and with the same revocations as an ssh-keygen KRL.
Target: at most 10% over the plain batch. It also times parsing trust files
of growing size in-process, so a parse cost that is not linear shows.

The published agent-rerun 0.1.0 has no batch mode, trust or revocation; for
side-by-side scale it is timed verifying the same pairs in one process (its
``verify`` over each pair's files), which is a floor for its CLI.
Writes bench/results/trust_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402
import workloads  # noqa: E402

TARGET = 0.10


@dataclass(frozen=True)
class Sizes:
    pairs: int
    trusted: int
    revoked: int
    signers: int
    rounds: int


FULL = Sizes(pairs=20_000, trusted=10_000, revoked=10_000, signers=100, rounds=5)
TINY = Sizes(pairs=60, trusted=50, revoked=50, signers=5, rounds=1)


def _raw_keys(count: int, seed: int) -> list[bytes]:
    """Deterministic distinct Ed25519 public keys (from fixed private seeds)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return [Ed25519PrivateKey.from_private_bytes(
        (seed * 1_000_003 + index).to_bytes(32, "big")).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw) for index in range(count)]


def make_inputs(work: Path, sizes: Sizes) -> dict[str, Path]:
    """The pairs folder, the trust file, the revocation list and (if ssh-keygen) its KRL."""
    from agent_rerun import CaptureOptions, capture, jcs_bytes
    from agent_rerun.pubkey import ssh_public_key_line

    signer_seeds = [(7 * 1_000_003 + index).to_bytes(32, "big") for index in range(sizes.signers)]
    options = [CaptureOptions(signing_key=seed) for seed in signer_seeds]
    signer_keys = _raw_keys(sizes.signers, 7)
    folder = work / "pairs"
    folder.mkdir()
    for index in range(sizes.pairs):
        step = workloads.corpus_step(index % 1000)
        step["sampling"]["seed"] = index
        (folder / f"p{index:05d}.rr").write_bytes(
            jcs_bytes(capture(step, options[index % sizes.signers])))
        workloads.write_json(folder / f"p{index:05d}.actual.json", workloads.actual_for(step))

    others = _raw_keys(sizes.trusted - sizes.signers, 11)
    lines = [f'user{index}@example.com namespaces="agent-rerun" {ssh_public_key_line(key)}'
             for index, key in enumerate(others)]
    # Signing keys spread evenly, the last one at the very end: a scan would pay for it.
    for signer, key in enumerate(signer_keys):
        at = (signer + 1) * len(others) // sizes.signers + signer
        lines.insert(at, f'ci{signer}@example.com namespaces="agent-rerun",'
                         f'valid-after="20200101Z" {ssh_public_key_line(key)}')
    trust = work / "allowed_signers"
    trust.write_text("\n".join(lines) + "\n")

    revoked = work / "revoked_keys"
    revoked.write_text("# leaked keys\n" + "".join(
        f"{ssh_public_key_line(key, f'leaked-{i}')}\n"
        for i, key in enumerate(_raw_keys(sizes.revoked, 13))))
    paths = {"pairs": folder, "trust": trust, "revoked": revoked}
    if shutil.which("ssh-keygen"):
        krl = work / "revoked.krl"
        subprocess.run(["ssh-keygen", "-k", "-f", str(krl), str(revoked)], check=True,
                       capture_output=True)
        paths["krl"] = krl
    return paths


def batch_run(cli: list[str], folder: Path, extra: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one ``rerun verify --batch``.

    CPU time is reported beside wall time because on a shared machine other
    processes stretch wall time by more than the effect being measured; with
    ``--jobs 1`` the batch is one process, so its CPU time is the work it did.
    Every pair must verify.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([*cli, "verify", "--batch", str(folder), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    assert proc.stderr is not None
    errors = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"batch {extra} exited {proc.returncode}: {errors[-300:]}")
    return seconds, usage.ru_utime + usage.ru_stime


PUBLISHED_LOOP = """
import json, sys, time
from pathlib import Path
from agent_rerun import verify
folder = Path(sys.argv[1])
start = time.perf_counter()
ok = 0
for bundle in sorted(folder.glob("*.rr")):
    actual = bundle.with_name(bundle.name[:-3] + ".actual.json")
    ok += verify(json.loads(bundle.read_text("utf-8")),
                 json.loads(actual.read_text("utf-8"))).verified
print(time.perf_counter() - start, ok)
"""


def published_loop(python: Path, folder: Path, pairs: int) -> float:
    done = subprocess.run([str(python), "-c", PUBLISHED_LOOP, str(folder)], capture_output=True,
                          text=True, check=True, cwd=tempfile.gettempdir())
    seconds, ok = done.stdout.split()
    if int(ok) != pairs:
        raise RuntimeError(f"published verified {ok} of {pairs} pairs")
    return float(seconds)


PARSE_TIMES = """
import sys, time
from agent_rerun.trust import parse_trust_file, TrustIndex
from agent_rerun.revocation import load_revocation_file
lines = open(sys.argv[1]).read().splitlines()
out = []
TrustIndex(parse_trust_file(sys.argv[1]))  # warm-up: imports and allocator pools
for count in map(int, sys.argv[3:]):
    part = sys.argv[2] + f".{count}"
    open(part, "w").write("\\n".join(lines[:count]) + "\\n")
    start = time.perf_counter()
    TrustIndex(parse_trust_file(part))
    out.append(f"{count} {time.perf_counter() - start}")
print("\\n".join(out))
"""


def parse_times(python: Path, trust: Path, counts: list[int]) -> list[tuple[int, float]]:
    done = subprocess.run([str(python), "-c", PARSE_TIMES, str(trust),
                           str(trust.with_name("part")), *map(str, counts)],
                          capture_output=True, text=True, check=True)
    return [(int(n), float(s)) for n, s in (line.split() for line in done.stdout.splitlines())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument("--rounds", type=int, help="alternating rounds per measurement")
    parser.add_argument("--jobs", type=int, default=1, help="--jobs for the batches")
    parser.add_argument("--ours-only", action="store_true", help="skip the published package")
    parser.add_argument("--in-place", action="store_true",
                        help="run ours with this interpreter, not a clean bench/.ours-venv")
    parser.add_argument("--out", type=Path,
                        help="results folder (default: bench/results, or the gitignored "
                             "bench/results-tiny with --tiny)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = bench.TINY_RESULTS if args.tiny else bench.RESULTS
    elif args.tiny and args.out.resolve() == bench.RESULTS.resolve():
        parser.error("--tiny results are not benchmark results; they never go to "
                     f"{bench.RESULTS} (the committed ones)")
    sizes = TINY if args.tiny else FULL
    rounds = args.rounds or sizes.rounds
    ours_python = Path(sys.executable) if args.in_place else bench.install_ours(args.quiet)
    cli = [str(ours_python.with_name("rerun"))]
    theirs = None if args.ours_only else bench.published_python(args.quiet)

    work = Path(tempfile.mkdtemp(prefix="rerun-trust-bench-"))
    try:
        say(args.quiet, f"generating {sizes.pairs} pairs, {sizes.trusted} trusted and "
                        f"{sizes.revoked} revoked keys in {work}")
        paths = make_inputs(work, sizes)
        jobs = ["--jobs", str(args.jobs)]
        variants = {"no trust settings": jobs,
                    f"{sizes.trusted:,}-key trust file + {sizes.revoked:,}-key revocation list":
                        [*jobs, "--trusted-keys", str(paths["trust"]),
                         "--revoked-keys", str(paths["revoked"])]}
        if "krl" in paths:
            variants[f"{sizes.trusted:,}-key trust file + the same revocations as a KRL"] = [
                *jobs, "--trusted-keys", str(paths["trust"]), "--revoked-keys",
                str(paths["krl"])]
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        for index in range(rounds):
            say(args.quiet, f"round {index + 1} of {rounds}")
            order = list(variants.items())
            if index % 2:
                order.reverse()
            for name, extra in order:
                wall, cpu = batch_run(cli, paths["pairs"], extra)
                walls[name].append(wall)
                cpus[name].append(cpu)
        published = (published_loop(theirs, paths["pairs"], sizes.pairs)
                     if theirs is not None else None)
        counts = [sizes.trusted // 4, sizes.trusted // 2, sizes.trusted]
        parsed = parse_times(ours_python, paths["trust"], counts)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base_wall = statistics.median(walls["no trust settings"])
    base_cpu = statistics.median(cpus["no trust settings"])
    rows = []
    for name in variants:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        rows.append({"variant": name, "wall_s": wall, "cpu_s": cpu,
                     "wall_overhead": wall / base_wall - 1, "cpu_overhead": cpu / base_cpu - 1,
                     "walls_s": walls[name], "cpus_s": cpus[name]})
    command = "python bench/trust_scale.py" + " ".join(
        [""] + (["--tiny"] if args.tiny else []) + (["--jobs", str(args.jobs)]
                                                    if args.jobs != 1 else []))
    machine = bench.machine_line()
    lines = [f"# Trust at scale: rerun verify --batch of {sizes.pairs:,} pairs (--jobs "
             f"{args.jobs})", "", f"Command: `{command}`  ", f"Machine: {machine}  ",
             f"Medians of {rounds} alternating rounds; target: at most {TARGET:.0%} over the "
             "plain batch. CPU time is user + system time of the batch process (with "
             "--jobs 1, all its work); wall time also counts waiting for a busy machine.",
             "", "| variant | CPU time | CPU overhead | wall time | wall overhead | "
             "wall times of the runs |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        runs = ", ".join(f"{v:.2f}" for v in row["walls_s"])
        lines.append(f"| {row['variant']} | {row['cpu_s']:.2f} s | {row['cpu_overhead']:+.1%} "
                     f"| {row['wall_s']:.2f} s | {row['wall_overhead']:+.1%} | {runs} |")
    if published is not None:
        lines += ["", f"Published agent-rerun 0.1.0 (no batch, trust or revocation), its "
                      f"`verify` over the same pairs in one process: {published:.2f} s."]
    lines += ["", "Trust file parse (in-process, parse + index):", "",
              "| keys | seconds | µs per key |", "|---:|---:|---:|"]
    lines += [f"| {n:,} | {s:.3f} | {s / n * 1e6:.1f} |" for n, s in parsed]
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trust_scale.md").write_text(report)
    (args.out / "trust_scale.json").write_text(json.dumps(
        {"machine": machine, "command": command, "sizes": sizes.__dict__, "rows": rows,
         "published_in_process_s": published, "parse": parsed, "tiny": args.tiny},
        indent=2) + "\n")
    worst = max(row["cpu_overhead"] for row in rows)
    if not args.tiny and worst > TARGET:
        print(f"over target: {worst:+.1%} > {TARGET:.0%}", file=sys.stderr)
        return 1
    return 0


def say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
