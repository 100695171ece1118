"""RFC 8785 (JCS) bytes and the ``sha256:<hex>`` hashes a bundle carries.

Hashes are computed over canonical bytes so that two parties who hold the same
JSON value, however it was spelled in their files, compute the same hash.

The ``rfc8785`` package is the reference for every byte we produce, but it is
pure Python and writes one small piece at a time, so multi-megabyte transcripts
spent most of capture and verify inside it. ``jcs_bytes`` therefore takes a fast
path for plain JSON values (exact ``dict``/``list``/``str``/``int``/``float``/
``bool``/``None``) that escapes strings with the C JSON string encoder, and hands
everything else to ``rfc8785.dumps`` unchanged, so the bytes, and the exception
raised for a value JCS cannot encode, are always exactly ``rfc8785``'s, but for
one thing the spec adds: an integer past 2**53 - 1 that is a double's own digits
(2**53, say) is written as those digits, where ``rfc8785`` refuses it. With the
optional ``agent-rerun[fast]`` extra, large values that orjson provably writes
as JCS go to orjson first (``agent_rerun.fastjcs``).
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

from agent_rerun.fastjcs import (
    SLICE_CHARS,
    items_jcs,
    loaded,
    plain_jcs,
    plain_jcs_pieces,
    plain_jcs_sha256,
    safe_chars,
)
from agent_rerun.jsonvalue import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    check_json_value,
    integer_in_domain,
    integral_double_text,
)

_INT_LIMIT = MAX_SAFE_INTEGER


class _NotPlain(Exception):
    """The value needs ``rfc8785`` itself: an unusual type, or one it will refuse."""


def jcs_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical encoding of a JSON value.

    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for values JCS
    cannot encode identically everywhere: non-finite floats, integers a float64
    reader would change, lone surrogates. Validate first to get a named field instead.
    """
    try:
        return _fast_jcs_bytes(value)
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        # A lone surrogate fails the UTF-8 encode; rfc8785 reports it (and every
        # other refusal) with its own exception.
        return _reference_dumps(value)


def sha256_hex(data: bytes) -> str:
    """``sha256:`` followed by the lowercase hex SHA-256 of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_of_jcs(value: Any) -> str:
    """The hash a bundle records for a JSON value: SHA-256 over its JCS bytes.

    The bytes are hashed as they are written, a part at a time (see
    ``_fast_jcs_sha256``); refusals are ``jcs_bytes``'s.
    """
    try:
        return "sha256:" + _fast_jcs_sha256(value, 0)
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        return sha256_hex(_reference_dumps(value))


def checked_sha256_of_jcs(value: Any, path: str, depth: int = 0) -> str:
    """``sha256_of_jcs`` for a value not yet checked against the JCS domain.

    The fast encoder refuses everything ``check_json_value`` refuses (depth,
    integer range, non-finite numbers, lone surrogates, non-JSON types), so a
    large transcript is walked once, while being encoded, instead of twice. On
    any refusal the walk runs to name the place in a ``ValidationError``; a
    value it accepts after all (an ``IntEnum``, say) takes the reference path.
    ``depth`` is how deep ``value`` sits in its record, so the nesting limit
    counts from the record's root, as the I-JSON reader counts from the file's.
    """
    try:
        return "sha256:" + _fast_jcs_sha256(value, depth)
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        check_json_value(value, path, depth)
        return sha256_hex(jcs_bytes(value))


def checked_jcs_bytes(value: Any, path: str) -> bytes:
    """``jcs_bytes`` for a value not yet checked against the JCS domain, checked
    while it is encoded, as ``checked_sha256_of_jcs`` does."""
    try:
        return _fast_jcs_bytes(value)
    except (_NotPlain, UnicodeEncodeError, RecursionError):
        check_json_value(value, path)
        return jcs_bytes(value)


def _fast_jcs_sha256(value: Any, depth: int) -> str:
    """The hex SHA-256 of the fast path's bytes, hashed as they are written, a
    part at a time: orjson's in pieces of about ``SLICE_CHARS`` characters, ours
    every ``_SPILL_AT`` chunks and after each string of ``_LONG_STRING``
    characters or more (a single string is one piece, however long). Holding
    a value's bytes whole costs page faults on every call once they pass the
    mmap threshold, and a transcript of a million messages would hold millions
    of small chunks at once."""
    accelerated = plain_jcs_sha256(value, depth)
    if accelerated is not None:
        return accelerated
    sink = _HashingSink()
    _encode(value, sink.append, depth, _SPLIT_LEVELS if loaded() else 0)
    sink.spill()
    return sink.hasher.hexdigest()


class _HashingSink(list):  # type: ignore[type-arg]
    """Chunks of output, fed to SHA-256 a batch at a time by ``_encode``'s list loop."""

    __slots__ = ("hasher",)

    def __init__(self) -> None:
        super().__init__()
        self.hasher = hashlib.sha256()

    def spill(self) -> None:
        self.hasher.update(b"".join(self))
        self.clear()


