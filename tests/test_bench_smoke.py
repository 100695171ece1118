"""The benchmark script runs end to end on a tiny workload (no timing is asserted)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
WORKLOADS = {"1 quickstart step", "2 rerun verify, quickstart"}


def _bench(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), "--tiny", "--in-place", "--no-plot", "--no-hsm", "--quiet",
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )


def _rows(out: Path) -> list[dict[str, object]]:
    results = json.loads((out / "results.json").read_text())
    assert results["tiny"] is True
    assert (out / "results.md").read_text().count("\n|") >= len(results["rows"])
    return results["rows"]  # type: ignore[no-any-return]


def test_ours_only(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--ours-only")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(tmp_path)
    assert {str(row["workload"]) for row in rows} >= WORKLOADS
    assert all(row["published"] is None and float(row["ours"]) > 0 for row in rows)
    assert not [row for row in rows if row["note"]], rows  # every verify verified


def test_against_the_published_package(tmp_path: Path) -> None:
    done = _bench(tmp_path)
    if done.returncode != 0 and "pip" in done.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"published agent-rerun could not be installed from PyPI: "
                    f"{done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(tmp_path)
    assert all(row["published"] is not None for row in rows)
    # Both implementations agree on every output (capture bytes, verify verdicts).
    assert not [row for row in rows if row["note"]], rows


def test_cosine_bench_runs_and_agrees_with_the_published_package() -> None:
    """bench/cosine.py checks both cosines give the same double before timing them."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "cosine.py"), "--dims", "16",
                           "--rounds", "1"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    if done.returncode != 0 and "pip" in done.stderr and os.environ.get("CI") != "true":
        pytest.skip("published agent-rerun could not be installed from PyPI")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| cosine")]
    assert len(rows) == 2 and "identical" in rows[1], done.stdout


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def bench_copy(tmp_path: Path) -> Path:
    """bench/ with its committed results, copied: the run under test cannot touch
    the real ones even when it misbehaves (as the old default did)."""
    copy = tmp_path / "bench"
    copy.mkdir()
    for script in (ROOT / "bench").glob("*.py"):
        shutil.copy2(script, copy)
    shutil.copytree(ROOT / "bench" / "results", copy / "results")
    return copy


def test_tiny_never_writes_the_committed_results(bench_copy: Path) -> None:
    committed = _digests(bench_copy / "results")
    run = [sys.executable, str(bench_copy / "run.py"), "--tiny", "--in-place", "--no-plot",
           "--no-hsm", "--quiet", "--ours-only"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _digests(bench_copy / "results") == committed
    assert json.loads((bench_copy / "results-tiny" / "results.json").read_text())["tiny"]
    # Not even when asked to: tiny numbers are no benchmark result.
    done = subprocess.run([*run, "--out", str(bench_copy / "results")], capture_output=True,
                          text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 2 and "never go to" in done.stderr, done.stderr[-2000:]
    assert _digests(bench_copy / "results") == committed


def test_tiny_results_folder_is_gitignored() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "bench/results-tiny/results.json"],
                          cwd=ROOT, check=False)
    assert done.returncode == 0, "bench/results-tiny/ must be in .gitignore"


def test_trust_scale_tiny(tmp_path: Path) -> None:
    """bench/trust_scale.py runs end to end; every variant's batch verified (it raises if not)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "trust_scale.py"), "--tiny", "--in-place",
         "--ours-only", "--quiet", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "trust_scale.json").read_text())
    assert results["tiny"] is True
    variants = [row["variant"] for row in results["rows"]]
    assert variants[0] == "no trust settings" and len(variants) >= 2
    assert [count for count, _ in results["parse"]] == [12, 25, 50]


def test_memory_bench_runs_on_a_small_step() -> None:
    """bench/memory.py end to end (ours only, a thousand messages): every case prints a peak."""
    script = ROOT / "bench" / "memory.py"
    done = subprocess.run([sys.executable, str(script), "--messages", "1000", "--ours-only"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    for case in ("library capture", "library verify", "cli capture", "cli verify"):
        assert case in done.stdout, done.stdout


def test_only_runs_the_named_workloads(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--ours-only", "--only", "quickstart,cold")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {str(row["workload"]) for row in _rows(tmp_path)} == WORKLOADS


def test_only_never_writes_the_committed_results(bench_copy: Path) -> None:
    before = _digests(bench_copy / "results")
    done = subprocess.run([sys.executable, str(bench_copy / "run.py"), "--in-place", "--no-plot",
                           "--quiet", "--ours-only", "--only", "quickstart"],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 2 and "--only needs --out" in done.stderr
    assert _digests(bench_copy / "results") == before
