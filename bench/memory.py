"""Peak memory of capture and verify on a step of a million short messages, ours vs published.

    .venv/bin/python bench/memory.py [--messages 1000000] [--rounds 1] [--case NAME]

A transcript of many small messages is the worst case for memory: each message
is a dict of two strings, and the step file is about 40 MB. Every case runs in
a fresh process and its peak resident set is that process's own ``ru_maxrss``
(``os.wait4``), so nothing one case allocated is charged to another. Cases:

  library capture   json.loads of the step file, then capture()
  library verify    json.loads of the bundle and the actual record, then verify()
  cli capture       rerun capture STEP -o BUNDLE
  cli verify        rerun verify BUNDLE ACTUAL

Ours is this checkout installed cleanly in bench/.ours-venv and the published
package is agent-rerun 0.1.0 in bench/.published-venv, both made as bench/run.py
makes them; they read the same files, alternately, and the smallest peak of the
rounds is printed (peaks barely vary; the smallest is the least disturbed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
import workloads  # noqa: E402

LIBRARY = {
    "capture": (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from agent_rerun import capture\n"
        "bundle = capture(json.loads(Path(sys.argv[1]).read_text(encoding='utf-8')))\n"
        "assert bundle['inputs']['messages_sha256'].startswith('sha256:')\n"
    ),
    "verify": (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from agent_rerun import verify\n"
        "bundle = json.loads(Path(sys.argv[2]).read_text(encoding='utf-8'))\n"
        "actual = json.loads(Path(sys.argv[3]).read_text(encoding='utf-8'))\n"
        "assert verify(bundle, actual).verified\n"
    ),
}


def million_step(messages: int) -> dict[str, object]:
    step = workloads.quickstart_step()
    step["inputs"] = {"system_prompt": "you are a helpful assistant",
                      "messages": [{"role": ("user", "assistant")[i % 2], "content": f"m{i}"}
                                   for i in range(messages)]}
    return step


def make_inputs(folder: Path, messages: int) -> None:
    """Write step.json and actual.json (run in a child: see ``peak_rss_mb``)."""
    step = million_step(messages)
    (folder / "step.json").write_text(json.dumps(step), encoding="utf-8")
    (folder / "actual.json").write_text(json.dumps({
        "inputs": step["inputs"],
        "output": {"transcript": step["expected"]["transcript"]},  # type: ignore[index]
    }), encoding="utf-8")


def peak_rss_mb(argv: list[str], cwd: Path) -> float:
    """Run ``argv`` to its end in a fresh process; its own peak RSS in MiB (fails loudly).

    Linux carries a process's peak RSS across exec, so a child starts with the
    peak of the process it was forked from: this script stays small and makes
    the big inputs in a child of its own.
    """
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}... failed ({child.returncode}): {stderr[-400:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--case", action="append",
                        help="only this case (e.g. 'cli verify'); repeatable")
    parser.add_argument("--ours-only", action="store_true")
    parser.add_argument("--make-inputs", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_inputs:
        make_inputs(Path(args.make_inputs), args.messages)
        return 0

    pythons = {"ours": run.install_ours(quiet=True)}
    if not args.ours_only:
        pythons["published"] = run.published_python(quiet=True)
    with tempfile.TemporaryDirectory(prefix="rerun-memory-") as folder:
        work = Path(folder)
        subprocess.run([sys.executable, __file__, "--make-inputs", folder,
                        "--messages", str(args.messages)], check=True)
        step_file, actual_file = work / "step.json", work / "actual.json"
        bundle_file = work / "bundle.rr"
        subprocess.run([str(pythons["ours"].with_name("rerun")), "capture", str(step_file),
                        "-o", str(bundle_file), "--unsigned"], check=True)
        files = [str(step_file), str(bundle_file), str(actual_file)]
        cases = {
            "library capture": lambda py: [str(py), "-c", LIBRARY["capture"], *files],
            "library verify": lambda py: [str(py), "-c", LIBRARY["verify"], *files],
            "cli capture": lambda py: [str(py.with_name("rerun")), "capture", files[0],
                                       "-o", str(work / f"out-{py.parent.parent.name}.rr")],
            "cli verify": lambda py: [str(py.with_name("rerun")), "verify", files[1], files[2]],
        }
        chosen = args.case or list(cases)
        size = step_file.stat().st_size / 1e6
        print(f"step of {args.messages:,} messages, {size:.1f} MB; peak RSS in MiB, smallest of "
              f"{args.rounds} round(s); load {Path('/proc/loadavg').read_text().split()[0]}")
        print()
        print("| case | ours | published 0.1.0 | ours/published |")
        print("|---|---:|---:|---:|")
        for name in chosen:
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for who, python in pythons.items():
                    # In the work folder: ``python -c`` must not import this checkout.
                    peak = peak_rss_mb(cases[name](python), work)
                    best[who] = min(best.get(who, peak), peak)
            theirs = best.get("published")
            ratio = f"{best['ours'] / theirs:.2f}x" if theirs else "-"
            print(f"| {name} | {best['ours']:.0f} | {theirs or 0:.0f} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
