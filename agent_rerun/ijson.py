"""Reading JSON files as I-JSON (RFC 7493), naming the file and the place of any fault.

Python's json module silently keeps the last of duplicate keys, accepts NaN
and Infinity, and returns lone surrogates and integers a float64 reader would change. Another reader
would see a different document than ours, so each of those is refused here.
"""

from __future__ import annotations

import json
import os
from typing import Any

from agent_rerun.errors import InputError, ValidationError
from agent_rerun.jsonvalue import (
    MARKERS_MADE,
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    OUTSIDE_DOMAIN,
    Marker,
    check_json_value,
    integer_in_domain,
)


def load_json_file(path: str | os.PathLike[str], label: str = "") -> Any:
    """Read and parse ``path`` (``-`` is stdin) as I-JSON; raise ``InputError`` on any fault.

    The bytes are dropped once decoded: a 40 MB step would otherwise be held
    twice (bytes and text) while the parsed tree grows beside them.
    """
    from agent_rerun.inputs import RECORD_LIMIT, read_input, read_stdin

    what = label or "JSON file"
    if path == "-":
        try:
            data = read_stdin(what, limit=RECORD_LIMIT)
        except OSError as exc:
            raise InputError(f"<stdin>: cannot read: {exc.strerror or exc}") from None
        name = "<stdin>"
    else:
        data = read_input(path, what, limit=RECORD_LIMIT)
        name = os.fspath(path)
    where = _what(name, label)
    text = _decode(data, where)
    del data
    return _parse(text, where, from_utf8=True)


def loads_ijson(data: bytes | str, name: str = "<input>", label: str = "") -> Any:
    """Parse bytes or text as I-JSON; errors start with ``name`` and the place."""
    what = _what(name, label)
    if isinstance(data, bytes):
        return _parse(_decode(data, what), what, from_utf8=True)
    return _parse(data, what, from_utf8=False)


def _what(name: str, label: str) -> str:
    return f"{name}" + (f" ({label})" if label else "")


def _decode(data: bytes, what: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputError(f"{what}: starts with a UTF-8 byte-order mark, which JSON forbids")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: byte {exc.start}: not valid UTF-8") from None


def _parse(text: str, what: str, *, from_utf8: bool) -> Any:
    """Parse, then walk the value for what the parser's hooks could not refuse.

    The hooks leave a ``Marker`` for every token they refuse (duplicate keys,
    NaN, integers float64 readers change, overflowing numbers); what is left
    for the walk is finding those markers, lone surrogates and nesting beyond
    ``MAX_DEPTH``. The walk is skipped when the text proves there are none of
    them: no marker was made while parsing, text decoded from UTF-8 holds a
    surrogate only by a ``\\uD...`` escape, and a value cannot nest deeper than
    the text has brackets. A small bundle or record is most often like that,
    and its walk cost a third of its reading (batch verify reads two a pair).
    """
    before = next(MARKERS_MADE)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{what}: nested too deeply to read") from None
    if next(MARKERS_MADE) == before + 1 and from_utf8 and _nothing_to_walk_for(text):
        return value
    try:
        check_json_value(value, "$")
    except ValidationError as exc:
        raise InputError(f"{what}: at {exc.path}: {exc.reason}") from None
    return value


def _nothing_to_walk_for(text: str) -> bool:
    """True when ``text`` (decoded from UTF-8, so holding no raw surrogate) has no
    ``\\u`` escape that could be a surrogate (JSON's ``u`` is lower case; the hex
    digits are not) and too few brackets for a container at depth ``MAX_DEPTH``."""
    return ("\\ud" not in text and "\\uD" not in text
            and text.count("{") + text.count("[") <= MAX_DEPTH)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> Any:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                # Keep the (first) parsed object's shape; the walk reports the place.
                result[key] = Marker(f"duplicate object key {key!r}")
                return result
            seen.add(key)
    return result


def _refuse_constant(token: str) -> Marker:
    return Marker(f"{token} is not a JSON number")


def _safe_int(token: str) -> int | Marker:
    """An integer token, or a marker when float64 readers would change it.

    Tokens with a fraction or an exponent are floats, and every finite float is
    in the domain; only tokens without either are held to the integer rule.
    """
    if len(token) > 23:  # cheap pre-check: an in-domain integer is below 1e21
        return Marker(f"integer {token[:20]}...({len(token)} digits) {OUTSIDE_DOMAIN}")
    value = int(token)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and not integer_in_domain(value):
        return Marker(f"integer {token} {OUTSIDE_DOMAIN}")
    return value


def _finite_float(token: str) -> float | Marker:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        return Marker(f"number {token[:24]} overflows to infinity")
    return value


#: One decoder for every parse: ``json.loads`` with hooks builds a new one (and
#: its scanner) on each call. It keeps no state between calls.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_refuse_constant,
    parse_int=_safe_int,
    parse_float=_finite_float,
)