def _hashing_sink(emit: Any) -> _HashingSink | None:
    """The sink ``emit`` appends to when it is a ``_HashingSink``'s, else None."""
    sink = getattr(emit, "__self__", None)
    return sink if isinstance(sink, _HashingSink) else None


def _spill(emit: Any) -> None:
    """Hash what a hashing sink holds, when ``emit`` is one's."""
    sink = _hashing_sink(emit)
    if sink is not None:
        sink.spill()


#: Objects with more members than this check the sink after each member.
_SMALL_OBJECT = 16
#: A string this long (in characters) is hashed as soon as it is written.
_LONG_STRING = 2048

#: Chunks a ``_HashingSink`` holds before they are hashed. Small, so that what
#: is joined stays small: a join of a whole 0.6 MB message list is one buffer
#: over glibc's mmap threshold (128 KiB), mapped and page-faulted afresh on every
#: call (about 380 faults, 15% of a stdlib verify of that step, measured), where
#: joins of a few dozen messages reuse the same heap memory. Spilling more often
#: cost nothing measurable: a join and a hash update per 256 chunks.
_SPILL_AT = 256


def _fast_jcs_bytes(value: Any, depth: int = 0) -> bytes:
    accelerated = plain_jcs(value, depth)  # orjson, when installed and provably the same
    if accelerated is not None:
        return accelerated
    chunks: list[bytes] = []
    _encode(value, chunks.append, depth, _SPLIT_LEVELS if loaded() else 0)
    return b"".join(chunks)


#: How many levels below a value orjson refused ``_encode`` still offers each
#: container child to orjson: enough to reach past a transcript's messages to
#: their metadata (one ``"score": 1.0`` among 3,400 messages kept all of a 10 MB
#: step from orjson), few enough that the walk, repeated at each such level, is
#: never more than this many times over the value.
_SPLIT_LEVELS = 4


