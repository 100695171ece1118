"""Strict schemas: one test per rule, each checking that the error names the field."""

from __future__ import annotations

import copy
import enum
import math
from typing import Any

import pytest

from agent_rerun import (
    CaptureOptions,
    ValidationError,
    capture,
    encode_embedding,
    jcs_bytes,
    validate_actual_record,
    validate_bundle,
    validate_step_record,
)
from agent_rerun.jsonvalue import MAX_DEPTH, MAX_SAFE_INTEGER

DELETE = object()
KEY = b"\x01" * 32


def base_step() -> dict[str, Any]:
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7", "fingerprint": "fp_test"},
        "sampling": {"temperature": 0, "top_p": 1, "seed": 42, "max_tokens": 10},
        "inputs": {"system_prompt": "sys", "messages": [{"role": "user", "content": "hi"}],
                   "tools": []},
        "runtime": {"class": "cloud", "tool_versions": {"python": "3.12.3"}},
        "expected": {"transcript": {"text": "hi"}},
        "tolerance": {"level": "byte"},
    }


def semantic_step() -> dict[str, Any]:
    step = base_step()
    step["expected"] = {"semantic_embedding": encode_embedding([1, 0, 0, 0])}
    step["tolerance"] = {"level": "semantic", "threshold": 0.9}
    return step


def base_bundle() -> dict[str, Any]:
    return capture(base_step(), CaptureOptions(signing_key=KEY))


def base_actual() -> dict[str, Any]:
    return {
        "inputs": {"system_prompt": "sys", "messages": [], "tools": []},
        "output": {"transcript": {"text": "hi"}, "embedding": encode_embedding([1, 0])},
        "runtime": {"fingerprint": "fp"},
    }


