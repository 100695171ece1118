"""Cosine alone at 3,072 dims: ours against the published agent-rerun 0.1.0, in one process.

    .venv/bin/python bench/cosine.py            # any interpreter: 3.10 to 3.13
    .venv/bin/python bench/cosine.py --dims 384

Both must compute the reference's formula, dot / sqrt(|a|^2 * |b|^2) summed left to
right, so the results are compared bit for bit before anything is timed. The
published ``cosine`` module is plain standard-library Python, so it is loaded from
bench/.published-venv (created by bench/run.py's helper) into this interpreter:
both then run on the same Python, alternately. Times are CPU time of this process
(``time.process_time``), the minimum over rounds, so that other jobs on a shared
machine distort them less than wall time would.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
import timeit
from array import array
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from agent_rerun.embedding import check_embedding, cosine, encode_embedding  # noqa: E402


def published_cosine_module() -> ModuleType:
    import run  # the benchmark's venv helper

    python = run.published_python(quiet=True)
    found = sorted(python.parent.parent.glob("lib/python*/site-packages/agent_rerun/cosine.py"))
    if not found:
        raise SystemExit(f"no agent_rerun/cosine.py under {python.parent.parent}")
    spec = importlib.util.spec_from_file_location("published_cosine", found[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(call: Callable[[], object], rounds: int, number: int) -> float:
    """Microseconds per call: the least CPU time over ``rounds`` runs of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=rounds,
                             timer=time.process_time)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=3072)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    published = published_cosine_module()
    rng = random.Random(3)
    expected = array("f", [rng.uniform(-1, 1) for _ in range(args.dims)])
    replay = array("f", [x + rng.uniform(-0.05, 0.05) for x in expected])
    texts = encode_embedding(expected), encode_embedding(replay)
    lists = expected.tolist(), replay.tolist()
    arrays = check_embedding(texts[0]), check_embedding(texts[1])
    same = array("f", expected)
    assert cosine(*lists) == cosine(*arrays) == published.cosine(*lists), "not the same double"
    assert cosine(expected, same) == published.cosine(lists[0], same.tolist()) == 1.0

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("cosine of two lists", lambda: cosine(*lists), lambda: published.cosine(*lists)),
        ("cosine, identical vectors", lambda: cosine(expected, same),
         lambda: published.cosine(lists[0], lists[0][:])),
        ("decode both + cosine (verify's share)",
         lambda: cosine(check_embedding(texts[0]), check_embedding(texts[1])),
         lambda: published.cosine(published.decode_embedding(texts[0]),
                                  published.decode_embedding(texts[1]))),
    ]
    number = max(1, 600_000 // args.dims)
    print(f"Python {sys.version.split()[0]}, {args.dims} dims, CPU µs per call "
          f"(min of {args.rounds} x {number})")
    print("| case | ours | published 0.1.0 | ours/published |\n|---|---:|---:|---:|")
    for name, ours, theirs in cases:
        mine, their = [], []
        for index in range(args.rounds):  # alternate who goes first
            pair = [(mine, ours), (their, theirs)]
            for sink, call in pair[::-1] if index % 2 else pair:
                sink.append(measure(call, 1, number))
        print(f"| {name} | {min(mine):.0f} µs | {min(their):.0f} µs | "
              f"{min(mine) / min(their):.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
