"""``rerun verify``: one JSON result on stdout, exit 0 only when verified."""

from __future__ import annotations

import json
from typing import Any

import click

from agent_rerun.cli.common import EXIT_FAILED, EXIT_OK


@click.command("verify")
@click.argument("bundle_path", metavar="BUNDLE")
@click.argument("actual_path", metavar="ACTUAL")
@click.option("--trusted-key", "trusted_key_texts", multiple=True, metavar="KEY",
              help="A trusted signer: base64 raw public key or an 'ssh-ed25519 AAAA...' line. "
                   "Repeatable.")
@click.option("--trusted-keys", "trust_file", metavar="FILE",
              help="Trusted signers in OpenSSH allowed_signers format (or base64 key per line).")
@click.option("--require-signature", is_flag=True,
              help="Fail unsigned bundles (implied by any trusted key).")
def verify_command(bundle_path: str, actual_path: str, trusted_key_texts: tuple[str, ...],
                   trust_file: str | None, require_signature: bool) -> None:
    """Check an ACTUAL record (inputs sent, output produced) against a BUNDLE.

    Prints {"verified", "errors", "warnings"} as JSON; exit 0 when verified, 1 when not.
    """
    from agent_rerun.errors import InputError
    from agent_rerun.verify import VerifyResult, verify_files

    try:
        policy = trust_policy(trusted_key_texts, trust_file, require_signature)
    except InputError as exc:
        result = VerifyResult(False, [f"ConfigError:{exc}"])
    else:
        result = verify_files(bundle_path, actual_path, **policy)
    emit_result(result.to_json())
    if not result.verified:
        click.echo(f"rerun: not verified: {result.errors[0]}", err=True)
    raise SystemExit(EXIT_OK if result.verified else EXIT_FAILED)


def trust_policy(trusted_key_texts: tuple[str, ...], trust_file: str | None,
                 require_signature: bool) -> dict[str, Any]:
    """The keyword arguments for ``verify``: flags win over the config file."""
    from agent_rerun.config import load_config

    config = load_config()
    keys: list[Any] | None = None
    if trusted_key_texts or trust_file:
        keys = _parse_keys(trusted_key_texts, trust_file)
    elif config.trusted_keys or config.trusted_keys_file:
        keys = _parse_keys(tuple(config.trusted_keys), config.trusted_keys_file)
    return {
        "trusted_keys": keys,
        "require_signature": require_signature or config.require_signature,
    }


def _parse_keys(texts: tuple[str, ...], trust_file: Any) -> list[Any]:
    from agent_rerun.errors import InputError
    from agent_rerun.trust import parse_trust_file, parse_trusted_key

    keys: list[Any] = []
    for text in texts:
        try:
            keys.append(parse_trusted_key(text))
        except (ValueError, InputError) as exc:
            raise InputError(f"--trusted-key: {exc}") from None
    if trust_file:
        keys.extend(parse_trust_file(trust_file))
    return keys


def emit_result(payload: dict[str, Any]) -> None:
    """Print a result the way the published CLI does (indented JSON, trailing newline)."""
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
