"""The PKCS#11 backend through the library, against a real SoftHSM2 token.

Keys are generated on the token, bundles are signed there and checked by the
pure-software verifier; the error cases are produced by the real module
(wrong PIN, missing token, keys that may not sign, ambiguous keys).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pkcs11_fixtures import (
    MAIN_TOKEN,
    OTHER_TOKEN,
    USER_PIN,
    SoftHsm,
    import_or_skip,
    softhsm,
    token_session,
)
from samples import SAMPLE_ACTUAL, SAMPLE_STEP

from agent_rerun.capture import CaptureOptions, capture
from agent_rerun.errors import SignerError
from agent_rerun.signer import closing_signer, generate_key, list_keys, load_signer
from agent_rerun.verify import verify

import_or_skip("agent_rerun_pkcs11")
pkcs11 = import_or_skip("pkcs11")

from agent_rerun_pkcs11.keys import (  # noqa: E402
    ED25519_OID_PARAMS,
    EDWARDS25519_PARAMS,
    raw_public_key,
)
from agent_rerun_pkcs11.uri import parse  # noqa: E402
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass  # noqa: E402

__all__ = ["softhsm", "token_session"]  # the imported fixtures are used by name

pytestmark = pytest.mark.pkcs11


def label() -> str:
    return f"k-{uuid.uuid4().hex[:10]}"


def raw_keypair(session: Any, name: str, key_id: bytes, *, sign: bool = True,
                params: bytes = EDWARDS25519_PARAMS) -> None:
    """Make a key directly with python-pkcs11, the way another tool would."""
    session.generate_keypair(
        KeyType.EC_EDWARDS, store=True, label=name, id=key_id,
        capabilities=MechanismFlag(0),
        public_template={Attribute.EC_PARAMS: params, Attribute.VERIFY: True},
        private_template={Attribute.SIGN: sign},
    )


# ---------------------------------------------------------------- keygen


def test_keygen_makes_a_sensitive_non_extractable_signing_only_key(
    softhsm: SoftHsm, session: Any
) -> None:
    name = label()
    info = generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    uri = parse(info.uri)
    assert uri.object == name and uri.id is not None and len(uri.id) == 8
    assert uri.token == MAIN_TOKEN and uri.pin_value is None
    assert len(info.public_key) == 32

    private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=name)
    expected = {
        Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
        Attribute.ALWAYS_SENSITIVE: True, Attribute.EXTRACTABLE: False,
        Attribute.NEVER_EXTRACTABLE: True, Attribute.SIGN: True,
        Attribute.SIGN_RECOVER: False, Attribute.DECRYPT: False,
        Attribute.UNWRAP: False, Attribute.DERIVE: False,
    }
    actual = private.get_attributes(list(expected))
    assert {a: bool(v) for a, v in actual.items()} == expected
    assert bytes(private[Attribute.ID]) == uri.id
    assert bytes(private[Attribute.EC_PARAMS]) == EDWARDS25519_PARAMS
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        private[Attribute.VALUE]

    public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC_EDWARDS, label=name)
    assert bytes(public[Attribute.ID]) == uri.id
    assert public[Attribute.TOKEN] is True and public[Attribute.PRIVATE] is False
    assert raw_public_key(public[Attribute.EC_POINT]) == info.public_key


def test_keygen_uses_the_uri_id_and_refuses_existing_label_or_id(softhsm: SoftHsm) -> None:
    name = label()
    info = generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name};id=%A1%B2"))
    assert parse(info.uri).id == b"\xa1\xb2"
    for clash, says in (
        (f"object={name};id=%C3", f"label '{name}'"),
        (f"object={label()};id=%A1%B2", "id a1b2"),
    ):
        with pytest.raises(SignerError, match="already holds an object with") as caught:
            generate_key(softhsm.uri(f"token={MAIN_TOKEN};{clash}"), force=True)
        assert says in str(caught.value)
    keys = [k for k in list_keys(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))]
    assert [k.public_key for k in keys] == [info.public_key]  # the original is untouched


def test_keygen_needs_an_object_label(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError, match="needs a label: add object=NAME"):
        generate_key(softhsm.uri(f"token={MAIN_TOKEN}"))


# ---------------------------------------------------------------- signing


def test_capture_signs_many_bundles_in_one_session(softhsm: SoftHsm, tmp_path: Path) -> None:
    name = label()
    info = generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    pin_file = tmp_path / "pin"
    pin_file.write_text(USER_PIN)
    pin_file.chmod(0o600)
    signer = load_signer(f"pkcs11:token={MAIN_TOKEN};object={name}"
                         f"?module-path={softhsm.module}&pin-source={pin_file}")
    pin_file.unlink()  # every later signature must reuse the one login
    with closing_signer(signer):
        assert signer.public_key == info.public_key
        bundles = []
        for i in range(25):
            step = {**SAMPLE_STEP, "sampling": {**SAMPLE_STEP["sampling"], "seed": i}}
            bundles.append(capture(step, CaptureOptions(signer=signer)))
    for bundle in bundles:
        result = verify(bundle, SAMPLE_ACTUAL, trusted_keys=[info.public_key])
        assert result.verified, result.errors
    with pytest.raises(SignerError, match="was closed"):
        signer.sign(b"after close")


def test_sign_many_checks_every_token_signature_in_order(softhsm: SoftHsm) -> None:
    """The pipelined batch gives exactly sign()'s signatures (Ed25519 is deterministic)."""
    from agent_rerun.signer import SignsMany, sign_all

    name = label()
    generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    payloads = [f"payload {i}".encode() * (i + 1) for i in range(40)]
    with closing_signer(load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))) as signer:
        assert isinstance(signer, SignsMany)
        one_by_one = [signer.sign(p) for p in payloads]
        assert signer.sign_many(payloads) == one_by_one
        assert sign_all(signer, payloads[:1]) == one_by_one[:1]
        assert signer.sign_many([]) == []


