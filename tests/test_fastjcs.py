"""The orjson accelerator (``agent-rerun[fast]``) must never change a byte.

A differential against ``rfc8785`` on values large enough to reach orjson,
weighted towards exactly the cases where orjson's output differs from JCS:
integral floats, floats Python writes with an exponent, and key sets mixing
U+E000..U+FFFF with characters beyond the BMP. Every test runs twice: with the
accelerator, and with it switched off (the standard-library encoder alone).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import as_doubles

from agent_rerun import canonical, fastjcs
from agent_rerun.canonical import checked_sha256_of_jcs, jcs_bytes, sha256_hex, sha256_of_jcs
from agent_rerun.errors import ValidationError

SAFE = 2**53 - 1

try:
    import orjson  # noqa: F401

    HAVE_ORJSON = True
except ImportError:
    HAVE_ORJSON = False

needs_orjson = pytest.mark.skipif(
    not HAVE_ORJSON and os.environ.get("CI") != "true",
    reason="orjson (the [fast] extra) is not installed; ./dev.sh test installs it")


@pytest.fixture(params=["orjson", "stdlib"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the accelerator (when installed) and with it switched off."""
    if request.param == "stdlib":
        monkeypatch.setattr(fastjcs, "_dumps", False)
    elif not HAVE_ORJSON and os.environ.get("CI") != "true":
        pytest.skip("orjson (the [fast] extra) is not installed")
    else:
        monkeypatch.setattr(fastjcs, "_dumps", None)  # looked up afresh
        monkeypatch.setattr(fastjcs, "_found", None)
        fastjcs.preload()  # as a batch does: small values then go to orjson too
    yield request.param


#: The floats orjson writes differently from JCS, and neighbours that it does not.
_HARD_FLOATS = st.sampled_from([
    0.0, -0.0, 1.0, -1.0, 2.0, 100.0, 2.0**53, 2.0**53 + 2, 1e15, 1e16, 1e17, 1e20, 1e21, 1e22,
    1e-7, 1e-6, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308, 1.5e300, -2.5e-10,
    123456789012345680000.0, 0.1, 0.5, 123.456, 0.000123, 333333333.33333329,
])
_FLOATS = st.one_of(_HARD_FLOATS, _HARD_FLOATS, st.floats(allow_nan=False, allow_infinity=False))
#: Key characters: the U+E000..U+FFFF block and astral characters (which sort the
#: other way round in UTF-16), escapes, and plain letters.
_KEY_CHARS = st.sampled_from(["\ue000", "\uf8ff", "\ufb01", "\ufeff", "\uffff", "\U00010000",
                              "\U0001f600", "\U0010ffff", "\ud7ff", "é", "a", "b", "Z", '"',
                              "\n", "\x00"])
_KEYS = st.one_of(st.text(_KEY_CHARS, min_size=1, max_size=4), st.text(max_size=6))
_TEXT = st.one_of(st.text(max_size=16), st.text(_KEY_CHARS, max_size=8))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-SAFE, SAFE),
                     st.integers(-(2**64), 2**64), _FLOATS, _FLOATS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_KEYS, inner, max_size=6)),
    max_leaves=30,
)

#: Enough text that the value is handed to orjson (when nothing else stops it).
_PAD = "padding ✓ 😀 " * (fastjcs.MIN_CHARS // 10)


def _padded(value: Any) -> dict[str, Any]:
    return {"pad": _PAD, "value": value, "more": [_PAD, {"x": value}]}


def _reference(value: Any) -> bytes | type[Exception]:
    try:  # integers JCS writes as digits of a double are given to rfc8785 as that double
        return rfc8785.dumps(as_doubles(value))
    except Exception as exc:
        return type(exc)


def _check(value: Any) -> None:
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert jcs_bytes(value) == expected
        assert checked_sha256_of_jcs(value, "$") == sha256_hex(expected)
        accelerated = fastjcs.plain_jcs(value)
        assert accelerated is None or accelerated == expected
    else:
        # Outside the domain (a huge integer, say): refused exactly as before.
        with pytest.raises(expected):
            jcs_bytes(value)


#: The ``mode`` fixture sets the switch once for all of a test's examples, as intended.
_ONE_MODE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=400, deadline=None, suppress_health_check=_ONE_MODE)
@given(value=_JSON)
def test_large_values_match_rfc8785(mode: str, value: Any) -> None:
    _check(_padded(value))


@settings(max_examples=400, deadline=None, suppress_health_check=_ONE_MODE)
@given(value=_JSON)
def test_small_values_match_rfc8785(mode: str, value: Any) -> None:
    _check(value)
    _check([value, {"k": value}])


