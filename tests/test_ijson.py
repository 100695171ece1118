"""The I-JSON reader: each refusal names the file and the place; ordinary JSON passes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_rerun import ijson
from agent_rerun.errors import InputError
from agent_rerun.ijson import load_json_file, loads_ijson
from agent_rerun.jsonvalue import MAX_DEPTH


def refused(data: bytes | str, *words: str, name: str = "doc.json") -> str:
    with pytest.raises(InputError) as caught:
        loads_ijson(data, name)
    message = str(caught.value)
    assert message.startswith(name), message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": [1, 2.5, -0, "x", null, true]}', {"a": [1, 2.5, 0, "x", None, True]}),
        ('"\\ud83d\\ude00"', "\U0001f600"),  # an escaped surrogate *pair* is fine
        ("9007199254740991", 2**53 - 1),
        ("-9007199254740991", -(2**53 - 1)),
        ("1e308", 1e308),
        ("1E-400", 0.0),  # underflow to zero is exact enough to agree everywhere
        ('{"a": {"a": 1}}', {"a": {"a": 1}}),  # the same key at different levels
        ("  [ ]\n", []),
    ],
)
def test_ordinary_json_is_accepted(text: str, value: Any) -> None:
    assert loads_ijson(text.encode()) == value
    assert loads_ijson(text) == value


@pytest.mark.parametrize(
    ("text", "place", "words"),
    [
        ('{"a": 1, "a": 2}', "$.a", ("duplicate", "'a'")),
        ('{"x": {"b": 1, "c": 2, "b": 1}}', "$.x.b", ("duplicate",)),
        ('[{"k": 0}, {"k": 1, "k": 1}]', "$[1].k", ("duplicate",)),
        ('{"t": NaN}', "$.t", ("NaN",)),
        ('{"t": [Infinity]}', "$.t[0]", ("Infinity",)),
        ('{"t": -Infinity}', "$.t", ("Infinity",)),
        ('{"t": 1e400}', "$.t", ("infinity",)),
        ('{"t": -1e400}', "$.t", ("infinity",)),
        ('{"seed": 9007199254740993}', "$.seed", ("9007199254740993",)),
        ('{"seed": 1152921504606846976}', "$.seed", ("1152921504606846976",)),
        ('{"seed": -12345678901234567}', "$.seed", ("12345678901234567",)),
        ('{"seed": 123456789012345678901234567890}', "$.seed", ()),
        ('{"s": "a\\ud800b"}', "$.s", ("surrogate",)),
        ('{"s": "\\udfff"}', "$.s", ("surrogate",)),
        ('{"s": "\\ude00\\ud83d"}', "$.s", ("surrogate",)),  # a pair in the wrong order
        ('{"\\ud800": 1}', "$", ("surrogate",)),
    ],
)
def test_ijson_violations_are_refused_with_place(text: str, place: str,
                                                 words: tuple[str, ...]) -> None:
    message = refused(text.encode(), *words)
    assert f"at {place}:" in message


def test_syntax_errors_name_line_and_column() -> None:
    message = refused(b'{\n  "a": 1,\n  "b": \n}', "line 4", "column 1")
    assert "\n" not in message


@pytest.mark.parametrize("data", [b"", b"   ", b"{", b"[1,]", b"{'a': 1}", b"nul", b"1 2"])
def test_malformed_json_is_refused(data: bytes) -> None:
    refused(data)


def test_bom_and_bad_utf8_are_refused() -> None:
    refused(b'\xef\xbb\xbf{"a": 1}', "byte-order mark")
    refused(b'{"a": "\xff"}', "UTF-8", "byte 7")
    refused(b'{"a": "\xed\xa0\x80"}', "UTF-8")  # a surrogate encoded directly in UTF-8


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deep_nesting_is_an_input_error(levels: int) -> None:
    refused(b"[" * levels + b"]" * levels, "nested")
    refused(b'{"a":' * levels + b"1" + b"}" * levels, "nested")


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert loads_ijson(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None


def test_label_is_included() -> None:
    with pytest.raises(InputError, match=r"^step\.json \(step record\): "):
        loads_ijson(b"[", "step.json", "step record")


def test_load_json_file_reads_and_names_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(b'{"a": 1}')
    assert load_json_file(good) == {"a": 1}
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": 1, "a": 1}')
    with pytest.raises(InputError, match=str(bad)):
        load_json_file(bad)
    with pytest.raises(InputError, match="cannot read"):
        load_json_file(tmp_path / "missing.json")
    with pytest.raises(InputError, match="cannot read"):
        load_json_file(tmp_path)  # a directory


def test_load_json_file_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"from": "stdin"}')))
    assert load_json_file("-") == {"from": "stdin"}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{")))
    with pytest.raises(InputError, match=r"^<stdin>"):
        load_json_file("-")


def test_the_domain_walk_holds_a_level_not_every_child() -> None:
    """Checking a 100,000-message transcript allocates next to nothing beside it
    (the walk once queued an entry for every message: ~8 MB here, 80 MB at a million)."""
    import tracemalloc

    from agent_rerun.jsonvalue import check_json_value

    messages = [{"role": "user", "content": f"m{i}", "meta": {"n": i}} for i in range(100_000)]
    tracemalloc.start()
    try:
        check_json_value({"messages": messages}, "$")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000


def test_the_first_fault_named_is_the_one_the_walk_always_named() -> None:
    """Several faults: the walk names the one it named when it queued every child
    (strings of a container first, then its last nested child, depth first)."""
    from agent_rerun.errors import ValidationError
    from agent_rerun.jsonvalue import check_json_value

    value = {"a": [1, {"x": float("nan")}], "b": {"c": 2**60}, "d": [{"e": [float("inf")]}]}
    with pytest.raises(ValidationError) as first:
        check_json_value(value, "$")
    assert first.value.path == "$.d[0].e[0]"
    value["d"] = [{"e": ["ok"]}]
    with pytest.raises(ValidationError) as second:
        check_json_value(value, "$")
    assert second.value.path == "$.b.c"
    value["s"] = "\ud800"
    with pytest.raises(ValidationError) as third:
        check_json_value(value, "$")
    assert third.value.path == "$.s"


def test_text_given_as_str_is_walked_for_raw_surrogates() -> None:
    """Only text decoded from UTF-8 is free of raw lone surrogates; a ``str`` may hold one."""
    assert "at $.s:" in refused('{"s": "a\ud800"}', "surrogate")
    assert "at $:" in refused('{"\udc00": 1}', "surrogate")


_KEYS = st.sampled_from(["a", "b", "é", "\U0001f600", "\ud800", "k\\ud800"])
_LEAVES = st.one_of(
    st.sampled_from(["1", "-0", "2.5", "1e400", "NaN", "9007199254740993", "12345678901234567890",
                     '"x"', '"\\ud800"', '"\\uDC00x"', '"\\ud83d\\ude00"', '"\\\\ud800"',
                     '"\\u00e9"', "null", "true"]),
    st.text(max_size=5).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.text(max_size=5).map(json.dumps))


def _members(draw: st.DrawFn, depth: int) -> str:
    keys = draw(st.lists(_KEYS, max_size=4))  # repeats: duplicate keys
    return ",".join(f"{json.dumps(key)}:{draw(_texts(depth + 1))}" for key in keys)


@st.composite
def _texts(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["leaf", "leaf", "list", "object", "deep"]) if depth < 4
                else st.just("leaf"))
    if kind == "leaf":
        return draw(_LEAVES)
    if kind == "list":
        items = draw(st.lists(_texts(depth + 1), max_size=4))
        return "[" + ",".join(items) + "]"
    if kind == "object":
        return "{" + _members(draw, depth) + "}"
    levels = draw(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 2))  # around the limit, split in two
    inner = draw(st.integers(0, levels))
    return "[" * inner + '{"a":' * (levels - inner) + draw(_LEAVES) + "}" * (
        levels - inner) + "]" * inner


def _outcome(data: bytes) -> Any:
    try:
        return ("value", json.dumps(loads_ijson(data), sort_keys=True))
    except InputError as exc:
        return ("refused", str(exc))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts())
def test_skipping_the_walk_never_changes_what_is_read_or_refused(text: str) -> None:
    """The reader skips the domain walk when the text proves it would find
    nothing; it must read and refuse, with the same message, as if it always walked."""
    data = text.encode("utf-8", "surrogatepass")
    skipped = _outcome(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ijson, "_nothing_to_walk_for", lambda text: False)
        walked = _outcome(data)
    assert skipped == walked