def test_sign_many_stops_the_token_at_a_signature_that_does_not_verify(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token returning a bad signature mid-batch: the batch fails, the token stops.

    SoftHSM never returns a wrong signature, so this one test corrupts the 5th
    signature between the token and the check (the fault the check exists for).
    """
    from agent_rerun_pkcs11.signer import SIGN_AHEAD, Pkcs11Signer

    name = label()
    generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    calls: list[bytes] = []
    real = Pkcs11Signer.sign_unchecked

    def faulty(self: Pkcs11Signer, data: bytes) -> bytes:
        calls.append(data)
        signature = real(self, data)
        return bytes(64) if len(calls) == 5 else signature

    monkeypatch.setattr(Pkcs11Signer, "sign_unchecked", faulty)
    payloads = [b"%d" % i for i in range(500)]
    with closing_signer(load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))) as signer:
        with pytest.raises(SignerError, match="does not verify against its public key"):
            signer.sign_many(payloads)
        stopped_at = len(calls)
        assert stopped_at <= 5 + SIGN_AHEAD  # the token thread was stopped, not run to the end
        signer.sign(b"the session is usable again")
    assert len(calls) == stopped_at + 1


def test_keys_made_by_other_tools_with_the_oid_params_are_usable(
    softhsm: SoftHsm, session: Any
) -> None:
    name = label()
    raw_keypair(session, name, b"\x5a\x01", params=ED25519_OID_PARAMS)
    with closing_signer(load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))) as signer:
        bundle = capture(SAMPLE_STEP, CaptureOptions(signer=signer))
    assert verify(bundle, SAMPLE_ACTUAL, trusted_keys=[signer.public_key]).verified


def test_a_key_not_allowed_to_sign_is_refused(softhsm: SoftHsm, session: Any) -> None:
    name = label()
    raw_keypair(session, name, b"\x5a\x02", sign=False)
    with pytest.raises(SignerError, match=r"is not allowed to sign \(CKA_SIGN is false\)"):
        load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))


def test_several_matching_keys_are_listed_and_the_id_picks_one(
    softhsm: SoftHsm, session: Any
) -> None:
    name = label()
    raw_keypair(session, name, b"\x01\x11")
    raw_keypair(session, name, b"\x01\x22")
    with pytest.raises(SignerError) as caught:
        load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    message = str(caught.value)
    assert f"2 Ed25519 keys on token '{MAIN_TOKEN}' match object='{name}'" in message
    assert "id=%01%11" in message and "id=%01%22" in message
    with closing_signer(
        load_signer(softhsm.uri(f"token={MAIN_TOKEN};object={name};id=%01%22"))
    ) as signer:
        assert len(signer.sign(b"x")) == 64


def test_no_matching_key(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError, match=f"no Ed25519 private key on token '{MAIN_TOKEN}'"):
        load_signer(softhsm.uri(f"token={MAIN_TOKEN};object=does-not-exist"))


# ---------------------------------------------------------------- tokens and PINs


def test_wrong_pin_names_the_token_and_is_asked_once(softhsm: SoftHsm) -> None:
    asked: list[str] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append(text)
        return "wrong-pin-9"

    uri = softhsm.uri(f"token={MAIN_TOKEN};object=any", pin=False)
    with pytest.raises(SignerError) as caught:
        load_signer(uri, prompt=prompt)
    assert str(caught.value).startswith(f"wrong PIN for token '{MAIN_TOKEN}' (not retried")
    assert "wrong-pin-9" not in str(caught.value)
    assert len(asked) == 1

    asked.clear()
    with pytest.raises(SignerError, match="wrong PIN"):
        load_signer(uri + "&pin-value=also-wrong", prompt=prompt)
    assert asked == []  # an explicit PIN that fails never falls back to asking


def test_a_token_that_is_not_present(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError) as caught:
        load_signer(softhsm.uri("token=no-such-token;object=k"))
    message = str(caught.value)
    assert message.startswith("token not present: no initialised token matches token='no-such")
    assert f"token={MAIN_TOKEN}" in message and f"token={OTHER_TOKEN}" in message
    assert message.count("pkcs11:") == 2  # SoftHSM's free, uninitialised slot is not offered


def test_several_tokens_match_and_are_listed(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError, match="2 tokens match the URI; name one with token=") as caught:
        load_signer(softhsm.uri("object=k"))
    assert f"token={MAIN_TOKEN}" in str(caught.value)
    assert f"token={OTHER_TOKEN}" in str(caught.value)


def test_pin_value_works_and_never_shows(softhsm: SoftHsm) -> None:
    name = label()
    encoded = USER_PIN.replace(" ", "%20")  # '+' stays literal and must not become a space
    uri = (f"pkcs11:token={MAIN_TOKEN};object={name}"
           f"?module-path={softhsm.module}&pin-value={encoded}")
    info = generate_key(uri)
    infos = list_keys(uri)
    with closing_signer(load_signer(uri)) as signer:
        shown = [info.uri, info.description, repr(signer), str(signer)]
        shown += [i.uri for i in infos] + [i.description for i in infos]
    for text in shown:
        assert USER_PIN not in text and encoded not in text, text


# ---------------------------------------------------------------- listing


def test_keys_list_gives_uris_ready_for_key(softhsm: SoftHsm) -> None:
    name = label()
    info = generate_key(softhsm.uri(f"token={MAIN_TOKEN};object={name}"))
    logged_in = list_keys(softhsm.uri(f"token={MAIN_TOKEN}"))
    mine = [k for k in logged_in if parse(k.uri).object == name]
    assert len(mine) == 1 and mine[0].public_key == info.public_key
    assert "(can sign)" in mine[0].description
    assert f"pin-source={softhsm.pin_file}" in mine[0].uri  # kept: it is a path, not a PIN
    with closing_signer(load_signer(mine[0].uri)) as signer:
        assert signer.public_key == info.public_key

    everywhere = list_keys(f"pkcs11:?module-path={softhsm.module}")  # no PIN: public objects
    assert any(k.public_key == info.public_key for k in everywhere)
    assert {parse(k.uri).token for k in everywhere} <= {MAIN_TOKEN, OTHER_TOKEN}


def test_ec_point_raw_and_der_wrapped() -> None:
    key = bytes(range(32))
    assert raw_public_key(key) == key
    assert raw_public_key(b"\x04\x20" + key) == key
    with pytest.raises(SignerError, match="33 bytes is not an Ed25519 public key"):
        raw_public_key(b"\x04" + key)
