"""``rerun capture`` and ``rerun sign``: write bundles, signed by any key URI."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from agent_rerun.cli.common import (
    EXIT_FAILED,
    EXIT_KEY,
    describe,
    fail,
    one_line,
    progress,
    prompt_if_interactive,
    read_bundle_file,
    read_checked,
    reports_errors,
)
from agent_rerun.errors import InputError, SignerError, ValidationError

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future


@click.command("capture")
@click.argument("steps", nargs=-1, required=True, metavar="STEP...")
@click.option("-o", "--output", "output", required=True, metavar="OUT",
              help="Bundle file ('-' for stdout), or a folder when capturing several steps.")
@click.option("--key", "key_uri", metavar="URI",
              help="Key to sign with: a path, file:, keyring:, pkcs11: or ssh-agent: URI "
                   "(default: [sign] key in the config file).")
@click.option("--unsigned", is_flag=True, help="Do not sign, even if the config names a key.")
@reports_errors
def capture_command(steps: tuple[str, ...], output: str, key_uri: str | None,
                    unsigned: bool) -> None:
    """Turn step records (JSON) into rerun.json v0.1 bundles.

    With several STEP files (or an existing folder as OUT) each bundle is
    written to OUT/<step name>.rr, all signed in one key session.
    """
    from agent_rerun.capture import CaptureOptions

    _check_output(output)
    # A trailing separator names a folder, as it does for cp and rsync.
    batch = len(steps) > 1 or os.path.isdir(output) or output.endswith(("/", os.sep))
    if batch and output == "-":
        raise click.UsageError("several steps need a folder for -o, not '-'")
    targets = _batch_targets(steps, output) if batch else [(steps[0], output)]
    failures = 0
    with _signer_for(key_uri, unsigned) as signer:
        if not batch:
            step_path, out_path = targets[0]
            try:
                write_bundle(capture_file(step_path, CaptureOptions(signer=signer)), out_path)
            except SignerError as exc:  # the key is unusable: stop, naming the step
                raise SignerError(f"{step_path}: {exc}") from None
        else:
            failures = _capture_batch(targets, signer)
    if failures:
        fail(f"{failures} of {len(targets)} steps could not be captured", EXIT_FAILED)


@click.command("sign")
@click.argument("bundle_path", metavar="BUNDLE")
@click.option("--key", "key_uri", metavar="URI",
              help="Key to sign with (default: [sign] key in the config file).")
@click.option("-o", "--output", "output", metavar="OUT",
              help="Where to write the signed bundle (default: replace BUNDLE atomically).")
@reports_errors
def sign_command(bundle_path: str, key_uri: str | None, output: str | None) -> None:
    """Sign or re-sign an existing bundle, replacing any signature."""
    from agent_rerun.capture import sign_bundle

    if output is not None:
        _check_output(output)
    bundle = read_bundle_file(bundle_path)
    with _signer_for(key_uri, unsigned=False) as signer:
        if signer is None:
            fail("no key to sign with: pass --key URI or set [sign] key in the config file",
                 EXIT_KEY)
        signed = sign_bundle(bundle, signer)
    write_bundle(signed, bundle_path if output is None else output)


#: Steps captured before their bundles are signed together: a signer that batches
#: (a signing service, a token signing while we check) gets whole chunks.
SIGN_CHUNK = 1000


def _capture_batch(targets: list[tuple[str, str]], signer: Any) -> int:
    """Capture, sign in chunks, write in order; returns how many steps failed (each reported).

    The signer works on one chunk in a second thread while this one captures
    the next chunk and then writes the chunk before: a signing service's round
    trips and a token's ``C_Sign`` release the GIL, so capture and signing
    overlap instead of taking turns. The signer is still used by one thread at
    a time, chunk after chunk, and bundles are written in their steps' order.

    A step that cannot be read or captured, or whose bundle cannot be written,
    is reported in its turn and the batch goes on. When a chunk cannot be signed
    as a whole, it is signed again one by one before the next chunk is sent, so
    a signer failure stops the batch with every earlier bundle written and the
    error naming its step, as when each bundle was signed alone.
    """
    from concurrent.futures import ThreadPoolExecutor

    from agent_rerun.fastjcs import preload

    preload()  # many small values ahead: the accelerator, if installed, pays off
    failures = 0
    pending: _Chunk | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerun-sign") as pool:
        try:
            for chunk in _captured_chunks(targets, signer):  # captured while `pending` signs
                if pending is not None:
                    signed = pending.signed()
                    if signed is None:  # one by one, before the signer gets the next chunk
                        failures += pending.write_one_by_one(signer)
                    chunk.start(pool, signer)
                    if signed is not None:  # written while the next chunk is being signed
                        failures += pending.write(signed)
                else:
                    chunk.start(pool, signer)
                pending = chunk
            if pending is not None:
                signed = pending.signed()
                failures += (pending.write_one_by_one(signer) if signed is None
                             else pending.write(signed))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return failures


def _captured_chunks(targets: list[tuple[str, str]], signer: Any) -> Iterator[_Chunk]:
    """The steps captured, SIGN_CHUNK at a time, with their signing payloads when signed."""
    from agent_rerun.capture import CaptureOptions

    steps: list[tuple[str, str, Any]] = []
    for step_path, out_path in progress(targets, label="capturing", enabled=True):
        try:
            steps.append((step_path, out_path, capture_file(step_path, CaptureOptions())))
        except (InputError, ValidationError, OSError) as exc:
            steps.append((step_path, out_path, exc))
        if len(steps) >= SIGN_CHUNK:
            yield _Chunk(steps, signed=signer is not None)
            steps = []
    if steps:
        yield _Chunk(steps, signed=signer is not None)


class _Chunk:
    """One chunk of a batch: its steps (a bundle, or the error that step met), in order."""

    def __init__(self, steps: list[tuple[str, str, Any]], *, signed: bool) -> None:
        from agent_rerun.capture import unsigned_payloads

        self.steps = steps
        captured = [bundle for _, _, bundle in steps if not isinstance(bundle, Exception)]
        self.unsigned: list[Any] = captured
        self.payloads: list[bytes] = []
        if signed:
            self.unsigned, self.payloads = unsigned_payloads(captured)
        self._signatures: Future[list[bytes]] | None = None
        self._public_key = b""

    def start(self, pool: Executor, signer: Any) -> None:
        """Send the chunk's payloads to ``signer`` in ``pool``'s thread (nothing when unsigned)."""
        from agent_rerun.capture import checked_signatures

        if signer is not None and self.payloads:
            self._public_key = bytes(signer.public_key)
            self._signatures = pool.submit(checked_signatures, signer, self.payloads)

    def signed(self) -> list[Any] | None:
        """The chunk's bundles signed (waiting for the signer), or None when the batch failed."""
        from agent_rerun.capture import with_signatures

        if self._signatures is None:
            return self.unsigned
        try:
            signatures = self._signatures.result()
        except SignerError:  # then one by one: the failing step stops us
            return None
        return with_signatures(self.unsigned, signatures, self._public_key)

    def write(self, signed: list[Any]) -> int:
        """Write the bundles (made durable together, named in order), then report each
        step's error in order; returns the failures."""
        from agent_rerun.atomic import write_outputs
        from agent_rerun.canonical import jcs_bytes
        from agent_rerun.signature import signed_bundle_bytes

        outputs = [out_path for _, out_path, bundle in self.steps
                   if not isinstance(bundle, Exception)]
        if self.payloads:  # the signed bytes are the payload with the signature put in
            data = [signed_bundle_bytes(payload, unsigned, bundle["signature"])
                    for payload, unsigned, bundle in zip(self.payloads, self.unsigned, signed,
                                                         strict=True)]
        else:
            data = [jcs_bytes(bundle) for bundle in signed]
        errors = iter(write_outputs(list(zip(outputs, data, strict=True))))
        failures = 0
        for step_path, out_path, bundle in self.steps:
            if isinstance(bundle, Exception):
                failures += _report_step_error(bundle, step_path)
                continue
            error = next(errors)
            if error is not None:
                failures += _report_step_error(error, out_path)
        return failures

    def write_one_by_one(self, signer: Any) -> int:
        """:meth:`write`, each bundle signed alone first: a signer failure stops the
        batch, naming its step, with every bundle before it written."""
        from agent_rerun.capture import sign_bundle

        failures = 0
        for step_path, out_path, bundle in self.steps:
            if isinstance(bundle, Exception):
                failures += _report_step_error(bundle, step_path)
                continue
            try:
                bundle = sign_bundle(bundle, signer)
            except SignerError as exc:  # the key is unusable: stop, naming the step
                raise SignerError(f"{step_path}: {exc}") from None
            failures += _write_step(bundle, out_path)
        return failures


