"""``rerun verify --batch``: JSON Lines per pair on stdout, one summary line on stderr.

Loaded only when ``--batch`` is given, so single-pair start-up stays lean.
"""

from __future__ import annotations

import json
import sys

import click

from agent_rerun.cli.common import EXIT_FAILED, EXIT_OK, fail, progress


def run_batch(source: str, jobs: int, trusted_key_texts: tuple[str, ...],
              trust_file: str | None, revoked_files: tuple[str, ...],
              require_signature: bool) -> None:
    """Verify every pair of ``source``; exit 0 only when all verified."""
    from agent_rerun.batch import pairs_from, verify_pairs
    from agent_rerun.errors import InputError
    from agent_rerun.policy import resolve_policy

    try:
        policy = resolve_policy(trusted_key_texts, trust_file, revoked_files,
                                require_signature=require_signature)
        pairs = pairs_from(source)
    except InputError as exc:
        fail(str(exc), EXIT_FAILED)
    if not pairs:
        fail(f"{source}: no bundle/actual pairs found", EXIT_FAILED)
    verified = 0
    out = sys.stdout
    # No bar when stdout is the same terminal: the results would tear it apart.
    outcomes = progress(verify_pairs(pairs, jobs=jobs, policy=policy), label="verifying",
                        length=len(pairs), enabled=not sys.stdout.isatty())
    for outcome in outcomes:
        out.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        verified += outcome.verified
    out.flush()
    failed = len(pairs) - verified
    click.echo(f"rerun: {verified} of {len(pairs)} pairs verified, {failed} failed", err=True)
    raise SystemExit(EXIT_OK if failed == 0 else EXIT_FAILED)
