"""``rerun verify``: one JSON result on stdout, exit 0 only when verified.

With ``--batch FOLDER_OR_MANIFEST`` it checks many pairs in one process and
prints JSON Lines instead (one object per pair), then a summary on stderr.
"""

from __future__ import annotations

from typing import Any

import click

from agent_rerun.cli.common import EXIT_FAILED, EXIT_OK, one_line, result_text
from agent_rerun.cli.options import trust_options


@click.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", required=False)
@click.argument("actual_path", metavar="ACTUAL", required=False)
@trust_options
@click.option("--require-signature", is_flag=True,
              help="Fail unsigned bundles (implied by any trusted key).")
@click.option("--batch", "batch_source", metavar="FOLDER_OR_MANIFEST",
              help="Verify many pairs instead of BUNDLE ACTUAL: a folder (NAME.rr with "
                   "NAME.actual.json or NAME.json) or a manifest (JSON Lines or two columns).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for --batch.")
@click.pass_context
def verify_command(ctx: click.Context, bundle_path: str | None, actual_path: str | None,
                   trusted_key_texts: tuple[str, ...], trust_file: str | None,
                   revoked_files: tuple[str, ...], require_signature: bool,
                   batch_source: str | None, jobs: int) -> None:
    """Check an ACTUAL record (inputs sent, output produced) against a BUNDLE.

    Prints {"verified", "errors", "warnings"} as JSON; exit 0 when verified, 1 when not.
    With --batch, prints one JSON line per pair (its name, bundle and actual paths
    plus that object) and a summary on stderr; exit 0 only when every pair verified.
    """
    from agent_rerun.errors import InputError
    from agent_rerun.policy import resolve_policy

    if batch_source is not None:
        if bundle_path is not None:
            raise click.UsageError("give either BUNDLE ACTUAL or --batch, not both")
        from agent_rerun.cli.verify_batch import run_batch

        run_batch(batch_source, jobs, trusted_key_texts, trust_file, revoked_files,
                  require_signature)
        return
    for param in ctx.command.params:
        if param.name in ("bundle_path", "actual_path") and ctx.params[param.name] is None:
            raise click.MissingParameter(ctx=ctx, param=param)
    assert bundle_path is not None and actual_path is not None
    from agent_rerun.verify import VerifyResult, verify_files

    try:
        policy = resolve_policy(trusted_key_texts, trust_file, revoked_files,
                                require_signature=require_signature)
    except InputError as exc:
        result = VerifyResult(False, [f"ConfigError:{exc}"])
    else:
        result = verify_files(bundle_path, actual_path, policy=policy)
    emit_result(result.to_json())
    if not result.verified:
        click.echo(f"rerun: not verified: {one_line(result.errors[0])}", err=True)
    raise SystemExit(EXIT_OK if result.verified else EXIT_FAILED)


def emit_result(payload: dict[str, Any]) -> None:
    """Print a result the way the published CLI does (indented JSON, trailing newline)."""
    click.echo(result_text(payload))
