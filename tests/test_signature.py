"""agent_rerun.signature: key pairs, the weak-key refusal, the payload and the signature block."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_rerun.b64 import encode
from agent_rerun.signature import (
    SignatureError,
    check_bundle_signature,
    check_ed25519,
    decode_signature_block,
    generate_key_pair,
    is_small_order,
    signature_block,
    signed_bundle_bytes,
    signing_payload,
)

_P = 2**255 - 19
#: The y-coordinates of the eight points of order dividing 8 (RFC 8032 curve, by hand).
_SMALL_ORDER_Y = [0, 1, _P - 1,
                  0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
                  _P - 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826]


def _sign(private_key: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private_key).sign(message)


def _signed(bundle: dict[str, object]) -> dict[str, object]:
    pair = generate_key_pair()
    block = signature_block(pair.public_key, _sign(pair.private_key, signing_payload(bundle)))
    return {**bundle, "signature": block}


def test_generate_key_pair_is_a_matching_raw_pair() -> None:
    pair = generate_key_pair()
    assert len(pair.public_key) == 32 and len(pair.private_key) == 32
    check_ed25519(pair.public_key, _sign(pair.private_key, b"m"), b"m")
    assert generate_key_pair() != pair


@pytest.mark.parametrize("y", _SMALL_ORDER_Y)
@pytest.mark.parametrize("sign_bit", [0, 1])
@pytest.mark.parametrize("plus_p", [False, True])
def test_every_encoding_of_a_small_order_point_is_refused(y: int, sign_bit: int,
                                                          plus_p: bool) -> None:
    value = y + _P if plus_p and y + _P < 2**255 else y
    key = (value | (sign_bit << 255)).to_bytes(32, "little")
    assert is_small_order(key)
    with pytest.raises(SignatureError, match="small-order"):
        check_ed25519(key, bytes(64), b"m")


def test_an_ordinary_key_is_not_small_order() -> None:
    assert not is_small_order(generate_key_pair().public_key)


@pytest.mark.parametrize(("public_key", "signature", "says"), [
    (bytes(31), bytes(64), "pubkey must be 32 bytes"),
    (None, bytes(63), "sig must be 64 bytes"),
    (None, bytes(64), "does not match"),
])
def test_check_ed25519_says_what_is_wrong(public_key: bytes | None, signature: bytes,
                                          says: str) -> None:
    key = public_key if public_key is not None else generate_key_pair().public_key
    with pytest.raises(SignatureError, match=says):
        check_ed25519(key, signature, b"m")


def test_the_payload_is_the_bundle_without_its_signature_in_jcs() -> None:
    assert signing_payload({"b": 1, "a": [1.0, "é"], "signature": {"x": 1}}) == \
        '{"a":[1,"é"],"b":1}'.encode()


def test_a_signed_bundle_checks_and_a_changed_one_does_not() -> None:
    bundle = _signed({"rerun_version": "0.1", "n": 1})
    public_key = check_bundle_signature(bundle)
    assert encode(public_key) == bundle["signature"]["pubkey"]  # type: ignore[index]
    with pytest.raises(SignatureError, match="does not match"):
        check_bundle_signature({**bundle, "n": 2})


@pytest.mark.parametrize(("block", "says"), [
    ({"alg": "rsa", "pubkey": "", "sig": ""}, "alg must be 'ed25519'"),
    ({"alg": "ed25519", "pubkey": "AQ=", "sig": ""}, "pubkey is not"),
    ({"alg": "ed25519", "pubkey": "AQ==", "sig": 5}, "sig must be a base64 string"),
])
def test_decode_signature_block_refuses_other_algorithms_and_loose_base64(
        block: dict[str, object], says: str) -> None:
    with pytest.raises(SignatureError, match=says):
        decode_signature_block(block)


def test_a_missing_block_is_an_error_not_a_pass() -> None:
    with pytest.raises(SignatureError, match="missing"):
        check_bundle_signature({"rerun_version": "0.1"})


_KEYS_AROUND_SIGNATURE = st.sampled_from([
    "a", "expected", "sampling", "sig", "signatur", "signaturd", "signature0", "signaturf",
    "signatures", "t", "tolerance", "z", "\u00e9", "\ue000", "\U0001f600", "s\U0001f600",
    "signatur\U0001f600", ""])


@settings(max_examples=400, deadline=None)
@given(unsigned=st.dictionaries(_KEYS_AROUND_SIGNATURE,
                                st.recursive(st.none() | st.booleans() | st.integers(-9, 9)
                                             | st.floats(allow_nan=False, allow_infinity=False)
                                             | st.text(max_size=5),
                                             lambda inner: st.lists(inner, max_size=3)
                                             | st.dictionaries(st.text(max_size=3), inner,
                                                               max_size=3),
                                             max_leaves=8),
                                max_size=6),
       block=st.dictionaries(st.sampled_from(["alg", "pubkey", "sig"]), st.text(max_size=8)))
def test_signed_bytes_from_the_payload_are_the_jcs_of_the_signed_bundle(
        unsigned: dict[str, Any], block: dict[str, str]) -> None:
    """The batch writer splices the signature into the payload it already has: the
    bytes must be exactly the JCS of the signed bundle, wherever the keys sort."""
    unsigned.pop("signature", None)
    expected = rfc8785.dumps({**unsigned, "signature": block})
    assert signed_bundle_bytes(signing_payload(unsigned), unsigned, block) == expected


def test_signed_bytes_refuse_a_payload_of_another_bundle() -> None:
    unsigned = {"a": 1, "tolerance": {"level": "byte"}}
    with pytest.raises(ValueError, match="not the signing payload"):
        signed_bundle_bytes(b'{"a":1,"tolerance":{"level":"semantic"}}', unsigned, {"sig": "x"})