def _encode(value: Any, emit: Any, depth: int, split: int = 0) -> None:
    """Append the canonical UTF-8 of ``value`` to the output via ``emit``.

    Each string is encoded on its own: joining bytes is cheaper than joining
    text of mixed widths (one emoji makes a joined string four bytes a character).
    Scalars inside containers are written in place rather than by a recursive
    call: on a large transcript the calls, not the bytes, were most of the time.
    With ``split`` (orjson is loaded and refused the value as a whole), each
    container child goes to orjson when it provably writes that child as JCS,
    and is encoded here, ``split - 1`` levels deep, otherwise.
    """
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:  # the same limit, at the same place, as check_json_value
            raise _NotPlain
        if not value:
            emit(b"{}")
            return
        keys = tuple(value)
        # A hashing sink is emptied as it fills: checked after each member of a
        # large object (small ones skip the look), and after any long string.
        sink = _hashing_sink(emit) if len(keys) > _SMALL_OBJECT else None
        for key, prefix in _PLAN_CACHE.get(keys) or _plan(keys):
            item = value[key]
            emit(prefix)
            item_kind = type(item)
            if item_kind is str:
                emit(encode_basestring(item).encode("utf-8"))
                if len(item) >= _LONG_STRING:
                    _spill(emit)
            elif item_kind is int and -_INT_LIMIT <= item <= _INT_LIMIT:
                emit(int.__repr__(item).encode("ascii"))
            elif item_kind is float:
                emit(_float_text(item))
            elif split and (item_kind is dict or item_kind is list):
                _encode_part(item, emit, depth + 1, split)
            else:
                _encode(item, emit, depth + 1)
            if sink is not None and len(sink) >= _SPILL_AT:
                sink.spill()
        emit(b"}")
    elif kind is list:
        if depth >= MAX_DEPTH:
            raise _NotPlain
        if not value:
            emit(b"[]")
            return
        if split:
            _encode_runs(value, emit, depth, split)
            return
        separator = b"["
        # ``emit`` is a list's append; a hashing sink's is emptied as it fills.
        sink = _hashing_sink(emit)
        for item in value:
            emit(separator)
            separator = b","
            if type(item) is str:
                emit(encode_basestring(item).encode("utf-8"))
                long_string = len(item) >= _LONG_STRING
            else:
                _encode(item, emit, depth + 1)
                long_string = False
            if sink is not None and (long_string or len(sink) >= _SPILL_AT):
                sink.spill()
        emit(b"]")
    elif kind is str:
        emit(encode_basestring(value).encode("utf-8"))
    elif value is None:
        emit(b"null")
    elif value is True:
        emit(b"true")
    elif value is False:
        emit(b"false")
    elif kind is int:
        if not -_INT_LIMIT <= value <= _INT_LIMIT and not integer_in_domain(value):
            raise _NotPlain
        # In the domain, the digits are what JCS writes for the same double.
        emit(int.__repr__(value).encode("ascii"))
    elif kind is float:
        emit(_float_text(value))
    else:
        raise _NotPlain


def _encode_part(value: Any, emit: Any, depth: int, split: int) -> None:
    """One child of a value orjson refused: orjson's bytes if it takes it, else
    ours. When hashing, orjson's bytes come a piece at a time, each hashed as
    the sink fills, so a large child is never one buffer either."""
    sink = _hashing_sink(emit)
    if sink is None:
        accelerated = plain_jcs(value, depth)
        if accelerated is not None:
            emit(accelerated)
            return
    else:
        pieces = plain_jcs_pieces(value, depth)
        if pieces is not None:
            try:
                for piece in pieces:
                    emit(piece)
                    if len(piece) >= _SPILL_PIECE:
                        sink.spill()
            except TypeError:  # a lone surrogate past the first piece: start over
                raise _NotPlain from None
            return
    _encode(value, emit, depth, split - 1)


#: A piece of orjson's this long (a run, or a long string) is hashed at once.
_SPILL_PIECE = 1 << 12


def _encode_runs(items: list[Any], emit: Any, depth: int, split: int) -> None:
    """A non-empty list orjson refused as a whole (``_encode`` with ``split``).

    The items orjson takes go to it a run at a time, one call for all of them
    up to the next item it does not take, which is encoded by ``_encode_part``:
    a call per item cost as much as the orjson time saved on a 10 MB step. A
    run is also cut after about ``SLICE_CHARS`` characters, so that a hashed
    list is written a piece at a time here too (see ``plain_jcs_pieces``).
    """
    sink = _hashing_sink(emit)
    separator = b"["
    start = run_chars = 0
    for index, item in enumerate(items):
        chars = len(item) if type(item) is str else safe_chars(item, depth + 1)
        if chars >= 0:
            run_chars += chars
            if run_chars < SLICE_CHARS:
                continue
            emit(separator)
            separator = b","
            _encode_run(items[start:index + 1], emit, depth)
        else:
            if index > start:
                emit(separator)
                separator = b","
                _encode_run(items[start:index], emit, depth)
            emit(separator)
            separator = b","
            _encode_part(item, emit, depth + 1, split)
        start = index + 1
        run_chars = 0
        # A run just cut is about SLICE_CHARS characters by itself: hash it now.
        if sink is not None and (chars >= 0 or len(sink) >= _SPILL_AT):
            sink.spill()
    if start < len(items):
        emit(separator)
        _encode_run(items[start:], emit, depth)
    emit(b"]")


