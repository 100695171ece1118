"""Peak memory of ``rerun capture`` and ``rerun verify`` on a step of a million short messages.

    .venv/bin/python bench/memory_step.py [--messages 1000000] [--rounds 3]

Uses bench/.ours-venv as bench/run.py left it (``--reinstall`` refreshes it).
A transcript of many small messages is the worst case for memory: every
message is a dict of two strings. Ours (a clean install in bench/.ours-venv,
with and without the [fast] extra) and the published 0.1.0 (bench/.published-venv)
each run the same files, alternately; the figure is the peak RSS of the whole
process (ru_maxrss), the median of the rounds. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
import workloads  # noqa: E402


def million_step(messages: int) -> dict[str, object]:
    step = workloads.quickstart_step()
    step["inputs"] = {"system_prompt": "you are a helpful assistant",  # type: ignore[index]
                      "messages": [{"role": ("user", "assistant")[i % 2], "content": f"m{i}"}
                                   for i in range(messages)]}
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reinstall", action="store_true",
                        help="reinstall this checkout into bench/.ours-venv first")
    args = parser.parse_args()
    ours = run.OURS_VENV / "bin" / "rerun"
    if not ours.exists() or args.reinstall:
        ours = run.install_ours(quiet=True).with_name("rerun")
    published = run.published_python(quiet=True).with_name("rerun")
    work = Path(tempfile.mkdtemp(prefix="rerun-memory-"))
    try:
        step = million_step(args.messages)
        step_path, actual_path = work / "step.json", work / "actual.json"
        size = workloads.write_json(step_path, step)
        workloads.write_json(actual_path, workloads.actual_for(step))
        del step
        bundle_path = work / "bundle.rr"
        rows = []
        sides = {"ours": ([str(ours)], {}),
                 "ours, stdlib only": ([str(ours)], {"RERUN_NO_ACCELERATOR": "1"}),
                 "published 0.1.0": ([str(published)], {})}
        for op in ("capture", "verify"):
            figures: dict[str, list[float]] = {name: [] for name in sides}
            seconds: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(args.rounds):
                for name, (cli, env) in sides.items():
                    argv = ([*cli, "capture", str(step_path), "-o", str(bundle_path)]
                            if op == "capture"
                            else [*cli, "verify", str(bundle_path), str(actual_path)])
                    if op == "capture":
                        bundle_path.unlink(missing_ok=True)
                    start = time.perf_counter()
                    figures[name].append(run.peak_rss_mb(["env", *_env(env), *argv]))
                    seconds[name].append(time.perf_counter() - start)
            rows.append((op, {name: statistics.median(v) for name, v in figures.items()},
                         {name: statistics.median(v) for name, v in seconds.items()}))
        print(f"step of {args.messages:,} messages, {size / 1e6:.1f} MB; {run.machine_line()}; "
              f"load {Path('/proc/loadavg').read_text().split()[:3]}\n")
        names = list(sides)
        print("| operation | " + " | ".join(f"{n} peak RSS" for n in names) + " | ours/published |")
        print("|---|" + "---:|" * (len(names) + 1))
        for op, mb, _ in rows:
            cells = " | ".join(f"{mb[n]:.0f} MB" for n in names)
            print(f"| rerun {op} | {cells} | {mb['ours'] / mb['published 0.1.0']:.2f}x |")
        print()
        for op, _, secs in rows:
            print(f"rerun {op} wall s: " + json.dumps({n: round(s, 2) for n, s in secs.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _env(env: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in env.items()]


if __name__ == "__main__":
    raise SystemExit(main())