@settings(max_examples=300, deadline=None, suppress_health_check=_ONE_MODE)
@given(keys=st.lists(_KEYS, min_size=2, max_size=8, unique=True))
def test_key_order_is_utf16_order_on_the_fast_path(mode: str, keys: list[str]) -> None:
    _check(_padded({key: index for index, key in enumerate(keys)}))


@settings(max_examples=200, deadline=None, suppress_health_check=_ONE_MODE)
@given(number=_FLOATS)
def test_floats_match_rfc8785_on_the_fast_path(mode: str, number: float) -> None:
    _check(_padded([number, {"n": number}]))


@pytest.mark.parametrize("bad", ["\ud800", float("nan"), float("inf"), 2**53 + 1, (1, 2)])
def test_values_outside_the_domain_are_refused_as_before(mode: str, bad: Any) -> None:
    value = _padded({"messages": [{"content": bad}]})
    with pytest.raises(ValidationError, match="messages"):
        checked_sha256_of_jcs(value, "messages")


@needs_orjson
def test_the_accelerator_is_used_for_a_large_plain_value(mode: str) -> None:
    value = _padded({"role": "user", "score": 0.25, "index": 7, "ok": True, "none": None})
    got = fastjcs.plain_jcs(value)
    if mode == "orjson":
        assert got == rfc8785.dumps(value)
    else:
        assert got is None


@needs_orjson
@pytest.mark.parametrize("value", [
    {"f": 1.0}, {"f": 1e16}, {"f": 1e-7}, {"\ue000": 1, "\U0001f600": 2}, {"n": 2**53},
    {"t": (1,)}, {"s": "\udc00"},
])
def test_the_accelerator_declines_what_orjson_writes_differently(value: dict[str, Any]) -> None:
    assert fastjcs.plain_jcs(_padded(value)) is None


@needs_orjson
def test_once_loaded_small_values_go_to_orjson(mode: str) -> None:
    value = {"role": "user", "content": "hi"}
    assert fastjcs.plain_jcs(value) == (rfc8785.dumps(value) if mode == "orjson" else None)


