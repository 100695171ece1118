"""bundle + actual record -> result, in the order and with the codes of the v0.1 spec.

``verify`` never raises: whatever it is given, every failure becomes an error
code in the result, so a CI job can always report *why* a replay was refused.
Nothing here touches a key store, a backend or the network.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agent_rerun.canonical import checked_sha256_of_jcs
from agent_rerun.errors import InputError, ValidationError
from agent_rerun.jsonvalue import check_json_value
from agent_rerun.record import FrozenRecord, Record
from agent_rerun.schema import ALL_VALUES, validate_actual_record, validate_bundle
from agent_rerun.signature import SignatureError, check_bundle_signature, signing_payload

if TYPE_CHECKING:
    import datetime as _dt

    from agent_rerun.policy import RevokedKeysLike, TrustedKeyLike, VerifyPolicy
    from agent_rerun.trust import TrustedKey

class SignerInfo(FrozenRecord):
    """Who signed a bundle, and what the trust policy made of that key."""

    __slots__ = _fields = ("public_key", "fingerprint", "trusted", "name", "principals",
                           "valid_after", "valid_before", "revocation_checked", "revoked")
    public_key: str
    fingerprint: str
    trusted: bool | None
    name: str | None
    #: Why the key was admitted: the trust entry's principals and validity window
    #: (ISO 8601, None for unbounded), set only when ``trusted`` is true.
    principals: tuple[str, ...] | None
    valid_after: str | None
    valid_before: str | None
    #: True when the key was looked up in revocation lists (and was not on them,
    #: unless the result carries ``RevokedSigner``); False when none were given.
    revocation_checked: bool
    revoked: bool

    def __init__(self, public_key: str, fingerprint: str, trusted: bool | None = None,
                 name: str | None = None, principals: tuple[str, ...] | None = None,
                 valid_after: str | None = None, valid_before: str | None = None,
                 revocation_checked: bool = False, revoked: bool = False) -> None:
        self._assign(public_key, fingerprint, trusted, name, principals, valid_after,
                     valid_before, revocation_checked, revoked)

    def to_json(self) -> dict[str, Any]:
        return {"public_key": self.public_key, "fingerprint": self.fingerprint,
                "trusted": self.trusted, "name": self.name,
                "principals": None if self.principals is None else list(self.principals),
                "valid_after": self.valid_after, "valid_before": self.valid_before,
                "revocation_checked": self.revocation_checked, "revoked": self.revoked}


class VerifyResult(Record):
    """``verified`` is true exactly when ``errors`` is empty."""

    __slots__ = _fields = ("verified", "errors", "warnings", "signer")

    def __init__(self, verified: bool, errors: list[str] | None = None,
                 warnings: list[str] | None = None, signer: SignerInfo | None = None) -> None:
        self.verified = verified
        self.errors: list[str] = [] if errors is None else errors
        self.warnings: list[str] = [] if warnings is None else warnings
        self.signer = signer

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``rerun verify`` prints."""
        out: dict[str, Any] = {"verified": self.verified, "errors": self.errors,
                               "warnings": self.warnings}
        if self.signer is not None:
            out["signer"] = self.signer.to_json()
        return out


def verify(
    bundle: Any,
    actual: Any,
    *,
    trusted_keys: Iterable[TrustedKeyLike] | None = None,
    revoked_keys: RevokedKeysLike | None = None,
    require_signature: bool = False,
    now: _dt.datetime | None = None,
    policy: VerifyPolicy | None = None,
) -> VerifyResult:
    """Check ``actual`` against ``bundle``; never raises.

    With ``trusted_keys`` (even an empty list), only a valid signature by one of
    them is accepted (``UntrustedSigner`` otherwise) and an unsigned bundle fails
    with ``MissingSignature``, as it does with ``require_signature``. A signature
    by a key in ``revoked_keys`` (a ``RevocationList`` from
    ``load_revocation_file``, or raw keys / key texts) fails with
    ``RevokedSigner``, trusted or not. ``policy`` (from ``make_policy`` or
    ``resolve_policy``) replaces the other keyword arguments; batch callers pass
    it so the keys are parsed once.
    """
    return _verify_guarded(bundle, actual,
                           _policy_args(trusted_keys, revoked_keys, require_signature, now,
                                        policy),
                           values_checked=False)


