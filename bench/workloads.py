"""Deterministic benchmark inputs: step records, actual records and bundle corpora.

Both implementations must read the very same inputs, so everything here is
generated from fixed seeds and written to files once; the workers only read.
Runs under either interpreter (ours or the published package's venv) because
it imports nothing from ``agent_rerun``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

#: The fixed signing key of the conformance vectors (32 bytes of 0x01).
SIGNING_KEY = bytes([1]) * 32

#: Character pools for "mixed scripts and emoji" text; weights keep UTF-8 near 1.5 bytes/char.
_POOLS: list[tuple[str, int]] = [
    ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?-'\"()", 62),
    ("абвгдеёжзийклмнопрстуфхцчшщъыьэюя АБВГДЕЖЗ", 12),
    ("αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔΕΖΗΘ", 6),
    ("日本語の文章と中文句子和한국어문장", 6),
    ("مرحبا بالعالم هذا نص عربي", 4),
    ("नमस्ते दुनिया यह हिंदी पाठ है", 4),
    ("😀😃🎉🚀🔥👍🏽🧪📦🌍✨", 3),
    ("\n\t\\/\u2028\u00a0\u00e9\u00fc\u00df", 3),
]


def _text(rng: random.Random, length: int) -> str:
    pools = [p for p, _ in _POOLS]
    weights = [w for _, w in _POOLS]
    out: list[str] = []
    while len(out) < length:
        pool = rng.choices(pools, weights)[0]
        run = rng.randint(3, 24)
        out.extend(rng.choice(pool) for _ in range(run))
    return "".join(out[:length])


def quickstart_step() -> dict[str, Any]:
    """The published README's quickstart step."""
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
        "sampling": {"temperature": 0, "top_p": 1, "seed": 42},
        "inputs": {
            "system_prompt": "you are a helpful assistant",
            "messages": [{"role": "user", "content": "say hi"}],
        },
        "runtime": {"class": "cloud"},
        "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
        "tolerance": {"level": "byte"},
    }


def large_step(messages: int, chars: int, seed: int) -> dict[str, Any]:
    """A step with ``messages`` messages of ``chars`` characters of mixed scripts and emoji."""
    rng = random.Random(seed)
    roles = ("user", "assistant")
    # Up to 256 distinct texts, reused (with the index appended) for bigger steps:
    # generating 100 MB character by character would dominate the benchmark's run time.
    texts = [_text(rng, chars) for _ in range(min(messages, 256))]
    msgs = [
        {"role": roles[i % 2],
         "content": texts[i] if i < len(texts) else f"{texts[i % len(texts)]} #{i}",
         "meta": {"index": i, "tokens": rng.randint(100, 900), "score": round(rng.random(), 4)}}
        for i in range(messages)
    ]
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7", "fingerprint": "fp_bench"},
        "sampling": {"temperature": 0.7, "top_p": 0.95, "seed": seed, "max_tokens": 4096},
        "inputs": {"system_prompt": _text(rng, 400), "messages": msgs,
                   "tools": [{"name": "search", "parameters": {"q": {"type": "string"}}}]},
        "runtime": {"class": "cloud", "tool_versions": {"python": "3.11"}},
        "expected": {"transcript": {"messages": [{"role": "assistant",
                                                  "content": _text(rng, chars)}]}},
        "tolerance": {"level": "byte"},
    }


def semantic_step(dims: int, seed: int) -> tuple[dict[str, Any], str]:
    """A semantic-tolerance step with ``dims``-dim embeddings, and the actual's embedding."""
    import base64
    import struct

    rng = random.Random(seed)
    expected = [rng.uniform(-1, 1) for _ in range(dims)]
    actual = [x + rng.uniform(-0.05, 0.05) for x in expected]

    def pack(values: list[float]) -> str:
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")

    step = quickstart_step()
    step["expected"] = {"semantic_embedding": pack(expected)}
    step["tolerance"] = {"level": "semantic", "threshold": 0.9}
    return step, pack(actual)


def actual_for(step: dict[str, Any], embedding: str | None = None) -> dict[str, Any]:
    """The actual record of an honest replay of ``step``."""
    output: dict[str, Any] = {}
    if embedding is not None:
        output["embedding"] = embedding
    elif "transcript" in step["expected"]:
        output["transcript"] = step["expected"]["transcript"]
    return {"inputs": dict(step["inputs"]), "output": output}


def corpus_step(index: int) -> dict[str, Any]:
    """The ``index``-th small step of the 1,000-pair corpus (all distinct)."""
    rng = random.Random(10_000 + index)
    step = quickstart_step()
    step["inputs"]["messages"] = [
        {"role": "user", "content": f"question {index}: " + _text(rng, 300)},
        {"role": "assistant", "content": _text(rng, 300)},
        {"role": "user", "content": "and then?"},
    ]
    step["expected"]["transcript"] = {"messages": [{"role": "assistant",
                                                    "content": _text(rng, 200)}]}
    return step


def write_json(path: Path, value: Any) -> int:
    """Write ``value`` as UTF-8 JSON (not canonical: actual records come from anywhere)."""
    data = json.dumps(value, ensure_ascii=False).encode("utf-8")
    path.write_bytes(data)
    return len(data)