def changed(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A deep copy of ``value`` with the dotted ``path`` set to ``new`` (or removed)."""
    result = copy.deepcopy(value)
    *parents, last = path.split(".")
    target = result
    for key in parents:
        target = target[key]
    if new is DELETE:
        del target[last]
    else:
        target[last] = new
    return result


def assert_invalid(validate: Any, value: Any, where: str, *words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(value)
    message = str(caught.value)
    assert where in message, message
    for word in words:
        assert word in message, message


# ------------------------------------------------------------------ valid shapes


def test_valid_records_are_returned_unchanged() -> None:
    for validate, value in ((validate_step_record, base_step()),
                            (validate_step_record, semantic_step()),
                            (validate_bundle, base_bundle()),
                            (validate_actual_record, base_actual())):
        assert validate(value) is value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("model.fingerprint", DELETE),
        ("sampling.seed", DELETE),
        ("sampling.max_tokens", DELETE),
        ("sampling.max_tokens", 1),
        ("sampling.seed", -MAX_SAFE_INTEGER),
        ("sampling.seed", MAX_SAFE_INTEGER),
        ("sampling.temperature", 0.7),
        ("sampling.top_p", -3),  # a number; the schema sets no range here
        ("inputs.tools", DELETE),
        ("runtime.tool_versions", DELETE),
        ("runtime.tool_versions", {}),
        ("runtime.class", "local-vllm"),
        ("runtime.class", "local-transformers"),
        ("expected", {"transcript": {"a": 1}, "semantic_embedding": encode_embedding([1.0])}),
        ("expected.transcript", [1, "two", None, False, 2.5]),
        ("tolerance", {"level": "structural"}),
        ("expected", {}),  # structural needs no expectation
        ("model.id", "\U0001f600"),
    ],
)
def test_optional_and_alternative_shapes_accepted(path: str, value: Any) -> None:
    step = changed(base_step(), path, value)
    if path == "expected" and value == {}:
        step["tolerance"] = {"level": "structural"}
    validate_step_record(step)
    validate_bundle(capture(step, CaptureOptions(signing_key=KEY)))


@pytest.mark.parametrize("threshold", [-1, 1, 0, -1.0, 1.0, 0.95])
def test_threshold_bounds_are_inclusive(threshold: float) -> None:
    validate_step_record(changed(semantic_step(), "tolerance.threshold", threshold))


def test_int_subclasses_are_checked_as_ints() -> None:
    class Seed(enum.IntEnum):
        ANSWER = 42

    validate_step_record(changed(base_step(), "sampling.seed", Seed.ANSWER))


# ------------------------------------------------------------------ step record rules


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("sampling.temperature", True, "step.sampling.temperature", ("number",)),
        ("sampling.top_p", False, "step.sampling.top_p", ("number",)),
        ("sampling.temperature", "0", "step.sampling.temperature", ("number",)),
        ("sampling.temperature", None, "step.sampling.temperature", ("number",)),
        ("sampling.seed", 42.5, "step.sampling.seed", ("integer",)),
        ("sampling.seed", True, "step.sampling.seed", ("integer",)),
        ("sampling.seed", MAX_SAFE_INTEGER + 2, "step.sampling.seed", ()),
        ("sampling.seed", -MAX_SAFE_INTEGER - 2, "step.sampling.seed", ()),
        ("sampling.max_tokens", 0, "step.sampling.max_tokens", ("positive",)),
        ("sampling.max_tokens", -5, "step.sampling.max_tokens", ("positive",)),
        ("sampling.max_tokens", 10.5, "step.sampling.max_tokens", ("integer",)),
        ("sampling.temperature", math.nan, "step.sampling.temperature", ("finite",)),
        ("sampling.top_p", math.inf, "step.sampling.top_p", ("finite",)),
        ("model.vendor", "", "step.model.vendor", ("non-empty",)),
        ("model.id", 7, "step.model.id", ("string",)),
        ("model.fingerprint", None, "step.model.fingerprint", ("string",)),
        ("runtime.class", "gpu", "step.runtime.class", ("cloud",)),
        ("runtime.tool_versions", {"python": 3.12}, "step.runtime.tool_versions.python",
         ("string",)),
        ("runtime.tool_versions", ["python"], "step.runtime.tool_versions", ("object",)),
        ("inputs.system_prompt", None, "step.inputs.system_prompt", ("string",)),
        ("inputs.messages", {"role": "user"}, "step.inputs.messages", ("array",)),
        ("inputs.tools", "search", "step.inputs.tools", ("array",)),
        ("tolerance.level", "fuzzy", "step.tolerance.level", ("byte",)),
        ("tolerance.level", "BYTE", "step.tolerance.level", ()),
        ("expected.transcript", DELETE, "step.expected", ("byte",)),
        ("expected", [], "step.expected", ("object",)),
        ("model", DELETE, "step", ("missing", "model")),
        ("inputs.messages", DELETE, "step.inputs", ("missing", "messages")),
        ("tolerance.level", DELETE, "step.tolerance", ("missing", "level")),
        ("sampling.top_p", DELETE, "step.sampling", ("missing", "top_p")),
    ],
)
def test_step_record_rule(path: str, value: Any, where: str, words: tuple[str, ...]) -> None:
    assert_invalid(validate_step_record, changed(base_step(), path, value), where, *words)


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("tolerance.threshold", 1.5, "step.tolerance.threshold", ("[-1, 1]",)),
        ("tolerance.threshold", -1.0001, "step.tolerance.threshold", ("[-1, 1]",)),
        ("tolerance.threshold", math.nan, "step.tolerance.threshold", ()),
        ("tolerance.threshold", -math.inf, "step.tolerance.threshold", ()),
        ("tolerance.threshold", True, "step.tolerance.threshold", ("number",)),
        ("tolerance.threshold", "0.9", "step.tolerance.threshold", ("number",)),
        ("tolerance.threshold", DELETE, "step.tolerance", ("threshold",)),
        ("expected.semantic_embedding", DELETE, "step.expected", ("semantic_embedding",)),
        ("expected.semantic_embedding", encode_embedding([0, 0, 0]),
         "step.expected.semantic_embedding", ("zero",)),
        ("expected.semantic_embedding", encode_embedding([1, math.nan]),
         "step.expected.semantic_embedding", ("NaN",)),
        ("expected.semantic_embedding", "AACAPw", "step.expected.semantic_embedding", ()),
        ("expected.semantic_embedding", "AACAPwA=", "step.expected.semantic_embedding",
         ("float32",)),
        ("expected.semantic_embedding", "", "step.expected.semantic_embedding", ("empty",)),
        ("expected.semantic_embedding", "AACA Pw==", "step.expected.semantic_embedding", ()),
        ("expected.semantic_embedding", [1.0, 0.0], "step.expected.semantic_embedding",
         ("string",)),
    ],
)
def test_semantic_step_rule(path: str, value: Any, where: str, words: tuple[str, ...]) -> None:
    assert_invalid(validate_step_record, changed(semantic_step(), path, value), where, *words)


@pytest.mark.parametrize(
    "level", ["", "model", "sampling", "inputs", "runtime", "expected", "tolerance"]
)
def test_step_unknown_field_at_every_level(level: str) -> None:
    step = base_step()
    target = step[level] if level else step
    target["surprise"] = 1
    where = f"step.{level}" if level else "step"
    assert_invalid(validate_step_record, step, where, "unknown field", "surprise")


def test_tool_versions_may_name_any_tool() -> None:
    validate_step_record(changed(base_step(), "runtime.tool_versions",
                                 {"vllm": "0.6", "\U0001f527": "1"}))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (2**53 + 1, ("2**53",)),
        (-(2**60), ("2**53",)),
        (math.nan, ("finite",)),
        (math.inf, ("finite",)),
        ("lone \udc00", ("surrogate",)),
        ((1, 2), ("tuple",)),
        ({1, 2}, ("set",)),
        (b"bytes", ("bytes",)),
        (object(), ("object",)),
        ({1: "int key"}, ("key",)),
        ({"\ud800": "surrogate key"}, ("surrogate",)),
    ],
)
def test_values_outside_the_jcs_domain_are_schema_errors(bad: Any, words: tuple[str, ...]) -> None:
    step = base_step()
    step["inputs"]["messages"] = [{"content": [bad]}]
    assert_invalid(validate_step_record, step, "step.inputs.messages[0].content", *words)


def test_deep_nesting_is_a_validation_error_not_a_crash() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    assert_invalid(validate_step_record, changed(base_step(), "expected.transcript", deep),
                   "step.expected.transcript", "nested")
    very_deep: Any = {}
    for _ in range(100_000):
        very_deep = {"k": very_deep}
    assert_invalid(validate_step_record, changed(base_step(), "expected.transcript", very_deep),
                   "step.expected.transcript", "nested")


@pytest.mark.parametrize("value", [None, [], "step", 1, True])
def test_step_must_be_an_object(value: Any) -> None:
    assert_invalid(validate_step_record, value, "step", "object")


# ------------------------------------------------------------------ bundle rules


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("rerun_version", "0.2", "bundle.rerun_version", ("0.1",)),
        ("rerun_version", 0.1, "bundle.rerun_version", ()),
        ("rerun_version", DELETE, "bundle", ("missing", "rerun_version")),
        ("inputs.messages_sha256", "sha256:" + "A" * 64, "bundle.inputs.messages_sha256", ()),
        ("inputs.messages_sha256", "0" * 64, "bundle.inputs.messages_sha256", ()),
        ("inputs.messages_sha256", "sha256:" + "0" * 63, "bundle.inputs.messages_sha256", ()),
        ("inputs.tools_sha256", 1, "bundle.inputs.tools_sha256", ()),
        ("inputs.system_prompt_sha256", DELETE, "bundle.inputs", ("system_prompt_sha256",)),
        ("expected.transcript_sha256", DELETE, "bundle.expected", ("transcript_sha256",)),
        ("expected.transcript_sha256", "sha256:xyz", "bundle.expected.transcript_sha256", ()),
        ("signature.alg", "EdDSA", "bundle.signature.alg", ("ed25519",)),
        ("signature.alg", "ED25519", "bundle.signature.alg", ()),
        ("signature.sig", DELETE, "bundle.signature", ("missing", "sig")),
        ("signature.pubkey", 7, "bundle.signature.pubkey", ("string",)),
        ("signature", "ed25519:abc", "bundle.signature", ("object",)),
        ("sampling.seed", 42.5, "bundle.sampling.seed", ("integer",)),
        ("sampling.temperature", False, "bundle.sampling.temperature", ("number",)),
        ("tolerance.threshold", 2, "bundle.tolerance.threshold", ("[-1, 1]",)),
        ("runtime.class", "edge", "bundle.runtime.class", ()),
    ],
)
def test_bundle_rule(path: str, value: Any, where: str, words: tuple[str, ...]) -> None:
    assert_invalid(validate_bundle, changed(base_bundle(), path, value), where, *words)


def test_semantic_bundle_needs_embedding_and_threshold() -> None:
    bundle = capture(semantic_step())
    validate_bundle(bundle)
    assert_invalid(validate_bundle, changed(bundle, "tolerance.threshold", DELETE),
                   "bundle.tolerance", "threshold")
    assert_invalid(validate_bundle, changed(bundle, "expected.semantic_embedding", DELETE),
                   "bundle.expected", "semantic_embedding")
    assert_invalid(validate_bundle, changed(bundle, "expected.semantic_embedding", 5),
                   "bundle.expected.semantic_embedding", "string")


@pytest.mark.parametrize(
    "level",
    ["", "model", "sampling", "inputs", "runtime", "expected", "tolerance", "signature"],
)
def test_bundle_unknown_field_at_every_level(level: str) -> None:
    bundle = base_bundle()
    target = bundle[level] if level else bundle
    target["surprise"] = 1
    where = f"bundle.{level}" if level else "bundle"
    assert_invalid(validate_bundle, bundle, where, "unknown field", "surprise")


# ------------------------------------------------------------------ actual record rules


@pytest.mark.parametrize(
    ("path", "value", "where", "words"),
    [
        ("inputs", DELETE, "actual", ("missing", "inputs")),
        ("output", DELETE, "actual", ("missing", "output")),
        ("inputs.system_prompt", 1, "actual.inputs.system_prompt", ("string",)),
        ("inputs.messages", "hi", "actual.inputs.messages", ("array",)),
        ("inputs.tools", {}, "actual.inputs.tools", ("array",)),
        ("output.embedding", [1.0], "actual.output.embedding", ("string",)),
        ("output", None, "actual.output", ("object",)),
        ("runtime.fingerprint", 3, "actual.runtime.fingerprint", ("string",)),
        ("runtime", "fp", "actual.runtime", ("object",)),
    ],
)
def test_actual_rule(path: str, value: Any, where: str, words: tuple[str, ...]) -> None:
    assert_invalid(validate_actual_record, changed(base_actual(), path, value), where, *words)


@pytest.mark.parametrize("level", ["", "inputs", "output", "runtime"])
def test_actual_unknown_field_at_every_level(level: str) -> None:
    actual = base_actual()
    target = actual[level] if level else actual
    target["surprise"] = 1
    where = f"actual.{level}" if level else "actual"
    assert_invalid(validate_actual_record, actual, where, "unknown field", "surprise")


def test_actual_optional_parts() -> None:
    validate_actual_record({"inputs": {"system_prompt": "", "messages": []}, "output": {}})
    validate_actual_record({"inputs": {"system_prompt": "", "messages": []}, "output": {},
                            "runtime": {}})


@pytest.mark.parametrize("value", [1e20, 2.0**53, -(2.0**60), 9.999999999999999e20])
def test_floats_written_as_integer_text_are_accepted(value: float) -> None:
    """JCS spells these floats as integer text (1e20 -> 100000000000000000000), the
    canonical digits of a double, which our I-JSON reader reads back as in the domain."""
    validate_step_record(changed(base_step(), "sampling.temperature", value))


@pytest.mark.parametrize("value", [1e21, 1.5e300, -1e21, 9007199254740991.0, 0.5])
def test_floats_written_in_exponent_or_safe_form_are_accepted(value: float) -> None:
    step = changed(base_step(), "sampling.temperature", value)
    validate_step_record(step)
    from agent_rerun.ijson import loads_ijson

    bundle = capture(step)
    assert loads_ijson(jcs_bytes(bundle)) == bundle


# ------------------------------------------------------------------ checked=


def _step_with(messages: Any) -> dict[str, Any]:
    from samples import sample_step

    step = sample_step()
    step["inputs"]["messages"] = messages
    return step


def test_checked_parts_skip_only_their_values() -> None:
    from agent_rerun.schema import ALL_VALUES

    nan_inside = _step_with([{"role": "user", "content": math.nan}])
    with pytest.raises(ValidationError, match="not finite"):
        validate_step_record(nan_inside)
    assert validate_step_record(nan_inside, checked=("inputs.*",)) is nan_inside
    assert validate_step_record(nan_inside, checked=ALL_VALUES) is nan_inside
    with pytest.raises(ValidationError, match="not finite"):  # another part is still walked
        validate_step_record(nan_inside, checked=("expected.transcript",))
    bad_key = _step_with([])
    bad_key["inputs"]["\ud800"] = 1
    with pytest.raises(ValidationError, match="lone surrogate"):  # keys of NAME.* are walked
        validate_step_record(bad_key, checked=("inputs.*",))
