"""RFC 8785 canonical bytes: the shared JCS suite, read through our I-JSON loader.

Every input is parsed with ``loads_ijson`` (the reader the CLI uses), so the
suite also proves that our stricter reader accepts every ordinary document in
it (including weird.json's escaped control characters and surrogate pairs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support import JCS_TESTDATA, require

from agent_rerun.canonical import jcs_bytes, sha256_hex, sha256_of_jcs
from agent_rerun.ijson import loads_ijson

CASES = sorted(p.name for p in (JCS_TESTDATA / "input").glob("*.json"))


def test_suite_present() -> None:
    require(len(CASES) >= 6, f"JCS test data not found at {JCS_TESTDATA}")


@pytest.mark.parametrize("name", CASES)
def test_jcs_suite_case(name: str, jcs_testdata: Path) -> None:
    source = (jcs_testdata / "input" / name).read_bytes()
    expected = (jcs_testdata / "output" / name).read_bytes()
    value = loads_ijson(source, name)
    assert jcs_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ({"b": 1, "a": [1.0, -0.0, 1e21, 1e-7, 0.1]}, b'{"a":[1,0,1e+21,1e-7,0.1],"b":1}'),
        # Keys sort by UTF-16 code units: U+1F600 (D83D DE00) sorts before U+FB33.
        ({"\ufb33": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ufb33":1}'.encode()),
        ("\u2028\x7f\x1f/", b'"\xe2\x80\xa8\x7f\\u001f/"'),
    ],
)
def test_jcs_small_cases(value: object, canonical: bytes) -> None:
    assert jcs_bytes(value) == canonical


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53 + 1, "\ud800"])
def test_jcs_refuses_values_outside_its_domain(value: object) -> None:
    with pytest.raises(ValueError):
        jcs_bytes(value)


def test_hashes_are_over_jcs_bytes() -> None:
    value = {"b": "x", "a": 1}
    digest = hashlib.sha256(b'{"a":1,"b":"x"}').hexdigest()
    assert sha256_of_jcs(value) == f"sha256:{digest}"
    assert sha256_hex(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    # A string is hashed with its quotes: the hash of "hi" is not the hash of hi.
    assert sha256_of_jcs("hi") == sha256_hex(b'"hi"') != sha256_hex(b"hi")
