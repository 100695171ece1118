"""``rerun inspect``: what a bundle pins, who signed it, and whether that signer is trusted.

A reading aid, not a gate: it exits 0 for a well-formed bundle with a valid or
absent signature, whoever signed it; 1 when the bundle cannot be read, breaks
the schema, or carries a bad signature. Scripts that must decide use
``rerun verify``. Like verify it stays pure software: no key store is touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from agent_rerun.cli.common import EXIT_FAILED, printable, read_bundle_file, reports_errors
from agent_rerun.cli.options import trust_options

if TYPE_CHECKING:
    from agent_rerun.policy import VerifyPolicy

_WIDTH = 15


@click.command("inspect")
@click.argument("bundle_path", metavar="BUNDLE")
@trust_options
@reports_errors
def inspect_command(
    bundle_path: str, trusted_key_texts: tuple[str, ...], trust_file: str | None,
    revoked_files: tuple[str, ...],
) -> None:
    """Summarise BUNDLE: model, sampling, tolerance, hashes, signature and signer trust.

    Trusted keys come from the flags, else from the config file's [verify] section;
    revocation files from both.
    """
    from agent_rerun.policy import resolve_policy

    policy = resolve_policy(trusted_key_texts, trust_file, revoked_files)
    bundle = read_bundle_file(bundle_path)
    _line("bundle", bundle_path)
    _describe_contents(bundle)
    good_signature = _describe_signature(bundle, policy)
    if not good_signature:
        raise SystemExit(EXIT_FAILED)


def _line(label: str, value: object) -> None:
    click.echo(printable(f"{label + ':':<{_WIDTH}} {value}"))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _describe_contents(bundle: Mapping[str, Any]) -> None:
    model = bundle["model"]
    _line("rerun_version", bundle["rerun_version"])
    fingerprint = f" (fingerprint {model['fingerprint']})" if "fingerprint" in model else ""
    _line("model", f"{model['vendor']} / {model['id']}{fingerprint}")
    _line("sampling", " ".join(f"{k}={_json(v)}" for k, v in sorted(bundle["sampling"].items())))
    runtime = bundle["runtime"]
    tools = runtime.get("tool_versions") or {}
    versions = f" ({', '.join(f'{k} {v}' for k, v in sorted(tools.items()))})" if tools else ""
    _line("runtime", f"{runtime['class']}{versions}")
    tolerance = bundle["tolerance"]
    threshold = f" (threshold {_json(tolerance['threshold'])})" if "threshold" in tolerance else ""
    _line("tolerance", f"{tolerance['level']}{threshold}")
    click.echo("inputs:")
    for name, digest in sorted(bundle["inputs"].items()):
        click.echo(printable(f"  {name:<22} {digest}"))
    click.echo("expected:")
    expected = bundle["expected"]
    if "transcript_sha256" in expected:
        click.echo(printable(f"  {'transcript_sha256':<22} {expected['transcript_sha256']}"))
    if "semantic_embedding" in expected:
        click.echo(
            f"  {'semantic_embedding':<22} {_embedding_size(expected['semantic_embedding'])}"
        )


def _embedding_size(text: str) -> str:
    from agent_rerun.b64 import Base64Error, decode_strict

    try:
        raw = decode_strict(text)
    except Base64Error as exc:
        return f"not valid base64 ({exc})"
    if len(raw) % 4:
        return f"{len(raw)} bytes, not a whole number of float32 values"
    return f"{len(raw) // 4} float32 values"


def _describe_signature(bundle: Mapping[str, Any], policy: VerifyPolicy) -> bool:
    """Print signature, signer and trust lines; False when the signature is bad."""
    from agent_rerun.pubkey import b64_public_key, fingerprint
    from agent_rerun.signature import SignatureError, decode_signature_block
    from agent_rerun.verify import check_signature

    if "signature" not in bundle:
        _line("signature", "none (unsigned bundle)")
        return True
    reason = check_signature(bundle)
    try:
        public_key: bytes | None = decode_signature_block(bundle["signature"])[0]
    except SignatureError:
        public_key = None
    _line("signature", "valid (ed25519)" if reason is None else f"INVALID ({reason})")
    if public_key is not None and len(public_key) == 32:
        _line("signer", b64_public_key(public_key))
        _line("fingerprint", fingerprint(public_key))
    if reason is not None:
        _line("trusted", "n/a (the signature is not valid)")
        return False
    assert public_key is not None  # a valid signature decoded its key
    _line("revoked", _revocation_verdict(public_key, policy))
    _line("trusted", _trust_verdict(public_key, policy))
    return True


def _revocation_verdict(public_key: bytes, policy: VerifyPolicy) -> str:
    if policy.revoked is None:
        return "not checked (no revocation list given or configured)"
    sources = ", ".join(policy.revoked.sources) or "the given list"
    if policy.revoked.is_revoked(public_key):
        return f"YES (listed in {sources}): verify fails with RevokedSigner"
    return f"no (checked against {sources})"


def _trust_verdict(public_key: bytes, policy: VerifyPolicy) -> str:
    from agent_rerun.trust import find_trusted

    keys = policy.trusted
    if keys is None:
        return "unknown (no trusted keys given or configured)"
    where = policy.trust_source or "the given keys"
    match = find_trusted(keys, public_key)
    if match is None:
        return (
            f"NO (not among the {len(keys)} trusted keys from {where}, "
            "or outside its namespaces or validity period)"
        )
    named = f', as "{match.name}"' if match.name else ""
    window = ""
    if match.valid_after or match.valid_before:
        after = match.valid_after.isoformat() if match.valid_after else "any time"
        before = match.valid_before.isoformat() if match.valid_before else "no end"
        window = f", valid {after} to {before}"
    spaces = f", namespaces {','.join(match.namespaces)}" if match.namespaces else ""
    return f"yes{named}{spaces}{window} (by {where})"