def verify_files(
    bundle_path: str | os.PathLike[str],
    actual_path: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[TrustedKeyLike] | None = None,
    revoked_keys: RevokedKeysLike | None = None,
    require_signature: bool = False,
    now: _dt.datetime | None = None,
    policy: VerifyPolicy | None = None,
) -> VerifyResult:
    """Read both files as I-JSON and verify (see ``verify``); unreadable or malformed
    files become ``SchemaViolation`` errors naming the file and the place."""
    from agent_rerun.ijson import load_json_file

    try:
        bundle = load_json_file(bundle_path)
    except InputError as exc:
        return VerifyResult(False, [f"SchemaViolation:bundle: {exc}"])
    try:
        actual = load_json_file(actual_path)
    except InputError as exc:
        return VerifyResult(False, [f"SchemaViolation:actual: {exc}"])
    # The I-JSON reader has already walked every value; the schema needs no second walk.
    return _verify_guarded(bundle, actual,
                           _policy_args(trusted_keys, revoked_keys, require_signature, now,
                                        policy),
                           values_checked=True,
                           sources=(f"{os.fspath(bundle_path)}: ", f"{os.fspath(actual_path)}: "))


def verify_bundle_signature(bundle: Any) -> dict[str, Any]:
    """The published package's signature check: ``{"valid": bool, "reason"?: str}``.

    Unsigned bundles are ``valid`` here (as published); use ``verify`` with
    ``require_signature`` to insist on one.
    """
    reason = check_signature(bundle)
    return {"valid": True} if reason is None else {"valid": False, "reason": reason}


def check_signature(bundle: Any) -> str | None:
    """``None`` when the bundle is unsigned or its signature is valid, else the reason."""
    if not isinstance(bundle, Mapping) or "signature" not in bundle:
        return None
    try:
        check_bundle_signature(bundle)
    except SignatureError as exc:
        return str(exc)
    except ValueError as exc:  # canonicalization of a value outside the JCS domain
        return f"bundle cannot be canonicalized ({exc})"
    return None


def _policy_args(
    trusted_keys: Iterable[TrustedKeyLike] | None,
    revoked_keys: RevokedKeysLike | None,
    require_signature: bool,
    now: _dt.datetime | None,
    policy: VerifyPolicy | None,
) -> VerifyPolicy | str:
    """The policy to apply, or the error code that refuses everything (fail closed)."""
    from agent_rerun.policy import NO_POLICY, VerifyPolicy, revocation_list_from, trust_index_from

    if (policy is None and trusted_keys is None and revoked_keys is None
            and not require_signature and now is None):
        return NO_POLICY
    if policy is not None:
        if trusted_keys is not None or revoked_keys is not None or require_signature or now:
            return "InvalidPolicy:give either policy= or the separate trust arguments, not both"
        return policy
    try:
        trusted = trust_index_from(trusted_keys)
    except InputError as exc:
        return f"InvalidTrustedKeys:{exc}"
    try:
        revoked = revocation_list_from(revoked_keys)
    except InputError as exc:
        return f"InvalidRevokedKeys:{exc}"
    return VerifyPolicy(trusted, revoked, require_signature, now)


def _verify_guarded(
    bundle: Any,
    actual: Any,
    policy: VerifyPolicy | str,
    *,
    values_checked: bool,
    sources: tuple[str, str] = ("", ""),
) -> VerifyResult:
    """``_verify`` behind the never-raise promise: any bug still becomes a result."""
    try:
        return _verify(bundle, actual, policy, values_checked, sources)
    except Exception as exc:
        return VerifyResult(False, [f"InternalError:{type(exc).__name__}: {exc}"])


def _verify(
    bundle: Any,
    actual: Any,
    policy: VerifyPolicy | str,
    values_checked: bool,
    sources: tuple[str, str],
) -> VerifyResult:
    bundle_source, actual_source = sources
    try:
        payload = _validated_bundle(bundle, values_checked)
    except ValidationError as exc:
        return VerifyResult(False, [_schema_violation("bundle", bundle_source, exc)])
    try:
        # What is hashed below is checked while it is hashed.
        byte_level = bundle["tolerance"]["level"] == "byte"
        hashed = ("inputs.*", "output.transcript") if byte_level else ("inputs.*",)
        validate_actual_record(actual, checked=ALL_VALUES if values_checked else hashed)
    except ValidationError as exc:
        return VerifyResult(False, [_schema_violation("actual", actual_source, exc)])

    errors: list[str] = []
    warnings: list[str] = []
    signer = _check_signer(bundle, payload, policy, errors)

    bundle_fp = bundle["model"].get("fingerprint")
    actual_fp = actual.get("runtime", {}).get("fingerprint")
    if bundle_fp is not None and actual_fp is not None and bundle_fp != actual_fp:
        warnings.append(f"FingerprintDrift:bundle={bundle_fp},actual={actual_fp}")

    try:
        _check_inputs(bundle["inputs"], actual["inputs"], errors)
        _check_tolerance(bundle, actual["output"], errors)
    except ValidationError as exc:  # a hashed value outside the JCS domain
        return VerifyResult(False, [_schema_violation("actual", actual_source, exc)])
    return VerifyResult(not errors, errors, warnings, signer)


