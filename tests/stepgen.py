"""A seeded generator of step records and their replays, for the differential test.

Most steps are valid v0.1 steps that every implementation should capture to the
same bytes: unicode beyond the BMP in strings and keys (so UTF-16 key order
matters), every escape JCS writes, numbers at each boundary of the number
domain, optional fields present and absent, tools, and all three tolerance
levels. About a third carry exactly one *hazard*: an input on which the
implementations are known to part ways (a documented difference), or one that
every implementation must refuse. One hazard per step keeps each disagreement
attributable to a single cause.

Everything is a pure function of the seed; the steps travel as JSON text (the
published package runs in another interpreter), and both sides read that text
with the standard library's ``json``, so both are given the same Python values.
"""

from __future__ import annotations

import base64
import json
import random
import struct
from dataclasses import dataclass, field
from typing import Any

#: Strings JCS must escape, or must not: controls, quotes, the JS line
#: separators, a BOM, the last BMP code points, surrogate pairs, combining marks.
TRICKY_STRINGS = (
    "", "hi", "say \"hi\"", "back\\slash", "/slash/", "tab\there", "line\nbreak",
    "\r\n", "\b\f", "\x00", "\x01\x1f", "\x7f", "\u0080", "\u00e9t\u00e9",
    "\u2028\u2029", "\ufeffbom", "\ud7ff", "\ue000", "\uffff", "\U00010000",
    "\U0001f600 grin", "\U0001f44d\U0001f3fd", "\U0010ffff", "e\u0301", "\u05e9\u05dc\u05d5\u05dd",
    "\u65e5\u672c\u8a9e", "\U0001d11e clef", "a\u0000b",
)
#: Keys chosen so that UTF-16 order and code point order differ (U+E000..U+FFFF sort
#: after surrogate pairs in UTF-16, before them by code point).
TRICKY_KEYS = (
    "a", "b", "A", "_", "role", "content", "", " ", "\u00e9", "\ue000", "\uffff",
    "\U00010000", "\U0001f511", "\U0010ffff", "10", "1", "a\u0000", "\u2028",
)
#: Integers inside the number domain, many right at its edges.
SAFE_INTEGERS = (
    0, 1, -1, 42, 255, 2**31 - 1, -(2**31), 2**32, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53),
    10**16, -(10**16), 1152921504606847000, 10**20, 123456789012345680,
)
#: Integers outside it: a float64 reader changes them, or JCS writes other digits.
UNSAFE_INTEGERS = (2**53 + 1, -(2**53 + 1), 12345678901234567, 2**60, 10**21, 2**64 + 1)
#: Finite floats where number formatting is hard.
TRICKY_FLOATS = (
    0.0, -0.0, 0.1, 0.5, 1.5, -2.25, 0.30000000000000004, 1 / 3, 1e-7, 1e-6, 1.5e-7,
    123e-20, 1e16, 1e20, 1e21, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
    9007199254740992.0, 9007199254740994.0, 2.0**60, 4.35, 0.000001, 1e300, -1e-300,
    333333333.3333333, 1e15 + 0.3,
)

#: The documented differences (tests/differences.py) a hazard may trigger, and
#: the hazards that every implementation refuses ("refused").
HAZARDS = (
    "null-transcript", "integral-integer-fields", "unsafe-integers", "nesting-limit",
    "finite-embeddings", "strict-base64", "refused",
)


@dataclass
class Case:
    """One generated step, the honest replay, and replays that must fail."""

    index: int
    step: Any
    actuals: list[Any]
    hazard: str | None = None
    notes: list[str] = field(default_factory=list)

    def step_text(self) -> str:
        return json.dumps(self.step, ensure_ascii=self.index % 2 == 0)

    def actual_texts(self) -> list[str]:
        return [json.dumps(actual, ensure_ascii=self.index % 3 == 0) for actual in self.actuals]


