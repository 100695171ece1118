"""Draw verify and capture time against input size from bench/results/results.json.

    python bench/plot.py RESULTS_JSON OUT_PNG

Run by ``run.py`` with the benchmark venv's interpreter, where matplotlib is
installed on demand: matplotlib is never a dependency of agent-rerun itself.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(results_path: str, out_path: str) -> int:
    with open(results_path, encoding="utf-8") as handle:
        results = json.load(handle)
    rows = [row for row in results["rows"]
            if row["metric"].startswith("in-process") and row["workload"].startswith("1 ")]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for axis, op in zip(axes, ("capture", "verify"), strict=False):
        points = sorted((row["size_mb"], row["ours"], row["published"])
                        for row in rows if row["metric"] == f"in-process {op}")
        sizes = [p[0] for p in points]
        axis.plot(sizes, [p[1] for p in points], "o-", label="this agent-rerun")
        if all(p[2] is not None for p in points):
            axis.plot(sizes, [p[2] for p in points], "s--", label="published agent-rerun 0.1.0")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("step record size (MB)")
        axis.set_ylabel("median time per call (ms)")
        axis.set_title(f"in-process {op}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.suptitle(results["machine"], fontsize=8)
    figure.tight_layout()
    figure.savefig(out_path, dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
