"""``rerun verify --batch``: JSON Lines per pair on stdout, one summary line on stderr.

Loaded only when ``--batch`` is given, so single-pair start-up stays lean.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator

import click

from agent_rerun.cli.common import EXIT_FAILED, EXIT_OK, fail, progress


def run_batch(source: str, jobs: int, trusted_key_texts: tuple[str, ...],
              trust_file: str | None, revoked_files: tuple[str, ...],
              require_signature: bool) -> None:
    """Verify every pair of ``source``; exit 0 only when all verified."""
    from agent_rerun.batch import iter_pairs, verify_pairs
    from agent_rerun.errors import InputError
    from agent_rerun.policy import resolve_policy

    try:
        policy = resolve_policy(trusted_key_texts, trust_file, revoked_files,
                                require_signature=require_signature)
        # Listed (or read) now, formed one at a time as they are checked:
        # 100,000 pairs take little more memory than 1,000.
        pairs = iter_pairs(source)
    except InputError as exc:
        fail(str(exc), EXIT_FAILED)
    if not len(pairs):
        fail(f"{source}: no bundle/actual pairs found", EXIT_FAILED)
    verified = checked = 0
    out = sys.stdout
    stopped_by: int | None = None
    with _signals_stop_the_run():
        results = verify_pairs(pairs, jobs=jobs, policy=policy)
        try:
            # No bar when stdout is the same terminal: the results would tear it apart.
            for outcome in progress(results, label="verifying", length=len(pairs),
                                    enabled=not sys.stdout.isatty()):
                out.write(_json_line(outcome.to_json()) + "\n")
                checked += 1
                verified += outcome.verified
        except _Interrupted as exc:
            stopped_by = exc.signum
        finally:
            results.close()  # the workers are gone once this returns
        out.flush()
    failed = checked - verified
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        click.echo(f"rerun: interrupted by {name} after {checked} of {len(pairs)} pairs: "
                   f"{verified} verified, {failed} failed, {len(pairs) - checked} not checked",
                   err=True)
        raise SystemExit(128 + stopped_by)
    click.echo(f"rerun: {verified} of {len(pairs)} pairs verified, {failed} failed", err=True)
    raise SystemExit(EXIT_OK if failed == 0 else EXIT_FAILED)


#: ``json.dumps(value, ensure_ascii=False)`` without building an encoder for each
#: of a batch's lines (the same options, so the same text).
_json_line = json.JSONEncoder(ensure_ascii=False).encode


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    """Turn the first stop signal into ``_Interrupted`` in the main thread.

    The default actions would kill this process at once and leave its workers
    running; an exception unwinds through ``verify_pairs``, which terminates
    them. Later signals are ignored so they cannot cut that clean-up short.
    """
    seen: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if not seen:
            seen.append(signum)
            raise _Interrupted(signum)

    from agent_rerun.batch import STOP_SIGNALS

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
