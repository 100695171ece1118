"""``rerun keygen``, ``rerun pubkey`` and ``rerun keys list``: keys without exposing them.

Every command goes through the backend registry, so the same commands work for
files, keyrings and tokens. Output is public information only: URI, public key
and fingerprint. Passphrases come from ``RERUN_KEY_PASSPHRASE`` or a prompt on a
terminal, never from an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agent_rerun.cli.common import printable, prompt_if_interactive, reports_errors, warn
from agent_rerun.cli.trust_line import TrustLineOptions, trust_line_options
from agent_rerun.pubkey import b64_public_key

if TYPE_CHECKING:
    from agent_rerun.signer import KeyInfo


def _print_key(uri: str, public_key: bytes, description: str = "") -> None:
    from agent_rerun.pubkey import fingerprint

    click.echo(printable(f"key:          {uri}"))
    click.echo(f"public key:   {b64_public_key(public_key)}")
    click.echo(f"fingerprint:  {fingerprint(public_key)}")
    if description:
        click.echo(printable(f"description:  {description}"))


@click.command("keygen")
@click.argument("uri")
@click.option("--force", is_flag=True,
              help="Replace an existing key file (written in full first); on a PKCS#11 "
              "token, remove only an orphaned public-key object (never a private key).")
@reports_errors
def keygen_command(uri: str, force: bool) -> None:
    """Create a new Ed25519 key at URI and print its public key.

    URI is a file path (or file:PATH), keyring:NAME or pkcs11:... (ssh-agent: keys
    are made with ssh-keygen and added with ssh-add). A file key
    is encrypted when RERUN_KEY_PASSPHRASE is set or a passphrase is typed at
    the prompt (leave it empty for an unencrypted key).
    """
    from agent_rerun.signer import generate_key

    info = generate_key(uri, force=force, prompt=prompt_if_interactive())
    _print_key(info.uri, info.public_key, info.description)


@click.command("pubkey")
@click.argument("uri")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "ssh", "base64", "allowed-signers"]),
    default="text",
    show_default=True,
    help="text: URI, key and fingerprint; ssh: an OpenSSH public key line; base64: the raw "
         "key; allowed-signers: a trust-file line (needs --principal).",
)
@trust_line_options
@reports_errors
def pubkey_command(uri: str, output_format: str, line_options: TrustLineOptions) -> None:
    """Print the public key of the key at URI (never the private key).

    With --format allowed-signers, print the line that trusts it, ready to append
    to a trust file (rerun verify --trusted-keys, ssh-keygen -Y verify -f).
    """
    from agent_rerun.pubkey import ssh_public_key_line
    from agent_rerun.signer import display_uri, public_key_of

    line_options.check(output_format)
    public_key = public_key_of(uri, prompt=prompt_if_interactive())
    if output_format == "allowed-signers":
        click.echo(line_options.line(public_key, display_uri(uri)))
    elif output_format == "ssh":
        click.echo(ssh_public_key_line(public_key))
    elif output_format == "base64":
        click.echo(b64_public_key(public_key))
    else:
        _print_key(display_uri(uri), public_key)


@click.group("keys")
def keys_group() -> None:
    """Inspect keys held by a backend."""


@keys_group.command("list")
@click.argument("uri")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "allowed-signers"]),
    default="text",
    show_default=True,
    help="text: one block per key; allowed-signers: one trust-file line per key and per "
         "live version (needs --principal).",
)
@trust_line_options
@reports_errors
def list_command(uri: str, output_format: str, line_options: TrustLineOptions) -> None:
    """List the keys a backend holds at URI (a keyring service, a token, a key file)."""
    from agent_rerun.signer import display_uri, list_keys

    line_options.check(output_format)
    infos = list_keys(uri, prompt=prompt_if_interactive())
    if not infos:
        click.echo(printable(f"no keys at {display_uri(uri)}"), err=True)
        return
    if output_format == "allowed-signers":
        _print_trust_lines(infos, line_options)
        return
    for index, info in enumerate(infos):
        if index:
            click.echo("")
        if info.unusable:
            click.echo(printable(f"key:          {info.uri}"))
            click.echo(printable(f"unusable:     {info.unusable}"))
            if info.description:
                click.echo(printable(f"description:  {info.description}"))
            continue
        _print_key(info.uri, info.public_key, info.description)


def _print_trust_lines(infos: list[KeyInfo], line_options: TrustLineOptions) -> None:
    """One line per listed key. A backend with key versions lists each live version as
    its own key (Transit does), so each gets its line. Keys that cannot sign are
    named on stderr only: stdout stays a file ssh-keygen and ``--trusted-keys`` read."""
    for info in infos:
        if info.unusable:
            warn(f"skipped {info.uri}: {info.unusable}")
            continue
        click.echo(line_options.line(info.public_key, info.uri))


@keys_group.command("rotate")
@click.argument("uri")
@reports_errors
def rotate_command(uri: str) -> None:
    """Add a new version to the key at URI (where the backend can) and print its public key.

    Older versions stay valid for verification until the backend retires them;
    add the new public key to your trust file (rerun keys list URI shows all).
    """
    from agent_rerun.signer import rotate_key

    info = rotate_key(uri, prompt=prompt_if_interactive())
    _print_key(info.uri, info.public_key, info.description)