def _write_step(bundle: Any, out_path: str) -> int:
    """Write one bundle of a batch; a write error is reported and counted (1), not raised."""
    try:
        write_bundle(bundle, out_path)
    except OSError as exc:
        return _report_step_error(exc, out_path)
    return 0


def _report_step_error(exc: Exception, path: str) -> int:
    """One error line for a step the batch skips (an OS error names its file, else
    ``path``); the batch goes on."""
    click.echo(f"rerun: error: {one_line(describe(exc, path))}", err=True)
    return 1


def write_bundle(bundle: Any, out_path: str) -> None:
    """Write the JCS bytes exactly (no newline): a regular file atomically, keeping
    its mode; a device, FIFO or socket directly, keeping its type (docs/outputs.md)."""
    from agent_rerun.atomic import write_output
    from agent_rerun.canonical import jcs_bytes

    data = jcs_bytes(bundle)
    if out_path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    write_output(out_path, data, mode=0o644)


def _check_output(output: str) -> None:
    """An empty -o names nothing: a usage error, never "write over the input"."""
    if not output:
        raise click.BadParameter("must name a file, a folder or '-'", param_hint="'-o'")


def capture_file(step_path: str, options: Any) -> Any:
    """Read, validate and capture one step file; errors name the file and the field."""
    from agent_rerun.capture import capture_read

    return read_checked(step_path, "step record", lambda step: capture_read(step, options))


def _batch_targets(steps: tuple[str, ...], folder: str) -> list[tuple[str, str]]:
    from pathlib import Path

    if "-" in steps:
        raise click.UsageError("stdin ('-') can only be captured on its own")
    Path(folder).mkdir(parents=True, exist_ok=True)
    targets: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for step in steps:
        target = os.path.join(folder, Path(step).stem + ".rr")
        if target in seen:
            fail(f"{step} and {seen[target]} would both be written to {target}")
        seen[target] = step
        targets.append((step, target))
    return targets


@contextlib.contextmanager
def _signer_for(key_uri: str | None, unsigned: bool) -> Iterator[Any]:
    if unsigned:
        if key_uri:
            raise click.UsageError("--unsigned and --key contradict each other")
        yield None
        return
    if key_uri is None:
        from agent_rerun.config import load_config
        from agent_rerun.errors import InputError, SignerError

        try:
            key_uri = load_config().sign_key
        except InputError as exc:  # a key was to be loaded from it: a key error (exit 3)
            raise SignerError(str(exc)) from None
    if key_uri is None:
        yield None
        return
    from agent_rerun.signer import closing_signer, load_signer

    signer = load_signer(key_uri, prompt=prompt_if_interactive())
    with closing_signer(signer):
        yield signer


