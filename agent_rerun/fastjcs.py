"""JCS bytes from orjson, for the values where orjson's output provably is the JCS bytes.

With the optional extra ``agent-rerun[fast]`` installed, the canonical encoder
hands large plain values to orjson, whose compiled string escaping is what a
multi-megabyte transcript spends most of its time on. orjson writes exactly the
JCS bytes for every string, for ``true``/``false``/``null``, for integers within
+/-(2**53 - 1) and for floats whose Python ``repr`` is in fixed notation and not
integral, and it sorts keys by code point, which is the JCS order (UTF-16 code
units) unless a key set mixes U+E000..U+FFFF with characters beyond the BMP.
It differs elsewhere (``1.0`` for JCS ``1``, ``1e+16`` for ``10000000000000000``,
``null`` for NaN), so a value is first walked and handed to orjson only when
everything in it is on the safe side; otherwise ``plain_jcs`` returns None and
the caller uses its own encoder, which decides every refusal exactly as before.

Only writing is accelerated: reading stays with the I-JSON reader, because
``orjson.loads`` keeps the last of duplicate keys and turns integers of 2**64
and more into floats.

``RERUN_NO_ACCELERATOR=1`` (read once, at import) switches the accelerator off,
so the standard-library path can be tested and measured with orjson installed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from agent_rerun.jsonvalue import MAX_DEPTH, MAX_SAFE_INTEGER

#: Until orjson has been loaded, values the walk counts below this (about the
#: characters of their JSON text, see ``_safe_chars``) are encoded in Python:
#: ``rerun verify`` of a small bundle should not pay for importing orjson at
#: start-up. Once it is loaded (by a large value, or by ``preload`` in a batch),
#: every value orjson writes as JCS goes to it: even a message of a few hundred
#: characters is walked and written faster than our encoder writes it.
MIN_CHARS = 4096

DISABLE_ENV = "RERUN_NO_ACCELERATOR"

_Dumps = Callable[[Any], bytes]
#: None: not looked for yet; False: not installed, or switched off.
_dumps: _Dumps | bool | None = None if not os.environ.get(DISABLE_ENV) else False


def loaded() -> bool:
    """True once orjson has been loaded (and not switched off); imports nothing."""
    return callable(_dumps)


def available() -> bool:
    """True when orjson is installed and not switched off (imports it)."""
    return _load() is not None


def preload() -> None:
    """Load orjson now (when installed), for a caller about to encode many values."""
    _load()


def plain_jcs(value: Any, depth: int = 0) -> bytes | None:
    """The JCS bytes of ``value`` from orjson, or None when the caller must encode it.

    None means: no accelerator, a small value while orjson is not loaded yet,
    or something in the value that orjson would write differently or that JCS
    refuses (the caller's encoder reports it). ``depth`` is how deep ``value``
    sits in its record, as for the caller's encoder.
    """
    found = _writer_for(value, depth, None)
    if found is None:
        return None
    try:
        return found[0](value)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, too deep for orjson
        return None


def plain_jcs_pieces(value: Any, depth: int = 0) -> Iterator[bytes | memoryview] | None:
    """``plain_jcs(value, depth)`` in pieces of at most about ``SLICE_CHARS``
    characters each (but a longer string, and a short piece where a part too
    large for a piece begins or ends), None where ``plain_jcs`` is None.

    For hashing: one buffer of a 0.6 MB message list is past glibc's mmap
    threshold, so it was mapped and page-faulted afresh on every call (about 330
    faults, 15% of the verify of that step, measured). Lists are cut into runs
    of items and objects into runs of members, each run one orjson call, and a
    part too large for a piece is cut in turn, however deep.
    Iterating raises ``TypeError`` when orjson refuses a later piece (a lone
    surrogate), after the pieces before it: the caller starts over its own way.
    """
    sizes: dict[int, int] = {}
    found = _writer_for(value, depth, sizes)
    if found is None:
        return None
    dumps, size = found
    if size <= SLICE_CHARS:
        try:
            return iter((dumps(value),))
        except TypeError:  # as plain_jcs: a lone surrogate
            return None
    return _pieces(value, size, dumps, sizes)


def plain_jcs_sha256(value: Any, depth: int = 0) -> str | None:
    """The hex SHA-256 of ``plain_jcs(value, depth)``, None where that is None;
    written and hashed a piece at a time (``plain_jcs_pieces``)."""
    hasher = hashlib.sha256()
    try:
        pieces = plain_jcs_pieces(value, depth)
        if pieces is None:
            return None
        for piece in pieces:
            hasher.update(piece)
    except TypeError:
        return None
    return hasher.hexdigest()


#: About how many characters ``plain_jcs_pieces`` writes at a time: under 128 KiB
#: of output unless most characters are four-byte UTF-8 or need six-byte escapes.
SLICE_CHARS = 16_384
#: The walk records (with ``sizes``) every container it counts above this; one it
#: did not record is taken to be this large when runs are cut: at worst a run is
#: then cut early, into more orjson calls, never late.
_SIZED_ABOVE = 256
#: What a run counts for a float in a list (its text is at most this long).
_FLOAT_CHARS = 24


def _pieces(value: Any, size: int, dumps: _Dumps,
            sizes: dict[int, int]) -> Iterator[bytes | memoryview]:
    """The pieces of a list or object the walk accepted and counted at ``size``,
    more than a piece; ``sizes`` as ``_safe_chars`` filled it."""
    keys: list[str] | None = None
    if type(value) is dict:
        # The walk refused keys whose code-point order may differ from JCS's
        # UTF-16 order, so sorted() is the JCS order here.
        keys = sorted(value)
        items = [value[key] for key in keys]
        opening, closing = b"{", b"}"
    else:
        items = value
        opening, closing = b"[", b"]"
    separator = opening
    start = counted = 0
    for index, item in enumerate(items):
        kind = type(item)
        if kind is str:
            part = len(item)
        elif kind is float:
            part = _FLOAT_CHARS
        elif kind is dict or kind is list:
            part = sizes.get(id(item), _SIZED_ABOVE)
        else:
            part = _LITERAL_CHARS
        if keys is not None:
            part += len(keys[index])
        if part > SLICE_CHARS and (kind is dict or kind is list):
            if index > start:  # the run before it
                yield separator
                separator = b","
                yield _run(value, keys, start, index, dumps)
            yield separator
            separator = b","
            if keys is not None:
                yield dumps(keys[index]) + b":"
            yield from _pieces(item, sizes[id(item)], dumps, sizes)
            start, counted = index + 1, 0
            continue
        counted += part
        if counted >= SLICE_CHARS:
            yield separator
            separator = b","
            yield _run(value, keys, start, index + 1, dumps)
            start, counted = index + 1, 0
    if start < len(items):
        yield separator
        yield _run(value, keys, start, len(items), dumps)
    yield closing


def _run(value: Any, keys: list[str] | None, start: int, end: int,
         dumps: _Dumps) -> memoryview:
    """Items ``start`` to ``end`` of a list (``keys`` None), or those members of
    an object (its ``keys`` in JCS order), comma-separated: one orjson call,
    which sorts a run of members as ``keys`` are sorted."""
    if keys is None:
        return memoryview(dumps(value[start:end]))[1:-1]
    return memoryview(dumps({key: value[key] for key in keys[start:end]}))[1:-1]


def _writer_for(value: Any, depth: int,
                sizes: dict[int, int] | None) -> tuple[_Dumps, int] | None:
    """orjson's writer and the walk's size of ``value`` when orjson provably
    writes it as JCS (loading orjson first if the value is large), else None;
    ``sizes`` as for ``_safe_chars``."""
    dumps = _dumps
    if dumps is False:
        return None
    if dumps is None and not _installed():
        return None
    chars = _safe_chars(value, depth, sizes)
    if chars < 0:
        # Refused, but when the walk had already passed enough text, load orjson
        # anyway: the caller's encoder then hands it the value's safe parts
        # (``loaded``), as one integral float among thousands of messages
        # would otherwise keep the whole transcript from it.
        if not callable(dumps) and -1 - chars >= MIN_CHARS:
            _load()
        return None
    if not callable(dumps):
        if chars < MIN_CHARS:
            return None
        dumps = _load()
        if dumps is None:
            return None
    return dumps, chars


def safe_chars(value: Any, depth: int) -> int:
    """About the characters of ``value``'s JSON text (see ``_safe_chars``) when
    orjson provably writes it as JCS, else a negative number (the walk alone:
    orjson need not be loaded); ``depth`` as for ``plain_jcs``."""
    return _safe_chars(value, depth, None)


def items_jcs(items: list[Any]) -> bytes | None:
    """The JCS bytes of a run of list items that ``safe_chars`` each accepted, without
    the brackets, from the loaded orjson; None when it is not loaded or refuses
    (a lone surrogate), and the caller encodes them itself."""
    dumps = _dumps
    if not callable(dumps):
        return None
    try:
        return dumps(items)[1:-1]
    except TypeError:
        return None


#: Whether orjson can be imported, once asked.
_found: bool | None = None


def _installed() -> bool:
    """Whether orjson can be imported, found out once without importing it, so
    that without the extra small values are not walked for nothing."""
    global _dumps, _found
    if _found is None:
        from importlib.util import find_spec

        try:
            _found = find_spec("orjson") is not None
        except (ImportError, ValueError):
            _found = False
        if not _found:
            _dumps = False
    return _found


def _load() -> _Dumps | None:
    global _dumps
    if _dumps is None:
        try:
            import orjson
        except ImportError:
            _dumps = False
        else:
            option = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER

            def dumps(value: Any) -> bytes:
                return orjson.dumps(value, option=option)

            _dumps = dumps
    return _dumps if callable(_dumps) else None


#: Returned by the walk for a scalar orjson must not write: -1 - (characters seen).
_UNSAFE = -1
#: What the walk counts for an integer, ``null``, ``true`` or ``false``: a rough
#: length, so that a list of numbers is cut into pieces too.
_LITERAL_CHARS = 4


def _safe_chars(value: Any, depth: int, sizes: dict[int, int] | None) -> int:
    """About the characters of ``value``'s JSON text: strings and keys in full,
    a float's digits, ``_LITERAL_CHARS`` for any other scalar. When some part of
    it is outside what orjson provably writes as JCS: ``-1 - n`` where ``n`` is
    the count the walk had reached when it stopped there. With ``sizes``, each
    container counted above ``_SIZED_ABOVE`` is recorded there, by ``id``."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return _UNSAFE
        total = 0
        for key, item in value.items():
            if type(key) is not str:
                return _UNSAFE - total
            # Keys with a character at or above U+E000 may sort differently by
            # UTF-16 code units than by code points: leave those to the caller.
            if not key.isascii() and max(key) >= "\ue000":
                return _UNSAFE - total
            total += len(key)
            if type(item) is str:
                total += len(item)
            else:
                part = _safe_chars(item, depth + 1, sizes)
                if part < 0:
                    return part - total
                total += part
        if sizes is not None and total > _SIZED_ABOVE:
            sizes[id(value)] = total
        return total
    if kind is list:
        if depth >= MAX_DEPTH:
            return _UNSAFE
        total = 0
        for item in value:
            if type(item) is str:
                total += len(item)
            else:
                part = _safe_chars(item, depth + 1, sizes)
                if part < 0:
                    return part - total
                total += part
        if sizes is not None and total > _SIZED_ABOVE:
            sizes[id(value)] = total
        return total
    if kind is int:
        return _LITERAL_CHARS if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _UNSAFE
    if kind is float:
        text = float.__repr__(value)
        # Exponent form, integral values (1.0, -0.0), inf and nan differ from JCS.
        if "e" in text or text.endswith(".0") or "n" in text:
            return _UNSAFE
        return len(text)
    if value is None or kind is bool:
        return _LITERAL_CHARS
    return _UNSAFE