def _validated_bundle(bundle: Any, values_checked: bool) -> bytes | None:
    """Validate ``bundle``; for a signed one, return the bytes its signature covers.

    Values not yet checked (a library caller's objects) are checked while those
    bytes are written, as the hashed parts of the actual record are: a walk of
    the bundle fewer. Whatever fails, the error raised is the one the plain
    order (every value, then the schema) names first.
    """
    if not isinstance(bundle, dict) or "signature" not in bundle:
        validate_bundle(bundle, checked=ALL_VALUES if values_checked else ())
        return None
    if values_checked:
        validate_bundle(bundle, checked=ALL_VALUES)
        return signing_payload(bundle)
    try:
        validate_bundle(bundle, checked=ALL_VALUES)
        check_json_value(bundle["signature"], "bundle.signature", 1)
        return signing_payload(bundle, unchecked_path="bundle")
    except Exception:
        check_json_value(bundle, "bundle")  # raises the first value outside the domain
        raise


def _schema_violation(side: str, source: str, exc: ValidationError) -> str:
    """``SchemaViolation:<side>: [file: ]<field>: <reason>``, naming the file when there is one."""
    return f"SchemaViolation:{side}: {source}{exc}"


def _check_signer(
    bundle: Mapping[str, Any],
    payload: bytes | None,
    policy: VerifyPolicy | str,
    errors: list[str],
) -> SignerInfo | None:
    if isinstance(policy, str):  # unusable trust arguments: nothing verifies
        errors.append(policy)
        return None
    trust_policy = policy.trusted is not None
    if "signature" not in bundle:
        if policy.require_signature or trust_policy:
            errors.append("MissingSignature")
        return None
    try:
        public_key = check_bundle_signature(bundle, payload)
    except SignatureError as exc:
        errors.append(f"BadSignature:{exc}")
        return None
    known = policy.known_signers.get(public_key) or _know_signer(policy, public_key)
    if known.revoked_error is not None:
        errors.append(known.revoked_error)
        return known.info
    if policy.trusted is None:
        return known.info
    from agent_rerun.trust import NAMESPACE, admits, moment_of

    moment = moment_of(policy.now)
    for entry, admitted in known.entries:
        if admits(entry, NAMESPACE, moment):
            return admitted
    errors.append(f"UntrustedSigner:{known.info.public_key}")
    return known.info


class KnownSigner(FrozenRecord):
    """What a policy makes of one signing key, worked out once and kept on the policy.

    Everything here is independent of the time of the check: revocation, the
    key's spellings, and the trust entries listing it, each with the result it
    yields. Validity windows are checked against the clock on every bundle.
    """

    __slots__ = _fields = ("info", "revoked_error", "entries")
    #: The result when no entry admits the key (or no trust is configured).
    info: SignerInfo
    #: ``RevokedSigner:...`` for a revoked key, else None.
    revoked_error: str | None
    #: The trust entries listing this key, in file order, with their results.
    entries: tuple[tuple[TrustedKey, SignerInfo], ...]

    def __init__(self, info: SignerInfo, revoked_error: str | None,
                 entries: tuple[tuple[TrustedKey, SignerInfo], ...]) -> None:
        self._assign(info, revoked_error, entries)


#: A batch signed by more distinct keys than this works the rest out per bundle:
#: the cache must not grow with the batch.
_MAX_KNOWN_SIGNERS = 4096


