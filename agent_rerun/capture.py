"""Step record -> bundle: hash the inputs, pin the parameters, sign if asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_rerun.canonical import checked_sha256_of_jcs
from agent_rerun.errors import SignerError
from agent_rerun.schema import RERUN_VERSION, Bundle, integral, validate_step_record
from agent_rerun.signature import (
    SignatureError,
    check_ed25519,
    signature_block,
    signing_payload,
)

if TYPE_CHECKING:
    from agent_rerun.signer import Signer


@dataclass(frozen=True)
class CaptureOptions:
    """How to sign a captured bundle: a ``signer`` (any backend), or a raw 32-byte
    ``signing_key`` as in the published package. Neither means unsigned."""

    signing_key: bytes | None = None
    signer: Signer | None = None


def capture(step: Any, opts: CaptureOptions | None = None) -> Bundle:
    """Build a ``rerun.json`` v0.1 bundle from a step record, signed when ``opts`` says so.

    Raises ``ValidationError`` naming the field when the step record is invalid,
    and ``SignerError`` when signing fails.
    """
    # The hashed parts are checked as they are hashed (checked_sha256_of_jcs).
    return _capture(step, opts, checked=("inputs.*", "expected.transcript"))


def capture_read(step: Any, opts: CaptureOptions | None = None) -> Bundle:
    """:func:`capture` for a step record as the I-JSON reader returned it.

    The reader (``agent_rerun.ijson``) has already walked every value of the
    document against the JCS domain, so only the schema rules are checked
    here: walking the values again was about a fifth of a small step's capture.
    """
    return _capture(step, opts, checked=("*",))


def _capture(step: Any, opts: CaptureOptions | None, checked: tuple[str, ...]) -> Bundle:
    opts = opts or CaptureOptions()
    if opts.signing_key is not None and opts.signer is not None:
        raise ValueError("give CaptureOptions either signing_key or signer, not both")
    validate_step_record(step, checked=checked)
    bundle = bundle_from_step(step)
    if opts.signer is not None:
        return sign_bundle(bundle, opts.signer)
    if opts.signing_key is not None:
        return sign_bundle(bundle, opts.signing_key)
    return bundle


def bundle_from_step(step: Mapping[str, Any]) -> Bundle:
    """The unsigned bundle for a step record whose shape is valid.

    Raises ``ValidationError`` naming the place when a hashed part holds a value
    outside the JCS domain.
    """
    inputs = step["inputs"]
    # Hashed parts sit two levels below the step's root (step.inputs.messages):
    # the nesting limit counts from there, as it does when the step is a file.
    hashed_inputs = {
        "system_prompt_sha256": checked_sha256_of_jcs(inputs["system_prompt"],
                                                      "step.inputs.system_prompt", _HASHED_DEPTH),
        "messages_sha256": checked_sha256_of_jcs(inputs["messages"], "step.inputs.messages",
                                                 _HASHED_DEPTH),
    }
    if "tools" in inputs:
        hashed_inputs["tools_sha256"] = checked_sha256_of_jcs(inputs["tools"],
                                                              "step.inputs.tools", _HASHED_DEPTH)
    expected_in = step["expected"]
    expected: dict[str, Any] = {}
    if "transcript" in expected_in:  # null is a value, hashed as the JCS text null
        expected["transcript_sha256"] = checked_sha256_of_jcs(expected_in["transcript"],
                                                              "step.expected.transcript",
                                                              _HASHED_DEPTH)
    if "semantic_embedding" in expected_in:
        expected["semantic_embedding"] = expected_in["semantic_embedding"]
    return {
        "rerun_version": RERUN_VERSION,
        "model": _copy_json(step["model"]),
        "sampling": {key: integral(value) if key in _INTEGER_FIELDS else value
                     for key, value in step["sampling"].items()},
        "inputs": hashed_inputs,
        "runtime": _copy_json(step["runtime"]),
        "expected": expected,
        "tolerance": _copy_json(step["tolerance"]),
    }


_HASHED_DEPTH = 2
_INTEGER_FIELDS = frozenset({"seed", "max_tokens"})


def _copy_json(value: Any) -> Any:
    """A copy of a small JSON value, so editing the step later cannot edit the bundle.

    These parts are shallow (at most two levels), where this is several times
    cheaper than ``copy.deepcopy``.
    """
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def sign_bundles(bundles: Sequence[Mapping[str, Any]], signer: Signer) -> list[Bundle]:
    """Copies of ``bundles`` signed by ``signer``, in one batch when the signer can batch.

    A signing service answers a batch in one round trip (see
    :class:`~agent_rerun.signer.SignsMany`); other signers sign one by one.
    Each signature is checked as :func:`sign_bundle` checks it.
    """
    _require_signer(signer)
    unsigned, payloads = unsigned_payloads(bundles)
    return with_signatures(unsigned, checked_signatures(signer, payloads), signer.public_key)


def unsigned_payloads(bundles: Sequence[Mapping[str, Any]]) -> tuple[list[Bundle], list[bytes]]:
    """The unsigned copies of ``bundles`` and their signing payloads (JCS bytes).

    The first of :func:`sign_bundles`' three steps, apart so a batch can build
    the next chunk's payloads while the signer is busy with this one's.
    """
    unsigned = [{key: value for key, value in b.items() if key != "signature"} for b in bundles]
    return unsigned, [signing_payload(u) for u in unsigned]


def checked_signatures(signer: Signer, payloads: Sequence[bytes]) -> list[bytes]:
    """``signer``'s signatures of ``payloads`` in order (batched when it can batch),
    each checked in software unless the signer promised it checks them itself.

    The only step of :func:`sign_bundles` that waits on the signer, so the one a
    batch runs in a second thread.
    """
    from agent_rerun.signer import checks_own_signatures, sign_all

    _require_signer(signer)
    public_key = bytes(signer.public_key)
    signatures = [bytes(s) for s in sign_all(signer, payloads)]
    if not checks_own_signatures(signer):
        for payload, signature in zip(payloads, signatures, strict=True):
            try:
                check_ed25519(public_key, signature, payload)
            except SignatureError as exc:
                raise SignerError(f"the signer produced an unusable signature: {exc}") from None
    return signatures


def with_signatures(unsigned: Sequence[Bundle], signatures: Sequence[bytes],
                    public_key: bytes) -> list[Bundle]:
    """The bundles of :func:`unsigned_payloads` with their checked signatures attached."""
    public_key = bytes(public_key)
    return [{**u, "signature": signature_block(public_key, signature)}
            for u, signature in zip(unsigned, signatures, strict=True)]


def _require_signer(signer: object) -> None:
    if not (hasattr(signer, "sign") and hasattr(signer, "public_key")):
        raise TypeError(f"sign with a Signer, not a {type(signer).__name__}")


def sign_bundle(bundle: Mapping[str, Any], signer: Signer | bytes) -> Bundle:
    """Return a copy of ``bundle`` signed by ``signer`` (replacing any signature).

    ``signer`` is any :class:`~agent_rerun.signer.Signer`, or a raw 32-byte
    private key. The signature is checked in software before it is attached,
    so a faulty token or plugin cannot produce a bundle that fails later; a
    signer that already checks its own output declares it with
    ``SignerBase.checks_signatures`` and is not checked twice.
    """
    if isinstance(signer, (bytes, bytearray)):
        from agent_rerun.signer import InMemorySigner

        signer = InMemorySigner(bytes(signer))
    elif not (hasattr(signer, "sign") and hasattr(signer, "public_key")):
        raise TypeError(f"sign with a Signer or 32 raw private-key bytes, "
                        f"not a {type(signer).__name__}")
    from agent_rerun.signer import checks_own_signatures

    unsigned = {key: value for key, value in bundle.items() if key != "signature"}
    payload = signing_payload(unsigned)
    public_key = bytes(signer.public_key)
    signature = bytes(signer.sign(payload))
    if not checks_own_signatures(signer):
        try:
            check_ed25519(public_key, signature, payload)
        except SignatureError as exc:
            raise SignerError(f"the signer produced an unusable signature: {exc}") from None
    return {**unsigned, "signature": signature_block(public_key, signature)}
