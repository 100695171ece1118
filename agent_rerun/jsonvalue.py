"""The domain of JSON values that JCS encodes identically in every implementation.

A value outside it (a NaN, an integer past 2**53 - 1, a lone surrogate, a
tuple, a million levels of nesting) would canonicalize differently, or not at
all, depending on who reads it. Checking it up front turns that into a
``ValidationError`` naming the field instead of an exception from deep inside
the canonicalizer.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agent_rerun.errors import ValidationError

MAX_SAFE_INTEGER = 2**53 - 1
#: Deep enough for any real transcript, shallow enough that the recursive JCS
#: encoder and Python's own recursion limit are never reached.
MAX_DEPTH = 200

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Marker:
    """Stands in for a token the I-JSON reader refused, so the walk can name its place."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def check_json_value(value: Any, path: str) -> None:
    """Raise ``ValidationError`` at the first part of ``value`` outside the JCS domain.

    Iterative, so hostile nesting cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        kind = type(item)
        if kind is str:
            # isascii() is O(1) for CPython's compact strings: most text skips the scan.
            if not item.isascii() and _LONE_SURROGATE.search(item):
                raise ValidationError("string contains a lone surrogate (not valid Unicode)", where)
        elif kind is dict:
            if depth >= MAX_DEPTH:
                raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", where)
            for key, child in item.items():
                if type(key) is not str:
                    raise ValidationError(f"object key {key!r} is not a string", where)
                if not key.isascii() and _LONE_SURROGATE.search(key):
                    raise ValidationError("object key contains a lone surrogate", where)
                if type(child) in _SCALARS_OK:
                    continue
                stack.append((child, f"{where}.{key}", depth + 1))
        elif kind is list:
            if depth >= MAX_DEPTH:
                raise ValidationError(f"nested deeper than {MAX_DEPTH} levels", where)
            for index, child in enumerate(item):
                if type(child) in _SCALARS_OK:
                    continue
                stack.append((child, f"{where}[{index}]", depth + 1))
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise ValidationError(
                    "integer is outside +/-(2**53 - 1), where JSON implementations disagree",
                    where,
                )
        elif kind is float:
            if not math.isfinite(item):
                raise ValidationError(f"number {item!r} is not finite", where)
            if MAX_SAFE_INTEGER < abs(item) < 1e21 and item.is_integer():
                # JCS writes these as integer text (1e20 -> 100000000000000000000),
                # which every I-JSON reader, ours included, must refuse.
                raise ValidationError(
                    f"number {item!r} would be written as an integer beyond 2**53 - 1", where
                )
        elif kind is bool or item is None:
            pass
        elif kind is Marker:
            raise ValidationError(item.reason, where)
        elif isinstance(item, (str, dict, list, int, float)):
            # Subclasses (IntEnum, OrderedDict, ...) are checked as their base type.
            base = next(t for t in (bool, str, dict, list, int, float) if isinstance(item, t))
            stack.append((base(item), where, depth))
        else:
            raise ValidationError(f"{kind.__name__} is not a JSON value", where)


#: Values that never need a closer look; ints and floats do (range, finiteness).
_SCALARS_OK = frozenset({bool, type(None)})
