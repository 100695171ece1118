"""The verify path's value classes behave as the dataclasses they replaced."""

from __future__ import annotations

import pickle

import pytest

from agent_rerun import KeyPair, VerifyResult
from agent_rerun.policy import VerifyPolicy
from agent_rerun.verify import KnownSigner, SignerInfo


def _signer(**changes: object) -> SignerInfo:
    fields: dict[str, object] = {"public_key": "AAAA", "fingerprint": "SHA256:x"}
    fields.update(changes)
    return SignerInfo(**fields)  # type: ignore[arg-type]


def test_equality_is_by_value_and_class() -> None:
    assert _signer() == _signer()
    assert _signer(trusted=True) != _signer()
    assert KeyPair(b"a", b"b") == KeyPair(b"a", b"b")
    assert KeyPair(b"a", b"b") != KeyPair(b"a", b"c")
    assert KeyPair(b"a", b"b") != (b"a", b"b")
    assert VerifyResult(True) == VerifyResult(True, [], [], None)
    assert VerifyResult(False, ["X"]) != VerifyResult(False, ["Y"])


def test_frozen_records_refuse_changes_and_hash_by_value() -> None:
    info = _signer()
    with pytest.raises(AttributeError, match="cannot assign to field 'trusted'"):
        info.trusted = True
    with pytest.raises(AttributeError, match="cannot delete"):
        del info.name
    with pytest.raises(AttributeError):
        info.extra = 1  # type: ignore[attr-defined]
    assert hash(info) == hash(_signer())
    assert len({KeyPair(b"a", b"b"), KeyPair(b"a", b"b")}) == 1


def test_the_mutable_result_is_unhashable_and_changeable() -> None:
    result = VerifyResult(True)
    result.warnings.append("W")
    assert result.warnings == ["W"]
    with pytest.raises(TypeError):
        hash(result)
    assert VerifyResult(True).errors is not VerifyResult(True).errors


def test_repr_names_every_field_in_order() -> None:
    assert repr(KeyPair(b"a", b"b")) == "KeyPair(public_key=b'a', private_key=b'b')"
    assert repr(VerifyResult(False, ["E"])) == (
        "VerifyResult(verified=False, errors=['E'], warnings=[], signer=None)")


def test_records_survive_pickling_as_batch_workers_send_them() -> None:
    info = _signer(trusted=True, principals=("ci",), revoked=False, revocation_checked=True)
    result = VerifyResult(True, [], ["W"], info)
    known = KnownSigner(info, None, ())
    for value in (info, result, known, KeyPair(b"a", b"b")):
        assert pickle.loads(pickle.dumps(value)) == value


def test_the_policy_cache_is_not_part_of_its_value() -> None:
    policy = VerifyPolicy(require_signature=True)
    policy.known_signers[b"k"] = KnownSigner(_signer(), None, ())
    assert policy == VerifyPolicy(require_signature=True)
    assert "known_signers" not in repr(policy)
    copied = pickle.loads(pickle.dumps(policy))
    assert copied == policy and copied.known_signers == {}
    assert VerifyPolicy().known_signers is not VerifyPolicy().known_signers


def test_dataclasses_functions_still_apply() -> None:
    """The records were dataclasses (the published package's VerifyResult and
    KeyPair are): asdict, fields, replace and is_dataclass keep working."""
    import dataclasses

    info = _signer(trusted=True, principals=("ci",))
    result = VerifyResult(True, [], ["W"], info)
    assert dataclasses.is_dataclass(result) and dataclasses.is_dataclass(KeyPair)
    assert [f.name for f in dataclasses.fields(SignerInfo)] == list(SignerInfo._fields)
    as_dict = dataclasses.asdict(result)
    assert as_dict["warnings"] == ["W"] and as_dict["signer"]["principals"] == ("ci",)
    assert dataclasses.asdict(KeyPair(b"a", b"b")) == {"public_key": b"a", "private_key": b"b"}
    changed = dataclasses.replace(info, name="laptop")
    assert changed.name == "laptop" and changed.public_key == info.public_key
    assert info.name is None  # frozen: replace made a new one
    policy = dataclasses.replace(VerifyPolicy(), require_signature=True)
    assert policy.require_signature and policy.known_signers == {}


def test_records_match_by_position() -> None:
    match KeyPair(b"a", b"b"):
        case KeyPair(public, private):
            assert (public, private) == (b"a", b"b")
        case _:
            raise AssertionError("no match")


def test_asking_a_base_class_leaves_the_records_described() -> None:
    """Looking at the base (help(), inspect, is_dataclass) must not hide the fields
    of the records not yet looked at."""
    import dataclasses
    import weakref

    from agent_rerun.record import FrozenRecord, Record

    assert dataclasses.is_dataclass(FrozenRecord) and dataclasses.is_dataclass(Record)
    assert dataclasses.asdict(KeyPair(b"a", b"b")) == {"public_key": b"a", "private_key": b"b"}
    assert dataclasses.asdict(_signer())["fingerprint"] == "SHA256:x"
    assert dataclasses.replace(_signer(), name="n").name == "n"
    with pytest.raises(dataclasses.FrozenInstanceError):
        _signer().name = "x"
    result = VerifyResult(True)
    assert weakref.ref(result)() is result
