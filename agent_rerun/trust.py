"""Trusted signer keys for verify: who may sign, for what, and when.

A valid signature only proves that *some* key signed; trust says whose key it
must be. Keys come as base64 raw keys, OpenSSH public key lines, or a trust file
in OpenSSH's ``allowed_signers`` format, so a team reuses the file it keeps for
git commit signing. Options this module cannot honour are refused rather than
ignored: ignoring ``cert-authority`` would silently change who is trusted.

Pure software (stdlib and ``cryptography``); verify imports it, so it must never
import a signer backend.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from agent_rerun.b64 import decode_strict_or_none
from agent_rerun.errors import InputError

#: The ``allowed_signers`` namespace agent-rerun signatures belong to.
NAMESPACE = "agent-rerun"

_SUPPORTED_OPTIONS = frozenset({"namespaces", "valid-after", "valid-before"})
_TIMESTAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?([Zz])?$")
_KEY_TYPE = re.compile(r"^(ssh-|ecdsa-|sk-|rsa-)[A-Za-z0-9@.+-]+$")
#: What no key line may hold: C0/C1 controls except tab, DEL, and the Unicode
#: line and paragraph separators (which editors show as line breaks).
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: Bidi embeddings, overrides and isolates: never in a name we write into a trust line,
#: where they would make the line read differently from what it says.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
#: Option names OpenSSH knows in allowed_signers; after a bare base64 key one of
#: these starts an option list, never a name.
_KNOWN_OPTIONS = _SUPPORTED_OPTIONS | {"cert-authority"}
_OPTION_START = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)(=|,|$)")


@dataclass(frozen=True)
class TrustedKey:
    """One key verify accepts, with the name results show and the limits it carries.

    ``namespaces`` None means any namespace; ``valid_after``/``valid_before``
    are timezone-aware (None means unbounded).
    """

    public_key: bytes
    name: str | None = None
    namespaces: tuple[str, ...] | None = None
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    #: The allowed_signers principals (None for a bare key with a name); ``name``
    #: already spells them, so they take no part in equality.
    principals: tuple[str, ...] | None = field(default=None, compare=False)


def parse_trusted_key(text: str) -> TrustedKey:
    """Read a key given on the command line or in config.

    Accepts base64 of the raw 32-byte key (optionally followed by a name) or an
    OpenSSH public key line ``ssh-ed25519 AAAA... comment``.
    """
    bad = _FORBIDDEN.search(text)
    if bad:
        raise InputError(
            f"trusted key {_shorten(text)!r}: control character U+{ord(bad.group()):04X}"
        )
    try:
        return _parse_key_fields(_split_fields(text.strip(" \t")))
    except _BadKey as exc:
        raise InputError(f"trusted key {_shorten(text)!r}: {exc}") from None


def parse_trust_file(path: str | os.PathLike[str]) -> list[TrustedKey]:
    """Read an ``allowed_signers`` file (plus lines holding a base64 raw key and a name).

    Errors name ``file:line`` and the offending option or key type.
    """
    from agent_rerun.inputs import LIST_LIMIT, read_input

    where = Path(path).expanduser()
    data = read_input(where, "trust file", limit=LIST_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: trust file is not UTF-8 text") from None
    keys: list[TrustedKey] = []
    for number, line in key_lines(text, where):
        try:
            keys.append(_parse_trust_line(line))
        except _BadKey as exc:
            raise InputError(f"{where}:{number}: {exc}") from None
    return keys


def key_lines(text: str, where: object) -> list[tuple[int, str]]:
    """The meaningful lines of a key file with their numbers, split as OpenSSH splits them.

    Lines end at ``\n`` only (a ``\r`` before it is dropped): ``str.splitlines``
    would also split at U+2028 and friends, letting a comment smuggle in a second,
    unrestricted key that ``ssh-keygen`` never sees. Control characters other than
    tab, and Unicode line/paragraph separators, are refused naming ``file:line``.
    """
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        # A printable line holds nothing _FORBIDDEN names (all are Cc, Zl or Zp);
        # the C check spares the regex scan on the lines nearly every file has.
        bad = None if line.isprintable() else _FORBIDDEN.search(line)
        if bad:
            raise InputError(
                f"{where}:{number}: control character U+{ord(bad.group()):04X} in a key line"
            )
        stripped = line.strip(" \t")
        if stripped and not stripped.startswith("#"):
            lines.append((number, stripped))
    return lines


def parse_trust_line(line: str, where: str) -> TrustedKey:
    """One meaningful line of a key file (from ``key_lines``); errors start with ``where``."""
    try:
        return _parse_trust_line(line)
    except _BadKey as exc:
        raise InputError(f"{where}: {exc}") from None


def check_line_options(
    principals: Iterable[str],
    *,
    namespaces: str | None = NAMESPACE,
    valid_after: str | None = None,
    valid_before: str | None = None,
    now: datetime | None = None,
) -> tuple[str, str]:
    """The principals field and options field of a trust line, or ``InputError``.

    Checked before any key is touched, so a typo in a flag never costs a PIN
    prompt. ``now`` for a time spells the current moment in UTC; a window that
    is empty, namespaces that would not admit agent-rerun signatures, and a
    principal that would change how the line is read are refused.
    """
    names = [principals] if isinstance(principals, str) else list(principals)
    if not names:
        raise InputError("principal: at least one is needed")
    for name in names:
        _check_principal(name)
    options: list[str] = []
    if namespaces is not None:
        _check_namespaces(namespaces)
        options.append(f'namespaces="{namespaces}"')
    bounds: dict[str, datetime] = {}
    for option, value in (("valid-after", valid_after), ("valid-before", valid_before)):
        if value is None:
            continue
        spelled = _spell_time(value, now)
        try:
            moment = _timestamp({option: spelled}, option)
        except _BadKey as exc:
            raise InputError(str(exc)) from None
        assert moment is not None
        bounds[option] = moment
        options.append(f'{option}="{spelled}"')
    if len(bounds) == 2 and bounds["valid-after"] > bounds["valid-before"]:
        raise InputError("valid-after is later than valid-before: the key would never be "
                         "trusted")
    return ",".join(names), ",".join(options)


def allowed_signers_line(
    public_key: bytes,
    principals: str | Iterable[str],
    *,
    namespaces: str | None = NAMESPACE,
    valid_after: str | None = None,
    valid_before: str | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> str:
    """The allowed_signers line trusting ``public_key``, as ``rerun pubkey`` prints it.

    Values are checked by ``check_line_options``, and the finished line is read
    back with the trust-file parser: a line this returns always parses to the
    principals and restrictions it was asked for, in our parser as in ssh-keygen.
    """
    from agent_rerun.pubkey import ssh_public_key_line

    names, options = check_line_options(
        principals, namespaces=namespaces, valid_after=valid_after,
        valid_before=valid_before, now=now)
    if _FORBIDDEN.search(comment) or _BIDI.search(comment):
        raise InputError("the comment holds a control character")
    head = f"{names} {options} " if options else f"{names} "
    line = head + ssh_public_key_line(public_key, comment)
    try:
        parsed = _parse_trust_line(line)
    except _BadKey as exc:
        raise InputError(f"the trust line would not parse back ({exc})") from None
    if parsed.public_key != public_key or parsed.principals != tuple(names.split(",")):
        raise InputError(f"principal {names!r} would not be read back as given")
    return line


def _check_principal(name: str) -> None:
    """One principal: a name ssh-keygen and we both read as exactly that name."""
    if not name:
        raise InputError("principal: must not be empty")
    bad = _FORBIDDEN.search(name) or _BIDI.search(name)
    if bad:
        raise InputError(f"principal {name!r}: control character U+{ord(bad.group()):04X}")
    if any(ch.isspace() or ch in '",' for ch in name):
        raise InputError(f"principal {name!r}: must not hold spaces, double quotes or commas "
                         "(give --principal once per name)")
    if name.startswith(("#", "!")):
        raise InputError(f"principal {name!r}: must not start with '#' (a comment) or '!' "
                         "(a negation, which matches nobody)")
    if _KEY_TYPE.match(name):
        raise InputError(f"principal {name!r}: looks like a key type")
    raw = decode_strict_or_none(name)
    if raw is not None and len(raw) == 32:
        raise InputError(f"principal {name!r}: looks like a base64 public key")


def _check_namespaces(namespaces: str) -> None:
    names = namespaces.split(",")
    for name in names:
        if not name or any(ch.isspace() or ch == '"' for ch in name) or (
                _FORBIDDEN.search(name) or _BIDI.search(name)):
            raise InputError(f"namespaces {namespaces!r}: a comma-separated list of "
                             "non-empty names without spaces or double quotes")
    if not _matches_pattern_list(NAMESPACE, tuple(names)):
        raise InputError(f"namespaces {namespaces!r}: does not admit {NAMESPACE!r}, so "
                         "the line would trust no agent-rerun signature")


def _spell_time(value: str, now: datetime | None) -> str:
    """``now`` as ``YYYYMMDDHHMMSSZ`` (UTC); any other value as given."""
    if value.strip().lower() != "now":
        return value
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y%m%d%H%M%SZ")


class TrustIndex:
    """Trusted keys grouped by public key, so a lookup costs the same at 10 or 10,000 keys.

    Entries for one key keep their file order: the first one that admits a
    signature is the one the result names.
    """

    __slots__ = ("_by_key", "size")

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._by_key: dict[bytes, list[TrustedKey]] = {}
        self.size = 0
        for key in keys:
            self._by_key.setdefault(key.public_key, []).append(key)
            self.size += 1

    def entries_for(self, public_key: bytes) -> list[TrustedKey]:
        """Every entry listing ``public_key``, in the order they were given."""
        return self._by_key.get(public_key, [])

    def __len__(self) -> int:
        return self.size


def find_trusted(
    keys: Iterable[TrustedKey] | TrustIndex,
    public_key: bytes,
    *,
    namespace: str = NAMESPACE,
    now: datetime | None = None,
) -> TrustedKey | None:
    """The first entry that trusts ``public_key`` for ``namespace`` at ``now``, else None."""
    moment = moment_of(now)
    candidates = keys.entries_for(public_key) if isinstance(keys, TrustIndex) else keys
    for key in candidates:
        if key.public_key == public_key and admits(key, namespace, moment):
            return key
    return None


def moment_of(now: datetime | None) -> datetime:
    """``now`` as an aware time (a naive one is local time); None means this instant."""
    moment = now or datetime.now(timezone.utc)
    return moment.astimezone() if moment.tzinfo is None else moment


def admits(key: TrustedKey, namespace: str, moment: datetime) -> bool:
    """True when ``key``'s entry allows ``namespace`` at ``moment`` (an aware time).

    Validity bounds are inclusive, as in ssh-keygen.
    """
    if key.namespaces is not None and not _matches_pattern_list(namespace, key.namespaces):
        return False
    if key.valid_after is not None and moment < key.valid_after:
        return False
    return key.valid_before is None or moment <= key.valid_before


# ---------------------------------------------------------------- parsing


class _BadKey(Exception):
    """Internal: what is wrong with one key or line; callers add where it was."""


def _parse_trust_line(line: str) -> TrustedKey:
    fields = _split_fields(line)
    # Only 44 characters can be the base64 of a 32-byte key: principals skip the decode.
    if len(fields[0]) == _RAW_KEY_B64_LENGTH:
        raw = decode_strict_or_none(fields[0])
        if raw is not None and len(raw) == 32:
            return _parse_key_fields(fields)
    if _KEY_TYPE.match(fields[0]):
        raise _BadKey("the line starts with a key type: allowed_signers lines start with "
                      "the principals (e.g. 'alice@example.com ssh-ed25519 AAAA...')")
    if len(fields) < 3:
        raise _BadKey("expected 'principals [options] ssh-ed25519 KEY' or 'BASE64-KEY [name]'")
    principals = _unquote(fields[0])
    rest = fields[1:]
    options: dict[str, str | None] = {}
    if not _KEY_TYPE.match(rest[0]):
        options = _parse_options(rest[0])
        rest = rest[1:]
    if len(rest) < 2:
        raise _BadKey("missing key type or key after the principals")
    key = _parse_ssh_key(rest[0], rest[1])
    return TrustedKey(
        public_key=key,
        name=principals,
        namespaces=_namespaces(options.get("namespaces", None), "namespaces" in options),
        valid_after=_timestamp(options, "valid-after"),
        valid_before=_timestamp(options, "valid-before"),
        principals=tuple(part for part in principals.split(",") if part),
    )


def _parse_key_fields(fields: list[str]) -> TrustedKey:
    if not fields:
        raise _BadKey("empty")
    if _KEY_TYPE.match(fields[0]):
        if len(fields) < 2:
            raise _BadKey("OpenSSH key line without the base64 key")
        comment = " ".join(fields[2:]) or None
        return TrustedKey(_parse_ssh_key(fields[0], fields[1]), comment)
    raw = decode_strict_or_none(fields[0])
    if raw is None or len(raw) != 32:
        raise _BadKey(
            "not base64 of a raw 32-byte Ed25519 public key or an 'ssh-ed25519 AAAA...' line"
        )
    rest = fields[1:]
    options: dict[str, str | None] = {}
    if rest and _looks_like_options(rest[0]):
        options = _parse_options(rest[0])
        rest = rest[1:]
    for extra in rest:
        if _looks_like_options(extra):
            raise _BadKey(f"{_shorten(extra)!r} looks like options: put options right after "
                          "the key, or quote the name")
    return TrustedKey(
        raw,
        " ".join(rest) or None,
        namespaces=_namespaces(options.get("namespaces", None), "namespaces" in options),
        valid_after=_timestamp(options, "valid-after"),
        valid_before=_timestamp(options, "valid-before"),
    )


def _looks_like_options(field: str) -> bool:
    """True when ``field`` starts with an allowed_signers option name (``namespaces=``...)."""
    match = _OPTION_START.match(field)
    return bool(match) and match is not None and match.group(1).lower() in _KNOWN_OPTIONS


def _parse_ssh_key(key_type: str, blob_b64: str) -> bytes:
    """Raw Ed25519 key from an OpenSSH ``type base64`` pair.

    The blob must be exactly ``string "ssh-ed25519" || string key(32)``, nothing
    before or after, in canonical base64: what ``cryptography``'s loader and
    OpenSSH accept for this type. Read by hand because a 10,000-key trust file
    would otherwise spend most of its parse time in the general loader.
    """
    if key_type != "ssh-ed25519":
        raise _BadKey(
            f"key type {key_type} is not supported; rerun.json v0.1 bundles are signed "
            "with ed25519 only"
        )
    blob = decode_strict_or_none(blob_b64)
    if blob is None:
        raise _BadKey("the ssh-ed25519 key is not canonical base64")
    if not blob.startswith(_ED25519_BLOB_PREFIX):
        raise _BadKey("malformed ssh-ed25519 key (the blob holds another key type)")
    if len(blob) != _ED25519_BLOB_SIZE or blob[15:19] != b"\x00\x00\x00\x20":
        raise _BadKey("malformed ssh-ed25519 key (the blob must hold exactly one 32-byte key)")
    return blob[19:]


#: ``len(base64(32 bytes))``: the only length a base64 raw Ed25519 key has.
_RAW_KEY_B64_LENGTH = 44
#: ``string "ssh-ed25519"``: the start of every Ed25519 key blob.
_ED25519_BLOB_PREFIX = b"\x00\x00\x00\x0bssh-ed25519"
_ED25519_BLOB_SIZE = len(_ED25519_BLOB_PREFIX) + 4 + 32


def _parse_options(text: str) -> dict[str, str | None]:
    return dict(_option_items(text))


@functools.lru_cache(maxsize=256)
def _option_items(text: str) -> tuple[tuple[str, str | None], ...]:
    """The checked ``name=value`` items of one options field.

    Cached: a large trust file repeats a few option fields on most of its lines.
    """
    options: dict[str, str | None] = {}
    for item in _split_outside_quotes(text, ","):
        name, sep, value = item.partition("=")
        name = name.lower()
        if name not in _SUPPORTED_OPTIONS:
            raise _BadKey(
                f"option {name!r} is not supported (agent-rerun honours only "
                "namespaces, valid-after and valid-before)"
            )
        if not sep:
            raise _BadKey(f"option {name!r} needs a value")
        if name in options:
            raise _BadKey(f"option {name!r} given twice")
        options[name] = _unquote(value)
    return tuple(options.items())


def _namespaces(value: str | None, present: bool) -> tuple[str, ...] | None:
    if not present:
        return None
    names = tuple(part for part in (value or "").split(",") if part)
    if not names:
        raise _BadKey("option 'namespaces' lists no namespace")
    return names


def _timestamp(options: dict[str, str | None], name: str) -> datetime | None:
    """``YYYYMMDD[Z]`` or ``YYYYMMDDHHMM[SS][Z]``: local time, or UTC with ``Z``."""
    value = options.get(name)
    if value is None:
        return None
    # UTC bounds are cached: a large trust file repeats a few dates on many lines.
    # Local ones are not, as the local zone (TZ) may change while a process runs.
    return _parse_utc_time(name, value) if value[-1:] in "Zz" else _parse_time(name, value)


def _parse_time(name: str, value: str) -> datetime:
    match = _TIMESTAMP.match(value)
    if not match:
        raise _BadKey(f"option {name!r}: {value!r} is not YYYYMMDD[HHMM[SS]][Z]")
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
        zoned = moment.replace(tzinfo=timezone.utc) if utc else moment.astimezone()
        # Comparisons convert to UTC: a bound that has no UTC spelling must fail here.
        zoned.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        raise _BadKey(f"option {name!r}: {value!r} is not a valid time ({exc})") from None
    return zoned


_parse_utc_time = functools.lru_cache(maxsize=256)(_parse_time)


def _matches_pattern_list(name: str, patterns: tuple[str, ...]) -> bool:
    """ssh pattern-list semantics: ``*``/``?`` wildcards, and a ``!`` match vetoes."""
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if "*" in body or "?" in body:
            hit = _pattern_regex(body).fullmatch(name) is not None
        else:  # the common case, checked once per verified bundle: no regex needed
            hit = body == name
        if hit:
            if negated:
                return False
            matched = True
    return matched


@functools.lru_cache(maxsize=1024)
def _pattern_regex(body: str) -> re.Pattern[str]:
    """One ssh wildcard pattern as a compiled regex (``*`` any run, ``?`` one character)."""
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
                              for ch in body))


# ---------------------------------------------------------------- lexing


def _split_fields(line: str) -> list[str]:
    """Fields separated by spaces and tabs; double quotes keep spaces inside one field."""
    if line.count('"') % 2:
        raise _BadKey("unterminated double quote")
    return _FIELD.findall(line)


#: One field: runs of anything but space, tab and quote, and whole quoted runs
#: (quotes kept). One C-level scan per line; quotes are balanced when it runs.
_FIELD = re.compile(r'(?:[^ \t"]+|"[^"]*")+')


def _split_outside_quotes(text: str, separators: str) -> list[str]:
    """``text`` cut at each of ``separators`` not inside double quotes (quotes kept).

    Works on the runs between quotes rather than character by character: a
    10,000-line trust file passes through here twice per line.
    """
    if text.count('"') % 2:
        raise _BadKey("unterminated double quote")
    if '"' not in text:
        return _cut(text, separators)
    parts: list[str] = []
    current = ""
    for index, chunk in enumerate(text.split('"')):
        if index % 2:  # inside quotes
            current += f'"{chunk}"'
            continue
        pieces = _cut(chunk, separators)
        current += pieces[0]
        for piece in pieces[1:]:
            parts.append(current)
            current = piece
    parts.append(current)
    return parts


def _cut(text: str, separators: str) -> list[str]:
    """``text`` cut at every one of ``separators`` (str methods: C speed, no regex).

    Only the given characters separate: ``str.split()`` would also cut at U+00A0
    and other Unicode spaces, reading a line differently from ssh-keygen.
    """
    first = separators[0]
    for other in separators[1:]:
        text = text.replace(other, first)
    return text.split(first)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
