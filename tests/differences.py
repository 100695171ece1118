"""Where we differ from each published implementation: the one list.

docs/differences.md shows it as a table (tests/test_differences_doc.py keeps the
two in step); a differential run against a published implementation may only
disagree with us on these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    key: str
    implementation: str  # "agent-rerun 0.1.0" or "TypeScript reference"
    theirs: str
    ours: str
    why: str


PUBLISHED_PY = "agent-rerun 0.1.0"
REFERENCE_TS = "TypeScript reference"

DIFFERENCES: tuple[Difference, ...] = (
    Difference("null-transcript", PUBLISHED_PY,
               "`transcript: null` is absent: a byte step with it is refused, a semantic "
               "bundle omits `transcript_sha256`",
               "null is a value, hashed as the JCS text `null`",
               "the reference does so, and it decides"),
    Difference("integral-integer-fields", PUBLISHED_PY,
               "`seed: 42.0`, `max_tokens: 1e3` refused",
               "accepted, written as 42 and 1000",
               "JSON has one number type; the reference accepts them"),
    Difference("unsafe-integers", PUBLISHED_PY,
               "integers beyond 2^53-1 that JCS writes with other digits (2^53+1, "
               "12345678901234567, 2^60, 10^21) hashed as the double they round to",
               "refused, naming the place",
               "two different IDs or seeds would otherwise hash alike"),
    Difference("unsafe-integers", REFERENCE_TS,
               "such integers read as the nearest double",
               "refused, naming the place",
               "as above: the signed value is not the one read"),
    Difference("strict-base64", PUBLISHED_PY,
               "lenient base64 for keys, signatures and embeddings",
               "canonical base64 only",
               "a re-spelled envelope would be malleable"),
    Difference("small-order-keys", PUBLISHED_PY,
               "small-order public keys reach the signature check",
               "refused first",
               "OpenSSL accepts a forgery under the identity key"),
    Difference("finite-embeddings", PUBLISHED_PY,
               "thresholds outside [-1, 1] and NaN or zero embeddings not refused",
               "refused with their own error codes",
               "no cosine compares them meaningfully"),
    Difference("i-json", PUBLISHED_PY,
               "duplicate keys (last wins), NaN, lone surrogates read from files",
               "refused, naming file and place",
               "another reader would see another document"),
    Difference("unattested-tools", PUBLISHED_PY,
               "a replay that sent tools verifies against a bundle captured without tools",
               "`InputHashMismatch:tools_sha256`",
               "the replay sent inputs the bundle does not attest"),
    Difference("nesting-limit", PUBLISHED_PY,
               "no limit (deep input raises RecursionError)",
               "200 levels, counted from the record's root in library and CLI",
               "an error result, never a crash"),
)