def test_small_values_never_load_orjson() -> None:
    """``rerun verify`` of a small bundle must not pay for importing orjson."""
    code = ("import sys; from agent_rerun import verify, capture; "
            f"r = verify(capture({SAMPLE_STEP!r}), {SAMPLE_ACTUAL!r}); "
            "print(r.verified, 'orjson' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "False"]


def test_the_environment_switch_turns_the_accelerator_off() -> None:
    code = "from agent_rerun import fastjcs; print(fastjcs.available())"
    env = {**os.environ, fastjcs.DISABLE_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)
    assert done.stdout.strip() == "False"


def test_the_package_works_without_orjson() -> None:
    """Without the extra, importing, capturing and verifying large values work unchanged.

    orjson is installed in the test environment, so its absence is simulated by
    making the import fail (``sys.modules['orjson'] = None``), which is what
    Python does for a package that is not there.
    """
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "import agent_rerun, rfc8785\n"
        "from agent_rerun import fastjcs, jcs_bytes\n"
        f"value = {{'pad': 'x' * {fastjcs.MIN_CHARS * 2}, 'f': 0.5, 'k': ['é', 1]}}\n"
        "assert jcs_bytes(value) == rfc8785.dumps(value)\n"
        "print(fastjcs.available(), fastjcs.plain_jcs(value))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "None"]


def test_a_transcript_hashed_in_batches_has_the_hash_of_its_jcs_bytes(mode: str) -> None:
    """The standard-library path hashes as it writes (a batch of chunks at a time);
    enough messages that several batches are hashed."""
    messages = [{"role": ("user", "assistant")[i % 2], "content": f"m{i} é😀", "n": i}
                for i in range(30_000)]
    expected = sha256_hex(rfc8785.dumps(messages))
    assert checked_sha256_of_jcs(messages, "messages") == expected
    assert checked_sha256_of_jcs([messages, {"m": messages}], "x") == sha256_hex(
        rfc8785.dumps([messages, {"m": messages}]))


def _message(index: int, score: float) -> dict[str, Any]:
    return {"role": ("user", "assistant")[index % 2], "content": f"message {index}: " + _PAD[:300],
            "meta": {"index": index, "score": score}}


@needs_orjson
@pytest.mark.parametrize("where", [0, 1, 1500, 2998, 2999])
def test_one_value_orjson_refuses_does_not_keep_the_rest_from_it(
        mode: str, where: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One integral float among thousands of messages (the 10.6 MB benchmark step
    has a ``"score": 1.0``) used to send the whole transcript to our encoder: now
    orjson still writes everything but the message holding it, and the bytes and
    the hash stay exactly rfc8785's."""
    messages = [_message(index, 0.25) for index in range(3000)]
    messages[where]["meta"]["score"] = 1.0
    expected = rfc8785.dumps(messages)
    written = [0]
    if mode == "orjson":
        dumps = fastjcs._load()
        assert dumps is not None

        def counting(value: Any) -> bytes:
            out = dumps(value)
            written[0] += len(out)
            return out

        monkeypatch.setattr(fastjcs, "_dumps", counting)
    assert checked_sha256_of_jcs(messages, "messages", 2) == sha256_hex(expected)
    assert jcs_bytes(messages) == expected
    if mode == "orjson":  # both calls above: all but one message each time, from orjson
        assert written[0] >= 2 * len(expected) * 0.99
    else:
        assert written[0] == 0


class _PieceSizes:
    """Stands in for ``hashlib`` in the encoders: a real SHA-256 that also
    records the size of every piece it is handed."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def sha256(self, data: bytes = b"") -> _RecordingHash:
        recording = _RecordingHash(self.sizes)
        if data:
            recording.update(data)
        return recording


class _RecordingHash:
    def __init__(self, sizes: list[int]) -> None:
        self._hash = hashlib.sha256()
        self._sizes = sizes

    def update(self, data: bytes | memoryview) -> None:
        self._sizes.append(memoryview(data).nbytes)
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _large_value(shape: str) -> Any:
    """About a megabyte of JSON in the shapes capture and verify hash."""
    messages = [_message(index, 0.25) for index in range(3000)]
    if shape.startswith("messages, 1.0 at "):  # one message orjson must not write
        messages[int(shape.rsplit(" ", 1)[1])]["meta"]["score"] = 1.0
    if shape == "transcript":  # the documented transcript shape
        return {"messages": messages}
    if shape == "nested, refused outside":  # a big part inside a container orjson refuses
        return [{"score": 1.0, "parts": messages}]
    if shape == "strings":
        return [message["content"] for message in messages]
    if shape == "numbers":  # no strings at all, and no integral float (orjson takes it)
        return [[(index * 3072 + place) / 7 + 0.5 for place in range(3072)]
                for index in range(30)]
    if shape == "integers, 1.0 last":
        return [*range(200_000), 1.0]
    if shape == "uneven":  # thousands of short messages, then a few long ones
        short = [{"role": "user", "content": f"ok {index}"} for index in range(3000)]
        return short + [{"role": "tool", "content": "x" * 15_000}] * 60
    if shape == "an object of 30,000 members":
        return {"result": {f"field_{index}": f"value {index} ✓" for index in range(30_000)}}
    if shape == "an object of messages":
        return {f"m{index:05d}": message for index, message in enumerate(messages)}
    return messages


@pytest.mark.parametrize("shape", [
    "messages", "messages, 1.0 at 0", "messages, 1.0 at 1500", "messages, 1.0 at 2999",
    "transcript", "nested, refused outside", "strings", "numbers", "integers, 1.0 last",
    "uneven", "an object of 30,000 members", "an object of messages"])
def test_a_large_value_is_hashed_a_piece_at_a_time(
        mode: str, shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """About a megabyte reaches SHA-256 in pieces of at most 128 KiB (glibc's mmap
    threshold), whatever its shape and on every path (orjson whole, orjson around
    a part it refuses, the standard library): one buffer of all of it was mapped
    and page-faulted afresh on every call. The hash is still rfc8785's."""
    value = _large_value(shape)
    expected = rfc8785.dumps(value)
    want = sha256_hex(expected)
    pieces = _PieceSizes()
    monkeypatch.setattr(canonical, "hashlib", pieces)
    monkeypatch.setattr(fastjcs, "hashlib", pieces)
    assert checked_sha256_of_jcs(value, "value", 2) == want
    assert sha256_of_jcs(value) == want
    assert sum(pieces.sizes) == 2 * len(expected)
    assert max(pieces.sizes) <= 128 * 1024, max(pieces.sizes)


_SAFE_ITEM = st.sampled_from([{"a": 0.5, "b": [1, "x"]}, "text é😀", [0.25], 7, None, True])


@settings(max_examples=300, deadline=None, suppress_health_check=_ONE_MODE)
@given(items=st.lists(st.one_of(_SAFE_ITEM, _SAFE_ITEM, _JSON), max_size=12))
def test_lists_mixing_values_orjson_takes_and_refuses_match_rfc8785(
        mode: str, items: list[Any]) -> None:
    """Runs of items orjson takes, split by items it refuses, at every position."""
    _check(_padded(items))
    _check([_PAD, *items, {"x": items}])
