"""The domain of JSON values that JCS encodes identically in every implementation.

A value outside it (a NaN, an integer that a float64 reader would change, a
lone surrogate, a tuple, a million levels of nesting) would canonicalize differently, or not at
all, depending on who reads it. Checking it up front turns that into a
``ValidationError`` naming the field instead of an exception from deep inside
the canonicalizer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

from agent_rerun.errors import ValidationError

MAX_SAFE_INTEGER = 2**53 - 1
#: Deep enough for any real transcript, shallow enough that the recursive JCS
#: encoder and Python's own recursion limit are never reached.
MAX_DEPTH = 200


def integer_in_domain(number: int) -> bool:
    """True when every JCS implementation writes ``number`` back as the same digits.

    Readers that hold numbers as float64 (the TypeScript reference, the published
    Python package) keep every integer within +/-(2**53 - 1). Beyond that an
    integer survives only when it is already the canonical spelling of a double:
    10000000000000000 does, 2**53 + 1 (read as 2**53) and 2**60 (written as
    1152921504606847000) do not, and two IDs differing in the last digit would
    otherwise hash alike.
    """
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return True
    try:
        as_double = float(number)
    except OverflowError:
        return False
    return abs(as_double) < 1e21 and integral_double_text(as_double) == str(number)


def integral_double_text(number: float) -> str:
    """ES6 text of an integral double below 1e21: its shortest digits, zero-padded.

    ``repr`` already picks the shortest round-tripping digits; only its exponent
    form (``1.152921504606847e+18``) has to be spelled out as an integer.
    """
    if number == 0:
        return "0"  # -0 included, as ES6 writes it
    mantissa, _, exponent = float.__repr__(number).partition("e")
    if not exponent:
        return mantissa.removesuffix(".0")
    sign = "-" if mantissa.startswith("-") else ""
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    return sign + digits + "0" * (int(exponent) - len(fraction))


class Marker:
    """Stands in for a token the I-JSON reader refused, so the walk can name its place."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        next(MARKERS_MADE)


#: Advanced once for every ``Marker`` made: a reader takes a number before and
#: after parsing, and consecutive numbers prove no marker was made meanwhile
#: (``next`` on a count is atomic, so a marker made in another thread can only
#: add a walk, never hide one).
MARKERS_MADE = itertools.count()


def check_json_value(value: Any, path: str, depth: int = 0) -> None:
    """Raise ``ValidationError`` at the first part of ``value`` outside the JCS domain.

    Iterative, so hostile nesting cannot exhaust the interpreter's stack, and
    lazy: the walk holds one iterator per level it is inside, not an entry for
    every child still to visit (a million messages were 80 MB of entries).
    Paths are only spelled out for the error: building one per node would cost
    more than the checks themselves on a large transcript. ``depth`` is how deep
    ``value`` sits in its record: the limit counts from the record's root.
    """
    entry: _Entry | None = (value, None, path, depth)
    # The containers being walked, each with its children still to visit, last
    # first: the order in which a stack of every child would have popped them.
    frames: list[tuple[_Entry, Iterator[tuple[Any, Any]]]] = []
    while entry is not None:
        item, _, _, depth = entry
        kind = type(item)
        if kind is dict:
            if depth >= MAX_DEPTH:
                raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", _path(entry))
            nested = False
            for key, child in item.items():
                if type(key) is not str:
                    raise ValidationError(f"object key {key!r} is not a string", _path(entry))
                if not _is_unicode(key):
                    raise ValidationError("object key contains a lone surrogate", _path(entry))
                if type(child) is str:
                    if not _is_unicode(child):
                        raise ValidationError(_SURROGATE, _path((child, entry, key, depth + 1)))
                elif child is not None and type(child) is not bool:
                    nested = True
            if nested:
                frames.append((entry, reversed(item.items())))
        elif kind is list:
            if depth >= MAX_DEPTH:
                raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", _path(entry))
            nested = False
            for index, child in enumerate(item):
                if type(child) is str:
                    if not _is_unicode(child):
                        raise ValidationError(_SURROGATE, _path((child, entry, index, depth + 1)))
                elif child is not None and type(child) is not bool:
                    nested = True
            if nested:
                last_first = zip(range(len(item) - 1, -1, -1), reversed(item), strict=True)
                frames.append((entry, last_first))
        elif kind in _SCALARS or kind is Marker:
            _check_scalar(entry)
        elif isinstance(item, (str, dict, list, int, float)):
            # Subclasses (IntEnum, OrderedDict, ...) are checked as their base type.
            base: Any = next(t for t in (str, dict, list, int, float) if isinstance(item, t))
            entry = (base(item), entry[1], entry[2], depth)
            continue
        else:
            raise ValidationError(f"{kind.__name__} is not a JSON value", _path(entry))
        entry = _next_child(frames)


def _next_child(frames: list[tuple[_Entry, Iterator[tuple[Any, Any]]]]) -> _Entry | None:
    """The next child to check (strings, null and booleans were checked with their parent)."""
    while frames:
        parent, children = frames[-1]
        for key, child in children:
            if type(child) is not str and child is not None and type(child) is not bool:
                return (child, parent, key, parent[3] + 1)
        frames.pop()
    return None


_Entry = tuple[Any, Any, "str | int", int]
#: Why an integer is refused, in the library and the I-JSON reader alike.
OUTSIDE_DOMAIN = ("is beyond +/-(2**53 - 1) and not a double's canonical spelling: "
                  "float64 readers would change it")


def _short(number: int) -> str:
    """The integer as an error names it: cut short when long, and by its size
    alone past ``sys.get_int_max_str_digits()``, where ``str`` raises."""
    try:
        text = str(number)
    except ValueError:
        return f"{'-' if number < 0 else ''}({number.bit_length()} bits)"
    return text if len(text) <= 24 else f"{text[:20]}...({len(text)} digits)"

_SURROGATE = "string contains a lone surrogate (not valid Unicode)"
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate.

    ASCII text (an O(1) check in CPython) cannot; otherwise a strict UTF-8
    encode is the fastest complete test, about three times a regex search.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_scalar(entry: _Entry) -> None:
    item = entry[0]
    kind = type(item)
    if kind is str:
        if not _is_unicode(item):
            raise ValidationError(_SURROGATE, _path(entry))
    elif kind is int:
        if not integer_in_domain(item):
            raise ValidationError(f"integer {_short(item)} {OUTSIDE_DOMAIN}", _path(entry))
    elif kind is float:
        # Every finite double is in: what JCS writes for it (1e16 as
        # 10000000000000000) is the canonical spelling of that double, in the
        # domain when read back.
        if not math.isfinite(item):
            raise ValidationError(f"number {item!r} is not finite", _path(entry))
    elif kind is Marker:
        raise ValidationError(item.reason, _path(entry))


def _path(entry: _Entry) -> str:
    """Spell out where ``entry`` sits: ``$.inputs.messages[3].content``."""
    parts: list[str] = []
    node: Any = entry
    while node is not None:
        _, parent, key, _ = node
        if parent is None:
            parts.append(str(key))
        elif isinstance(key, int):
            parts.append(f"[{key}]")
        else:
            parts.append(f".{key}")
        node = parent
    parts.reverse()
    if len(parts) > 12:  # hostile nesting: the ends say where, the middle only repeats
        parts = [*parts[:6], f"...({len(parts) - 12} more levels)...", *parts[-6:]]
    return "".join(parts)

