"""RFC 7512 URIs: parsing, percent-encoding, and the PIN never shown. No token needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pkcs11_fixtures import import_or_skip

from agent_rerun.errors import SignerError

import_or_skip("agent_rerun_pkcs11")

from agent_rerun_pkcs11.uri import Pkcs11Uri, parse  # noqa: E402


def test_path_and_query_attributes_are_decoded() -> None:
    uri = parse(
        "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc123;model=SoftHSM%20v2;"
        "slot-id=7;object=rerun%2Fsigning;id=%01%02%ff;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:///run/pin"
    )
    assert uri.token == "My Token"
    assert uri.attrs["manufacturer"] == "SoftHSM project"
    assert uri.attrs["serial"] == "abc123"
    assert uri.attrs["model"] == "SoftHSM v2"
    assert uri.slot_id == 7
    assert uri.object == "rerun/signing"
    assert uri.id == b"\x01\x02\xff"
    assert uri.type == "private"
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin_source == "file:///run/pin"


def test_plus_is_never_a_space() -> None:
    uri = parse("pkcs11:object=a+b%2Bc?pin-value=12+34%2056")
    assert uri.object == "a+b+c"
    assert uri.pin_value == "12+34 56"


def test_scheme_is_case_insensitive_and_empty_uri_is_valid() -> None:
    assert parse("PKCS11:token=x").token == "x"
    assert parse("pkcs11:") == Pkcs11Uri()


def test_format_round_trips_and_encodes_id_bytewise() -> None:
    text = "pkcs11:token=A%20B;serial=1;object=k%3Bey;id=%00%41?module-path=/m.so"
    uri = parse(text)
    formatted = uri.format()
    assert formatted == "pkcs11:token=A%20B;serial=1;object=k%3Bey;id=%00%41?module-path=/m.so"
    assert parse(formatted) == uri


@given(
    token=st.text(min_size=1, max_size=20),
    obj=st.text(max_size=20),
    key_id=st.binary(max_size=16),
    pin=st.text(min_size=1, max_size=12),
)
def test_any_values_survive_a_round_trip(token: str, obj: str, key_id: bytes, pin: str) -> None:
    uri = Pkcs11Uri(attrs={"token": token}, object=obj, id=key_id, pin_value=pin)
    assert parse(uri.format(pin="keep")) == uri


@pytest.mark.parametrize("pin", ["s3cr3t", "12+34", "p%41ss"])
def test_pin_value_is_redacted_in_str_repr_and_format(pin: str) -> None:
    uri = parse(f"pkcs11:token=t;object=k?pin-value={pin}&module-path=/m.so")
    decoded = uri.pin_value
    assert decoded
    for shown in (str(uri), repr(uri), uri.format(), uri.key_uri().format()):
        assert decoded not in shown and pin not in shown, shown
    assert "pin-value=***" in str(uri)
    assert "pin-value" not in uri.format(pin="drop")


def test_pin_source_and_pin_value_together_are_refused() -> None:
    with pytest.raises(SignerError, match="either pin-source or pin-value") as caught:
        parse("pkcs11:token=t?pin-source=/p&pin-value=hunter2")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("file:/x", "not a pkcs11: URI"),
        ("pkcs11:token=a;token=b", "appears twice"),
        ("pkcs11:colour=blue", "unsupported path attribute 'colour'"),
        ("pkcs11:token", "not of the form name=value"),
        ("pkcs11:slot-id=one", "slot-id must be a decimal number"),
        ("pkcs11:type=secret", "type='secret' is not one of"),
        ("pkcs11:object=%zz", "bad percent-encoding in object"),
        ("pkcs11:object=%ff%fe", "object is not valid UTF-8"),
        ("pkcs11:?module-path=/a&module-name=b", "either module-path or module-name"),
        ("pkcs11:?pin-colour=x", "unsupported query attribute 'pin-colour'"),
        ("pkcs11:token=a#frag", "fragment"),
    ],
)
def test_malformed_uris_are_one_clear_line(text: str, says: str) -> None:
    with pytest.raises(SignerError) as caught:
        parse(text)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


def test_errors_never_echo_a_pin() -> None:
    for text in ("pkcs11:?pin-value=%zzhunter2", "pkcs11:?hunter2", "pkcs11:?pin-value=%ffhunter2"):
        with pytest.raises(SignerError) as caught:
            parse(text)
        assert "hunter2" not in str(caught.value), caught.value


def test_vendor_query_attributes_are_ignored() -> None:
    assert parse("pkcs11:token=t?x-vendor=1").token == "t"


@pytest.mark.parametrize(
    "secret_attr", ["pin-value=4321", "pin-source=/tmp/4321", "module-name=4321"]
)
def test_semicolon_in_query_is_refused_without_echoing_values(secret_attr: str) -> None:
    """Issue 9 item 10: ';' between query attributes once put the PIN into a module path."""
    text = f"pkcs11:token=rerun;object=signing?module-path=/usr/lib/x.so;{secret_attr}"
    with pytest.raises(SignerError) as caught:
        parse(text)
    assert "malformed query" in str(caught.value)
    assert "4321" not in str(caught.value)


def test_redact_hides_the_query_of_unparseable_uris() -> None:
    from agent_rerun_pkcs11.uri import redact

    assert "4321" not in redact("pkcs11:token=t?module-path=/x.so;pin-value=4321")
    assert redact("pkcs11:token=t?pin-value=4321") == "pkcs11:token=t?pin-value=***"