class StepGenerator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # ------------------------------------------------------------ values

    def text(self) -> str:
        rng = self.rng
        parts = [rng.choice(TRICKY_STRINGS) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.5:
            parts.append("".join(chr(rng.choice((rng.randint(0x20, 0x7e), rng.randint(0xa0, 0xd7ff),
                                                 rng.randint(0xe000, 0xfffd),
                                                 rng.randint(0x10000, 0x10ffff))))
                                 for _ in range(rng.randint(1, 12))))
        return "".join(parts)

    def key(self) -> str:
        rng = self.rng
        return rng.choice(TRICKY_KEYS) if rng.random() < 0.7 else self.text()

    def number(self) -> int | float:
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:
            return rng.choice(SAFE_INTEGERS)
        if pick < 0.6:
            return rng.choice(TRICKY_FLOATS)
        if pick < 0.8:
            return rng.randint(-(2**53 - 1), 2**53 - 1)
        # A random finite double from random bits: every exponent, subnormals included.
        while True:
            value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if value == value and abs(value) != float("inf"):
                return value

    def value(self, depth: int = 0) -> Any:
        rng = self.rng
        kind = rng.random() if depth < 4 else rng.random() * 0.6
        if kind < 0.2:
            return self.text()
        if kind < 0.4:
            return self.number()
        if kind < 0.5:
            return rng.choice((True, False, None))
        if kind < 0.75:
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {self.key(): self.value(depth + 1) for _ in range(rng.randint(0, 4))}

    def message(self) -> dict[str, Any]:
        rng = self.rng
        message: dict[str, Any] = {"role": rng.choice(("user", "assistant", "system", "tool")),
                                   "content": self.text()}
        for _ in range(rng.randint(0, 2)):
            message[self.key()] = self.value(1)
        return message

    def tool(self) -> dict[str, Any]:
        return {"name": self.text() or "t", "parameters": {self.key(): self.value(2)
                                                          for _ in range(self.rng.randint(0, 3))}}

    def embedding(self, dims: int) -> list[float]:
        values = [self.rng.uniform(-1, 1) for _ in range(dims)]
        return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *values)))

    # ------------------------------------------------------------ steps

    def step(self) -> dict[str, Any]:
        rng = self.rng
        model: dict[str, Any] = {"vendor": self.text() or "v", "id": self.text() or "m"}
        if rng.random() < 0.5:
            model["fingerprint"] = self.text()
        sampling: dict[str, Any] = {"temperature": rng.choice((0, 1, 0.7, 2, self.number())),
                                    "top_p": rng.choice((1, 0.9, 0.95, self.number()))}
        if rng.random() < 0.6:
            sampling["seed"] = rng.choice((42, 0, -7, 2**53 - 1, -(2**53 - 1), 10**16,
                                           rng.randint(-(2**53 - 1), 2**53 - 1)))
        if rng.random() < 0.4:
            sampling["max_tokens"] = rng.choice((1, 64, 4096, 2**31 - 1, 2**53 - 1))
        inputs: dict[str, Any] = {"system_prompt": self.text(),
                                  "messages": [self.message() for _ in range(rng.randint(0, 4))]}
        if rng.random() < 0.4:
            inputs["tools"] = [self.tool() for _ in range(rng.randint(0, 3))]
        runtime: dict[str, Any] = {"class": rng.choice(("cloud", "local-vllm",
                                                        "local-transformers"))}
        if rng.random() < 0.4:
            runtime["tool_versions"] = {self.key(): self.text() for _ in range(rng.randint(0, 3))}
        level = rng.choice(("byte", "byte", "semantic", "semantic", "structural"))
        expected: dict[str, Any] = {}
        tolerance: dict[str, Any] = {"level": level}
        if level == "byte" or rng.random() < 0.3:
            expected["transcript"] = self.transcript()
        if level == "semantic" or (level == "structural" and rng.random() < 0.3):
            expected["semantic_embedding"] = encode(self.embedding(rng.randint(1, 48)))
        if level == "semantic" or rng.random() < 0.2:
            tolerance["threshold"] = rng.choice((0.95, 0.9, 0, -1, 1, 0.5, rng.uniform(-1, 1)))
        return {"model": model, "sampling": sampling, "inputs": inputs, "runtime": runtime,
                "expected": expected, "tolerance": tolerance}

    def transcript(self) -> Any:
        value = self.value()
        while value is None:  # a null transcript is a hazard, added on purpose only
            value = self.value()
        return value

    # ------------------------------------------------------------ hazards

    def add_hazard(self, step: dict[str, Any], hazard: str) -> None:
        rng = self.rng
        if hazard == "null-transcript":
            step["expected"]["transcript"] = None
            if rng.random() < 0.5:
                step["tolerance"] = {"level": "byte"}
                step["expected"].pop("semantic_embedding", None)
            else:
                step["tolerance"] = {"level": "semantic", "threshold": 0.9}
                step["expected"]["semantic_embedding"] = encode(self.embedding(8))
        elif hazard == "integral-integer-fields":
            name = rng.choice(("seed", "max_tokens"))
            step["sampling"][name] = rng.choice((42.0, 1e3, 4096.0, 1.0, 7e1))
        elif hazard == "unsafe-integers":
            number = rng.choice(UNSAFE_INTEGERS)
            place = rng.choice(("seed", "temperature", "message", "tool", "transcript"))
            if place in ("seed", "temperature"):
                step["sampling"][place] = abs(number) if place == "seed" else number
            elif place == "message":
                step["inputs"]["messages"].append({"role": "user", "content": "n", "id": number})
            elif place == "tool":
                step["inputs"]["tools"] = [{"name": "t", "parameters": {"max": number}}]
            else:
                step["expected"]["transcript"] = {"n": [number]}
                if step["tolerance"]["level"] == "structural":
                    step["tolerance"] = {"level": "byte"}
        elif hazard == "nesting-limit":
            nested: Any = "leaf"
            for _ in range(rng.randint(199, 260)):
                nested = [nested]
            step["inputs"]["messages"] = nested
        elif hazard == "finite-embeddings":
            if rng.random() < 0.5:
                step["tolerance"] = {"level": "semantic",
                                     "threshold": rng.choice((1.5, -1.01, 2, 100))}
                step["expected"]["semantic_embedding"] = encode(self.embedding(4))
            else:
                step["tolerance"] = {"level": "semantic", "threshold": 0.9}
                step["expected"]["semantic_embedding"] = encode([0.0] * rng.randint(1, 8))
        elif hazard == "strict-base64":
            step["tolerance"] = {"level": "semantic", "threshold": 0.9}
            step["expected"]["semantic_embedding"] = respell(encode(self.embedding(
                rng.choice((1, 2, 4, 5)))))  # lengths whose base64 has unused bits
        elif hazard == "refused":
            self._invalid(step)
        else:
            raise AssertionError(hazard)

    def _invalid(self, step: dict[str, Any]) -> None:
        """Break the step so that every implementation must refuse it."""
        rng = self.rng
        fault = rng.randrange(9)
        if fault == 0:
            step["sampling"]["seed"] = 42.5
        elif fault == 1:
            step["sampling"]["temperature"] = True
        elif fault == 2:
            step["sampling"]["max_tokens"] = rng.choice((0, -1))
        elif fault == 3:
            step["model"]["extra"] = "x"
        elif fault == 4:
            step["runtime"]["class"] = "edge"
        elif fault == 5:
            step["inputs"]["system_prompt"] = "lone \ud800 surrogate"
        elif fault == 6:
            step["tolerance"] = {"level": "semantic"}
            step["expected"]["semantic_embedding"] = encode(self.embedding(4))
        elif fault == 7:
            step["model"]["id"] = ""
        else:
            step["tolerance"] = {"level": "byte"}
            step["expected"].pop("transcript", None)

    # ------------------------------------------------------------ replays

    def actuals(self, step: dict[str, Any]) -> list[Any]:
        """The honest replay first, then replays that differ in one attested part."""
        rng = self.rng
        inputs = json.loads(json.dumps(step.get("inputs", {})))
        expected = step.get("expected", {})
        output: dict[str, Any] = {}
        if "transcript" in expected:
            output["transcript"] = expected["transcript"]
        if "semantic_embedding" in expected:
            output["embedding"] = self.replay_embedding(expected["semantic_embedding"])
        honest: dict[str, Any] = {"inputs": inputs, "output": output}
        if rng.random() < 0.3:
            honest["runtime"] = {"fingerprint": rng.choice((
                step.get("model", {}).get("fingerprint", "fp"), "fp_other"))}
        replays = [honest]
        other = json.loads(json.dumps(honest))
        change = rng.randrange(4)
        if change == 0:
            other["inputs"]["system_prompt"] += " "
        elif change == 1:
            other["inputs"]["messages"] = [*other["inputs"].get("messages", []), {"role": "user"}]
        elif change == 2:
            if "tools" in other["inputs"]:
                del other["inputs"]["tools"]
            else:
                other["inputs"]["tools"] = []
        elif "embedding" in output:
            dims = len(base64.b64decode(output["embedding"])) // 4
            other["output"]["embedding"] = encode(self.embedding(dims + rng.choice((0, 0, 1))))
        else:
            other["output"]["transcript"] = [output.get("transcript")]
        replays.append(other)
        return replays

    def replay_embedding(self, expected_text: str) -> str:
        """The expected embedding itself, or a noisy copy of it (above or below threshold)."""
        rng = self.rng
        try:
            raw = base64.b64decode(expected_text)
            values = list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))
        except (ValueError, struct.error):
            return expected_text
        if rng.random() < 0.3 or not values:
            return encode(values) if values else expected_text
        noise = rng.choice((0.001, 0.05, 0.5, 2.0))
        return encode([x + rng.uniform(-noise, noise) for x in values])

    # ------------------------------------------------------------ all of it

    def cases(self, count: int) -> list[Case]:
        cases = []
        for index in range(count):
            step = self.step()
            hazard = None
            if self.rng.random() < 0.35:
                hazard = HAZARDS[index % len(HAZARDS)]
                self.add_hazard(step, hazard)
            cases.append(Case(index, step, self.actuals(step), hazard))
        return cases


def encode(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def respell(text: str) -> str:
    """The same bytes with the unused low bits of the last base64 digit set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if not padding:
        return text
    last = alphabet.index(body[-1])
    return body[:-1] + alphabet[last | 1] + "=" * padding


def generate(seed: int, count: int) -> list[Case]:
    return StepGenerator(seed).cases(count)
