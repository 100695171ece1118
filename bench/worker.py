"""Times in-process ``capture`` / ``verify`` for whichever ``agent_rerun`` its interpreter has.

Started once per implementation by ``run.py`` (ours from the project venv, the
published 0.1.0 from ``bench/.published-venv``) and driven over stdin/stdout
with one JSON object per line, so both run alternately on the same inputs.
It lives outside the package and is run as a script, so ``sys.path`` holds
only this folder and the interpreter's own site-packages.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import time
from typing import Any

import agent_rerun
from agent_rerun import CaptureOptions, capture, cosine, decode_embedding, jcs_bytes, verify

SIGNING_KEY = bytes([1]) * 32


def _load(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class Worker:
    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.options = CaptureOptions(signing_key=SIGNING_KEY)

    def load(self, name: str, step: str, bundle: str, actual: str) -> dict[str, Any]:
        """Remember the files only: every timed call gets freshly parsed objects."""
        self.cases[name] = {"step": step, "bundle": bundle, "actual": actual}
        return {}

    def time(self, name: str, op: str, inner: int) -> dict[str, Any]:
        """Seconds per call, averaged over ``inner`` calls, each on freshly parsed inputs.

        A real verify sees objects just read from files. Calling again and again
        on the same objects flatters any code that caches something inside them
        (a ``str`` keeps its UTF-8 once asked for it, and orjson asks), so each
        call gets objects parsed anew by the standard library, outside the clock,
        for both implementations alike.
        """
        case = self.cases[name]
        if op == "capture":
            step_path, options = case["step"], self.options

            def fresh() -> Any:
                return (_load(step_path),)

            def call(step: Any) -> Any:
                return capture(step, options)
        elif op == "cosine":  # the similarity alone, on vectors decoded beforehand
            bundle_path, actual_path = case["bundle"], case["actual"]

            def fresh() -> Any:
                return (decode_embedding(_load(bundle_path)["expected"]["semantic_embedding"]),
                        decode_embedding(_load(actual_path)["output"]["embedding"]))

            def call(expected: Any, got: Any = None) -> Any:
                return cosine(expected, got)
        else:
            bundle_path, actual_path = case["bundle"], case["actual"]

            def fresh() -> Any:
                return _load(bundle_path), _load(actual_path)

            def call(bundle: Any, actual: Any = None) -> Any:
                return verify(bundle, actual)

        # Warm up first: the interpreter's specialisation and the allocator's
        # pools otherwise favour whichever workload happened to run before.
        for _ in range(max(3, inner)):
            call(*fresh())
        seconds = 0.0
        for _ in range(inner):
            args = fresh()
            gc.collect()
            start = time.perf_counter()
            out = call(*args)
            seconds += time.perf_counter() - start
            del args
        seconds /= inner
        if op == "capture":
            check = hashlib.sha256(jcs_bytes(out)).hexdigest()
        elif op == "cosine":
            check = repr(out)  # both follow the reference's formula: the same double
        else:
            check = f"verified={out.verified} errors={out.errors}"
        return {"seconds": seconds, "check": check}

    def version(self) -> dict[str, Any]:
        from importlib.util import find_spec

        # Only whether orjson could be used: importing it here would change what
        # the timed calls see (it loads on the first large value by itself).
        has_accelerator = find_spec("agent_rerun.fastjcs") is not None
        return {"version": getattr(agent_rerun, "__version__", "0.1.0"),
                "file": agent_rerun.__file__,
                "orjson": has_accelerator and find_spec("orjson") is not None}


def main() -> None:
    worker = Worker()
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop("cmd")
        reply = getattr(worker, command)(**request)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
