"""Verify many bundle/actual pairs in one process: a folder, or a manifest of pairs.

CI jobs check thousands of replays; starting an interpreter per pair costs far
more than the check itself. Pairs come from one of two places:

* a folder: every ``NAME.rr`` in it (not in subfolders), in name order, is
  paired with ``NAME.actual.json`` beside it, or else with ``NAME.json``;
* a manifest file, either JSON Lines (each line an object
  ``{"bundle": PATH, "actual": PATH, "name"?: TEXT}``) or plain text (each line
  ``BUNDLE ACTUAL``, separated by a tab, or by whitespace when there is no tab).
  Blank lines and lines starting with ``#`` are skipped; relative paths are
  relative to the manifest's folder. The first meaningful line decides the
  format: ``{`` means JSON Lines.

A pair that cannot be checked (no actual record, a bad manifest line, an
unreadable file) yields a failed result with an error code, and the run goes on.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_rerun.errors import InputError
from agent_rerun.ijson import loads_ijson
from agent_rerun.policy import NO_POLICY, VerifyPolicy
from agent_rerun.verify import VerifyResult, verify_files

BUNDLE_SUFFIX = ".rr"
ACTUAL_SUFFIXES = (".actual.json", ".json")


@dataclass(frozen=True)
class Pair:
    """One bundle and the actual record to check against it.

    ``problem`` is set (and the pair is reported as failed) when the pair could
    not even be formed, e.g. a bundle without an actual record.
    """

    name: str
    bundle: str
    actual: str | None
    problem: str | None = None


@dataclass(frozen=True)
class PairResult:
    """The outcome of one pair, as batch verify prints it."""

    pair: Pair
    result: VerifyResult

    @property
    def verified(self) -> bool:
        return self.result.verified

    def to_json(self) -> dict[str, Any]:
        """``{name, bundle, actual}`` followed by the single-pair result object."""
        return {"name": self.pair.name, "bundle": self.pair.bundle,
                "actual": self.pair.actual, **self.result.to_json()}


def pairs_from(source: str | os.PathLike[str]) -> list[Pair]:
    """Pairs from a folder or a manifest file (see the module docstring)."""
    return list(iter_pairs(source))


def iter_pairs(source: str | os.PathLike[str]) -> PairStream:
    """``pairs_from`` one pair at a time, so a run over 100,000 pairs never holds
    them all (only the folder's file names, or the manifest's text). The folder
    is listed, or the manifest read, here: an unusable source raises ``InputError``
    now, and ``len`` is known before the first pair is checked."""
    name = os.fspath(source)
    if os.path.isdir(name):
        names = _bundle_names(name)
        return PairStream(len(names), _folder_pairs(name, names))
    path = Path(name)
    text = _manifest_text(path)
    count = sum(1 for line in _lines(text) if line.strip() and not line.strip().startswith("#"))
    return PairStream(count, _manifest_pairs(path, text))


class PairStream(Iterator[Pair]):
    """The pairs of one folder or manifest, formed as they are taken; ``len`` is how
    many there are in all (for progress and for "N of M" messages)."""

    def __init__(self, count: int, pairs: Iterator[Pair]) -> None:
        self._count = count
        self._pairs = pairs

    def __len__(self) -> int:
        return self._count

    def __next__(self) -> Pair:
        return next(self._pairs)


def pairs_from_folder(folder: str | os.PathLike[str]) -> list[Pair]:
    """Each ``NAME.rr`` with ``NAME.actual.json`` (preferred) or ``NAME.json``."""
    root = os.fspath(folder)
    return list(_folder_pairs(root, _bundle_names(root)))


def pairs_from_manifest(manifest: str | os.PathLike[str]) -> list[Pair]:
    """Pairs listed in a JSON Lines or two-column text manifest."""
    path = Path(manifest)
    return list(_manifest_pairs(path, _manifest_text(path)))


def _bundle_names(root: str) -> list[str]:
    """The folder's ``*.rr`` file names, sorted (only the names: they are all a
    folder listing has to hold at once)."""
    try:
        with os.scandir(root) as entries:
            names = [entry.name for entry in entries
                     if entry.name.endswith(BUNDLE_SUFFIX) and entry.is_file()]
    except OSError as exc:
        raise InputError(f"{Path(root)}: cannot list folder: {exc.strerror or exc}") from None
    names.sort()
    return names


def _folder_pairs(root: str, bundle_names: list[str]) -> Iterator[Pair]:
    # Spelt as pathlib spells ``Path(root) / name``: the paths are printed in every result.
    base = str(Path(root))

    def join(file_name: str) -> str:
        return file_name if base == "." else os.path.join(base, file_name)

    for bundle_name in bundle_names:
        name = bundle_name[: -len(BUNDLE_SUFFIX)]
        bundle = join(bundle_name)
        candidates = [join(name + suffix) for suffix in ACTUAL_SUFFIXES]
        actual = next((c for c in candidates if os.path.isfile(c)), None)
        if actual is None:
            wanted = " or ".join(os.path.basename(c) for c in candidates)
            yield Pair(name, bundle, None, f"MissingActual:no {wanted} beside it")
        else:
            yield Pair(name, bundle, actual)


def _manifest_text(path: Path) -> str:
    from agent_rerun.inputs import LIST_LIMIT, read_input

    try:
        text = read_input(path, "manifest", limit=LIST_LIMIT).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read manifest: not valid UTF-8") from None
    if text.startswith("\ufeff"):
        raise InputError(f"{path}: starts with a byte-order mark; save the manifest as "
                         "plain UTF-8")
    return text


def _manifest_pairs(path: Path, text: str) -> Iterator[Pair]:
    base = path.parent
    parse = None
    for number, raw in enumerate(_lines(text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if parse is None:  # the first meaningful line decides the format
            parse = _json_line if line.startswith("{") else _text_line
        yield parse(line, number, base, path)


#: Where ``str.splitlines`` splits.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines()`` one line at a time (a 100,000-line manifest is not copied)."""
    start = 0
    for match in _LINE_BREAK.finditer(text):
        yield text[start:match.start()]
        start = match.end()
    if start < len(text):
        yield text[start:]