def _encode_run(run: list[Any], emit: Any, depth: int) -> None:
    """Items ``safe_chars`` accepted, comma-separated: orjson's bytes, or ours if it refuses."""
    accelerated = items_jcs(run)
    if accelerated is not None:
        emit(accelerated)
        return
    separator = b""
    for item in run:
        emit(separator)
        separator = b","
        _encode(item, emit, depth + 1)


#: Encoded ``"key":`` prefixes of object keys seen before: transcripts repeat a
#: handful of keys (role, content, ...) thousands of times. Bounded, and only
#: short keys, so hostile input cannot grow it without limit.
_KEY_CACHE: dict[str, bytes] = {}
_KEY_CACHE_LIMIT = 4096


def _key_bytes(key: str) -> bytes:
    encoded = encode_basestring(key).encode("utf-8") + b":"
    if len(key) <= 64 and len(_KEY_CACHE) < _KEY_CACHE_LIMIT:
        _KEY_CACHE[key] = encoded
    return encoded


#: For each key sequence seen before, its keys in JCS order, each with the bytes
#: written before its value (``{"key":`` for the first, ``,"key":`` after):
#: the objects of a transcript share a few shapes ({role, content}, ...), so
#: sorting once per shape suffices, and each member is one write, not three.
#: Bounded like ``_KEY_CACHE``.
_PLAN_CACHE: dict[tuple[Any, ...], tuple[tuple[str, bytes], ...]] = {}


def _plan(keys: tuple[Any, ...]) -> tuple[tuple[str, bytes], ...]:
    """``_PLAN_CACHE``'s entry for ``keys`` (non-empty), made and remembered."""
    order = _key_order(keys)
    plan = tuple((key, (b"," if index else b"{") + (_KEY_CACHE.get(key) or _key_bytes(key)))
                 for index, key in enumerate(order))
    if len(keys) <= 32 and len(_PLAN_CACHE) < _KEY_CACHE_LIMIT:
        _PLAN_CACHE[keys] = plan
    return plan


def _key_order(keys: tuple[Any, ...]) -> tuple[str, ...]:
    """Keys in JCS order: by UTF-16 code units, which differs from Python's
    code-point order only when keys mix U+E000..U+FFFF with astral characters."""
    if not all(type(key) is str for key in keys):
        raise _NotPlain
    if all(key.isascii() for key in keys):
        return tuple(sorted(keys))
    # Lone surrogates raise UnicodeEncodeError here, and rfc8785 reports them.
    return tuple(sorted(keys, key=lambda key: key.encode("utf-16-be")))


def _float_text(number: float) -> bytes:
    """ES6 number text. Python's repr already is it for non-integral values in
    fixed notation (both pick the shortest round-tripping digits); integral values
    below 1e21 are spelled out as integers; other exponents and non-finite values
    go through rfc8785 itself."""
    text = float.__repr__(number)
    if "n" in text:  # inf, nan: refused, and rfc8785 must say so for the whole value
        raise _NotPlain
    if "e" in text or text.endswith(".0"):
        if number.is_integer() and abs(number) < 1e21:
            return integral_double_text(number).encode("ascii")
        return _reference_dumps(number)
    return text.encode("ascii")


def _reference_dumps(value: Any) -> bytes:
    """``rfc8785.dumps``, imported on first use: most values never need it, and
    ``rerun verify`` should not pay for the import at start-up."""
    import rfc8785

    return rfc8785.dumps(value)