def _know_signer(policy: VerifyPolicy, public_key: bytes) -> KnownSigner:
    from agent_rerun.pubkey import fingerprint

    encoded = base64.b64encode(public_key).decode("ascii")
    key_fingerprint = fingerprint(public_key)
    trust_policy = policy.trusted is not None
    checked = policy.revoked is not None
    entries: tuple[tuple[TrustedKey, SignerInfo], ...] = ()
    if policy.revoked is not None and policy.revoked.is_revoked(public_key):
        known = KnownSigner(
            SignerInfo(encoded, key_fingerprint, trusted=False if trust_policy else None,
                       revocation_checked=True, revoked=True),
            f"RevokedSigner:{encoded}", entries)
    else:
        if policy.trusted is not None:
            entries = tuple((entry, SignerInfo(
                encoded, key_fingerprint, trusted=True, name=entry.name,
                principals=entry.principals,
                valid_after=entry.valid_after.isoformat() if entry.valid_after else None,
                valid_before=entry.valid_before.isoformat() if entry.valid_before else None,
                revocation_checked=checked,
            )) for entry in policy.trusted.entries_for(public_key))
        known = KnownSigner(
            SignerInfo(encoded, key_fingerprint, trusted=False if trust_policy else None,
                       revocation_checked=checked), None, entries)
    if len(policy.known_signers) < _MAX_KNOWN_SIGNERS:
        policy.known_signers[public_key] = known
    return known


#: actual.inputs.messages and actual.output.transcript sit two levels below the
#: record's root; the nesting limit counts from the root, as for a file.
_HASHED_DEPTH = 2


def _hash(value: Any, field_name: str) -> str:
    return checked_sha256_of_jcs(value, f"actual.inputs.{field_name}", _HASHED_DEPTH)


def _check_inputs(hashes: Mapping[str, str], inputs: Mapping[str, Any],
                  errors: list[str]) -> None:
    if _hash(inputs["system_prompt"], "system_prompt") != hashes["system_prompt_sha256"]:
        errors.append("InputHashMismatch:system_prompt_sha256")
    if _hash(inputs["messages"], "messages") != hashes["messages_sha256"]:
        errors.append("InputHashMismatch:messages_sha256")
    if "tools_sha256" in hashes:
        if "tools" not in inputs or _hash(inputs["tools"], "tools") != hashes["tools_sha256"]:
            errors.append("InputHashMismatch:tools_sha256")
    elif "tools" in inputs:
        errors.append("InputHashMismatch:tools_sha256 (the bundle was captured without tools)")


def _check_tolerance(bundle: Mapping[str, Any], output: Mapping[str, Any],
                     errors: list[str]) -> None:
    level = bundle["tolerance"]["level"]
    if level == "byte":
        if "transcript" not in output:  # null is a transcript, hashed like any value
            errors.append("TranscriptHashMismatch:actual.output.transcript missing")
        elif (checked_sha256_of_jcs(output["transcript"], "actual.output.transcript",
                                    _HASHED_DEPTH)
              != bundle["expected"]["transcript_sha256"]):
            errors.append("TranscriptHashMismatch")
    elif level == "semantic":
        _check_semantic(bundle, output, errors)
    else:
        errors.append(f"UnsupportedTolerance:{level}")
    if level != "semantic" and "semantic_embedding" in bundle["expected"]:
        # Unused by this tolerance, but signed: it must still be a well-formed embedding.
        from agent_rerun.embedding import EmbeddingError, check_embedding

        try:
            check_embedding(bundle["expected"]["semantic_embedding"])
        except EmbeddingError as exc:
            errors.append(f"{exc.code}:bundle.expected.semantic_embedding {exc}")


def _check_semantic(bundle: Mapping[str, Any], output: Mapping[str, Any],
                    errors: list[str]) -> None:
    # The packed float32 arrays go to the cosine as they are, cheaper than
    # building lists first.
    from agent_rerun.embedding import EmbeddingError, below_threshold, check_embedding

    if not output.get("embedding"):
        errors.append("MissingEmbedding:actual.output.embedding required for semantic tolerance")
        return
    try:
        expected = check_embedding(bundle["expected"]["semantic_embedding"])
    except EmbeddingError as exc:
        errors.append(f"{exc.code}:bundle.expected.semantic_embedding {exc}")
        return
    try:
        got = check_embedding(output["embedding"])
    except EmbeddingError as exc:
        errors.append(f"{exc.code}:actual.output.embedding {exc}")
        return
    if len(expected) != len(got):
        errors.append(f"EmbeddingDimensionMismatch:expected {len(expected)}, got {len(got)}")
        return
    threshold = bundle["tolerance"]["threshold"]
    similarity = below_threshold(expected, got, threshold)
    if similarity is not None:
        errors.append(f"SemanticBelowThreshold:cosine={similarity:.4f},threshold={threshold}")