def verify_pairs(
    pairs: Iterable[Pair], *, jobs: int = 1, policy: VerifyPolicy | None = None
) -> Generator[PairResult, None, None]:
    """One result per pair, in the pairs' order; ``jobs`` > 1 checks them in
    that many processes. ``policy`` (from ``make_policy`` or ``resolve_policy``;
    None checks no trust) is parsed once by its maker, not once per pair.
    Closing the iterator early, or an exception while it waits (a signal
    handler's), terminates those processes."""
    if policy is None:
        policy = NO_POLICY
    from agent_rerun.fastjcs import preload

    if jobs <= 1:
        preload()  # many small values ahead: the accelerator, if installed, pays off
        for pair in pairs:
            yield verify_pair(pair, policy)
        return
    import multiprocessing
    import multiprocessing.pool

    items = list(pairs)
    chunk = max(1, min(64, len(items) // (jobs * 8) or 1))
    # Stop signals stay blocked while the pool starts: its helper threads keep
    # them blocked for good, so every worker (also one forked later to replace
    # a dead one) starts blocked and unblocks only once _start_worker has set
    # its own dispositions; a forked copy of the parent's handler never runs.
    others = set(multiprocessing.active_children())  # the caller's own, never touched
    pool: multiprocessing.pool.Pool | None = None
    finished = False
    previous = _mask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        try:  # each worker receives the policy once, not once per chunk of pairs
            pool = multiprocessing.Pool(jobs, initializer=_start_worker, initargs=(policy,))
        finally:  # a signal that came meanwhile is handled now, with the pool in hand
            _mask(signal.SIG_SETMASK, previous)
        yield from pool.imap(_verify_pair_in_worker, items, chunksize=chunk)
        finished = True
    finally:
        # An exception (a signal turned into one) or an abandoned iteration ends
        # the workers too: none may outlive the run and keep checking pairs.
        if pool is not None:
            if finished:
                pool.close()
            else:
                pool.terminate()
            pool.join()
        for straggler in set(multiprocessing.active_children()) - others:
            straggler.kill()  # a worker forked to replace a dead one while terminating
            straggler.join()


def verify_batch(
    source: str | os.PathLike[str], *, jobs: int = 1, policy: VerifyPolicy | None = None
) -> Iterator[PairResult]:
    """``verify_pairs(pairs_from(source))``; raises ``InputError`` only when the
    folder or manifest itself cannot be used."""
    return verify_pairs(pairs_from(source), jobs=jobs, policy=policy)


def verify_pair(pair: Pair, policy: VerifyPolicy) -> PairResult:
    """Check one pair; never raises (module level so worker processes can run it)."""
    if pair.problem is not None or pair.actual is None:
        return PairResult(pair, VerifyResult(False, [pair.problem or "MissingActual"]))
    return PairResult(pair, verify_files(pair.bundle, pair.actual, policy=policy))


_worker_policy = NO_POLICY

#: The signals a user stops a run with: Ctrl-C, ``kill``, a closed terminal (those
#: the platform has). The CLI turns each into an orderly stop.
STOP_SIGNALS: frozenset[int] = frozenset(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _mask(how: int, signals: Iterable[int]) -> set[int]:
    """``pthread_sigmask`` where the platform has it (not on Windows, which spawns workers)."""
    if not hasattr(signal, "pthread_sigmask"):
        return set()
    return {int(sig) for sig in signal.pthread_sigmask(how, signals)}


def _start_worker(policy: VerifyPolicy) -> None:
    """Ctrl-C and hang-up reach the whole process group, but stopping is the parent's call:
    it terminates the workers (SIGTERM, whose default action a forked worker
    must have back in place of any handler the parent installed)."""
    from agent_rerun.fastjcs import preload

    global _worker_policy
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a hang-up reaches the group, too
    _mask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _worker_policy = policy
    preload()


def _verify_pair_in_worker(pair: Pair) -> PairResult:
    return verify_pair(pair, _worker_policy)


def _resolve(base: Path, value: str) -> str:
    return value if os.path.isabs(value) else str(base / value)


def _json_line(line: str, number: int, base: Path, manifest: Path) -> Pair:
    where = f"{manifest}:{number}"
    try:  # I-JSON like every other file we read: a duplicate "bundle" is refused
        entry = loads_ijson(line, where)
    except InputError as exc:
        return _bad_line(where, f"not I-JSON ({str(exc).removeprefix(where + ': ')})")
    if not isinstance(entry, dict):
        return _bad_line(where, "not a JSON object")
    unknown = entry.keys() - {"bundle", "actual", "name"}
    if unknown:
        return _bad_line(where, f"unknown field {', '.join(sorted(map(repr, unknown)))}")
    bundle, actual, name = entry.get("bundle"), entry.get("actual"), entry.get("name")
    if not isinstance(bundle, str) or not bundle:
        return _bad_line(where, "'bundle' must be a non-empty path string")
    if not isinstance(actual, str) or not actual:
        return _bad_line(where, "'actual' must be a non-empty path string")
    if name is not None and not isinstance(name, str):
        return _bad_line(where, "'name' must be a string")
    return Pair(name or _name_of(bundle), _resolve(base, bundle), _resolve(base, actual))


def _text_line(line: str, number: int, base: Path, manifest: Path) -> Pair:
    fields = line.split("\t") if "\t" in line else line.split()
    fields = [field.strip() for field in fields]
    if len(fields) != 2 or not all(fields):
        return _bad_line(f"{manifest}:{number}",
                         f"expected two columns BUNDLE ACTUAL, got {len(fields)}")
    bundle, actual = fields
    return Pair(_name_of(bundle), _resolve(base, bundle), _resolve(base, actual))


def _bad_line(where: str, reason: str) -> Pair:
    return Pair(where, "", None, f"BadManifestLine:{where}: {reason}")


def _name_of(bundle: str) -> str:
    name = os.path.basename(bundle)
    return name[: -len(BUNDLE_SUFFIX)] if name.endswith(BUNDLE_SUFFIX) else name
