"""Strict validation of step records, bundles and actual records (rerun.json v0.1).

Every level rejects unknown keys: a bundle that carries a field its signer
never saw, or a verifier silently ignores, is a bundle two parties read
differently. Each failure is a ``ValidationError`` whose path names the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from agent_rerun.errors import ValidationError
from agent_rerun.jsonvalue import OUTSIDE_DOMAIN, check_json_value, integer_in_domain

RERUN_VERSION = "0.1"
TOLERANCE_LEVELS = ("byte", "semantic", "structural")
RUNTIME_CLASSES = ("cloud", "local-vllm", "local-transformers")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")

# Public aliases matching the published package's type names; the values are plain dicts.
StepRecord = dict[str, Any]
Bundle = dict[str, Any]
ActualRecord = dict[str, Any]
Signature = dict[str, Any]
ToleranceLevel = str

#: ``checked=`` for a record whose every value is known to be in the JCS domain
#: (the I-JSON reader walked it), so only the schema rules are left to check.
ALL_VALUES: tuple[str, ...] = ("*",)


def validate_step_record(step: Any, *, checked: Collection[str] = ()) -> StepRecord:
    """Check a step record (what ``capture`` reads) and return it unchanged.

    ``checked`` names parts whose JSON values the caller checks itself (see
    ``_check_values``): capture checks what it hashes while hashing it, which
    spares a second walk over the largest parts of a step.
    """
    _check_values(step, "step", checked)
    return _step_record_shape(step)


def _step_record_shape(step: Any) -> StepRecord:
    """The schema rules alone, for a value already known to be in the JCS domain."""
    obj = _object(step, "step", _STEP)
    _model(obj["model"], "step.model")
    _sampling(obj["sampling"], "step.sampling")
    _inputs(obj["inputs"], "step.inputs")
    _runtime(obj["runtime"], "step.runtime")
    expected = _object(obj["expected"], "step.expected", _STEP_EXPECTED)
    if "semantic_embedding" in expected:
        _embedding(expected["semantic_embedding"], "step.expected.semantic_embedding")
    tolerance = _tolerance(obj["tolerance"], "step.tolerance")
    level = tolerance["level"]
    if level == "byte" and "transcript" not in expected:  # null is a transcript too
        raise ValidationError("byte tolerance requires expected.transcript", "step.expected")
    if level == "semantic":
        if "semantic_embedding" not in expected:
            raise ValidationError("semantic tolerance needs expected.semantic_embedding",
                                  "step.expected")
        if "threshold" not in tolerance:
            raise ValidationError("semantic tolerance needs a threshold", "step.tolerance")
    return step  # type: ignore[no-any-return]


def validate_bundle(bundle: Any, *, checked: Collection[str] = ()) -> Bundle:
    """Check a bundle (what ``capture`` writes) and return it unchanged (``checked``:
    see ``validate_step_record``)."""
    _check_values(bundle, "bundle", checked)
    return _bundle_shape(bundle)


def _bundle_shape(bundle: Any) -> Bundle:
    """The schema rules alone, for a value already known to be in the JCS domain."""
    obj = _object(bundle, "bundle", _BUNDLE)
    if obj["rerun_version"] != RERUN_VERSION:
        raise ValidationError(f"must be exactly {RERUN_VERSION!r}, got {obj['rerun_version']!r}",
                              "bundle.rerun_version")
    _model(obj["model"], "bundle.model")
    _sampling(obj["sampling"], "bundle.sampling")
    inputs = _object(obj["inputs"], "bundle.inputs", _BUNDLE_INPUTS)
    for key, value in inputs.items():
        _hash(value, f"bundle.inputs.{key}")
    _runtime(obj["runtime"], "bundle.runtime")
    expected = _object(obj["expected"], "bundle.expected", _BUNDLE_EXPECTED)
    if "transcript_sha256" in expected:
        _hash(expected["transcript_sha256"], "bundle.expected.transcript_sha256")
    if "semantic_embedding" in expected:
        _string(expected["semantic_embedding"], "bundle.expected.semantic_embedding")
    tolerance = _tolerance(obj["tolerance"], "bundle.tolerance")
    level = tolerance["level"]
    if level == "byte" and "transcript_sha256" not in expected:
        raise ValidationError("byte tolerance requires expected.transcript_sha256",
                              "bundle.expected")
    if level == "semantic":
        if "semantic_embedding" not in expected:
            raise ValidationError("semantic tolerance needs expected.semantic_embedding",
                                  "bundle.expected")
        if "threshold" not in tolerance:
            raise ValidationError("semantic tolerance needs a threshold", "bundle.tolerance")
    if "signature" in obj:
        signature = _object(obj["signature"], "bundle.signature", _SIGNATURE)
        if signature["alg"] != "ed25519":
            raise ValidationError(f"must be exactly 'ed25519', got {signature['alg']!r}",
                                  "bundle.signature.alg")
        _string(signature["pubkey"], "bundle.signature.pubkey")
        _string(signature["sig"], "bundle.signature.sig")
    return bundle  # type: ignore[no-any-return]


def validate_actual_record(actual: Any, *, checked: Collection[str] = ()) -> ActualRecord:
    """Check an actual record (what ``verify`` reads beside a bundle) and return it
    (``checked``: see ``validate_step_record``)."""
    _check_values(actual, "actual", checked)
    return _actual_record_shape(actual)


def _actual_record_shape(actual: Any) -> ActualRecord:
    """The schema rules alone, for a value already known to be in the JCS domain."""
    obj = _object(actual, "actual", _ACTUAL)
    _inputs(obj["inputs"], "actual.inputs")
    output = _object(obj["output"], "actual.output", _ACTUAL_OUTPUT)
    if "embedding" in output:
        _string(output["embedding"], "actual.output.embedding")
    if "runtime" in obj:
        runtime = _object(obj["runtime"], "actual.runtime", _ACTUAL_RUNTIME)
        if "fingerprint" in runtime:
            _string(runtime["fingerprint"], "actual.runtime.fingerprint")
    return actual  # type: ignore[no-any-return]


def _check_values(record: Any, path: str, checked: Collection[str]) -> None:
    """Walk ``record``'s JSON values, except the parts in ``checked``.

    A part is ``"*"`` (everything), ``"NAME.*"`` (the values of object NAME's
    members; its keys are still checked) or ``"NAME.KEY"`` (one member's value).
    """
    if "*" in checked:
        return
    if not checked or not isinstance(record, dict):
        check_json_value(record, path)
        return
    view = dict(record)
    for part in checked:
        outer, _, key = part.partition(".")
        inner = view.get(outer)
        if not isinstance(inner, dict):
            continue
        if key == "*":
            view[outer] = dict.fromkeys(inner)
        elif key in inner:
            view[outer] = {**inner, key: None}
    check_json_value(view, path)


# ------------------------------------------------------------------ pieces


class _Members:
    """The member names an object must have and may have, as sets built once:
    a verify checks a dozen objects, and building the sets on every call was
    half of that check's time."""

    __slots__ = ("allowed", "required")

    def __init__(self, required: Collection[str] = (), optional: Collection[str] = ()) -> None:
        self.required = frozenset(required)
        self.allowed = self.required | frozenset(optional)


_STEP = _Members({"model", "sampling", "inputs", "runtime", "expected", "tolerance"})
_STEP_EXPECTED = _Members(optional={"transcript", "semantic_embedding"})
_BUNDLE = _Members({"rerun_version", "model", "sampling", "inputs", "runtime", "expected",
                    "tolerance"}, {"signature"})
_BUNDLE_INPUTS = _Members({"system_prompt_sha256", "messages_sha256"}, {"tools_sha256"})
_BUNDLE_EXPECTED = _Members(optional={"transcript_sha256", "semantic_embedding"})
_SIGNATURE = _Members({"alg", "pubkey", "sig"})
_ACTUAL = _Members({"inputs", "output"}, {"runtime"})
_ACTUAL_OUTPUT = _Members(optional={"transcript", "embedding"})
_ACTUAL_RUNTIME = _Members(optional={"fingerprint"})
_MODEL = _Members({"vendor", "id"}, {"fingerprint"})
_SAMPLING = _Members({"temperature", "top_p"}, {"seed", "max_tokens"})
_INPUTS = _Members({"system_prompt", "messages"}, {"tools"})
_RUNTIME = _Members({"class"}, {"tool_versions"})
_TOLERANCE = _Members({"level"}, {"threshold"})


def _model(value: Any, path: str) -> None:
    model = _object(value, path, _MODEL)
    _string(model["vendor"], f"{path}.vendor", non_empty=True)
    _string(model["id"], f"{path}.id", non_empty=True)
    if "fingerprint" in model:
        _string(model["fingerprint"], f"{path}.fingerprint")


def _sampling(value: Any, path: str) -> None:
    sampling = _object(value, path, _SAMPLING)
    _number(sampling["temperature"], f"{path}.temperature")
    _number(sampling["top_p"], f"{path}.top_p")
    if "seed" in sampling:
        _integer(sampling["seed"], f"{path}.seed")
    if "max_tokens" in sampling:
        _integer(sampling["max_tokens"], f"{path}.max_tokens")
        if sampling["max_tokens"] < 1:
            raise ValidationError("must be a positive integer", f"{path}.max_tokens")


def _inputs(value: Any, path: str) -> None:
    """The plain-text inputs a step record and an actual record both carry."""
    inputs = _object(value, path, _INPUTS)
    _string(inputs["system_prompt"], f"{path}.system_prompt")
    _array(inputs["messages"], f"{path}.messages")
    if "tools" in inputs:
        _array(inputs["tools"], f"{path}.tools")


def _runtime(value: Any, path: str) -> None:
    runtime = _object(value, path, _RUNTIME)
    if runtime["class"] not in RUNTIME_CLASSES:
        raise ValidationError(f"must be one of {', '.join(RUNTIME_CLASSES)}; "
                              f"got {runtime['class']!r}", f"{path}.class")
    if "tool_versions" in runtime:
        versions = _object(runtime["tool_versions"], f"{path}.tool_versions", None)
        for name, version in versions.items():
            _string(version, f"{path}.tool_versions.{name}")


def _tolerance(value: Any, path: str) -> Mapping[str, Any]:
    tolerance = _object(value, path, _TOLERANCE)
    if tolerance["level"] not in TOLERANCE_LEVELS:
        raise ValidationError(f"must be one of {', '.join(TOLERANCE_LEVELS)}; "
                              f"got {tolerance['level']!r}", f"{path}.level")
    if "threshold" in tolerance:
        threshold = tolerance["threshold"]
        _number(threshold, f"{path}.threshold")
        if not -1 <= threshold <= 1:
            raise ValidationError(f"must lie in [-1, 1] (a cosine); got {threshold!r}",
                                  f"{path}.threshold")
    return tolerance


def _embedding(value: Any, path: str) -> None:
    from agent_rerun.embedding import EmbeddingError, check_embedding

    _string(value, path)
    try:
        check_embedding(value)
    except EmbeddingError as exc:
        raise ValidationError(str(exc), path) from None


def _object(value: Any, path: str, members: _Members | None) -> Mapping[str, Any]:
    """``value`` as an object with exactly the members ``members`` allows (None: any)."""
    if not isinstance(value, dict):
        raise ValidationError(f"must be an object, got {_kind(value)}", path)
    if members is None:
        return value
    keys = value.keys()
    if keys <= members.allowed and keys >= members.required:
        return value
    unknown = keys - members.allowed
    if unknown:
        names = ", ".join(sorted(repr(k) for k in unknown))
        # "unrecognized key" is the published package's phrase, which callers match on.
        raise ValidationError(f"unknown field {names} (unrecognized key)", path)
    names = ", ".join(sorted(members.required - keys))
    raise ValidationError(f"missing required field {names}", path)


def _string(value: Any, path: str, *, non_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"must be a string, got {_kind(value)}", path)
    if non_empty and not value:
        raise ValidationError("must be a non-empty string", path)


def _array(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise ValidationError(f"must be an array, got {_kind(value)}", path)


def _number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"must be a number, got {_kind(value)}", path)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"must be finite, got {value!r}", path)


def _integer(value: Any, path: str) -> None:
    """An integral number in any spelling: JSON has one number type, so 42.0 and
    4.2e1 are the integer 42 (as the TypeScript reference reads them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"must be an integer, got {_kind(value)}", path)
    if isinstance(value, float):
        if not value.is_integer():  # also false for NaN and infinities
            raise ValidationError(f"must be an integer, got {value!r}", path)
    elif not integer_in_domain(value):
        raise ValidationError(f"integer {OUTSIDE_DOMAIN}", path)


def integral(value: Any) -> Any:
    """An integer field's value as the ``int`` a bundle writes: ``42.0`` becomes ``42``.

    JCS writes both as ``42``; only the Python value differs. An integral double
    whose ``int`` lies outside the domain (2.0**60) stays a float, which JCS
    writes as its canonical digits.
    """
    if isinstance(value, float) and value.is_integer():
        as_int = int(value)
        if integer_in_domain(as_int):
            return as_int
    return value


def _hash(value: Any, path: str) -> None:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValidationError("must be 'sha256:' followed by 64 lowercase hex digits", path)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
