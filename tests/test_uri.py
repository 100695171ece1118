"""agent_rerun.uri: the one percent-decoder and ``file:`` reader every key URI uses."""

from __future__ import annotations

import pytest
from agent_rerun_keyring.uri import parse_keyring_uri
from agent_rerun_pkcs11.pin import pin_source_path
from agent_rerun_pkcs11.uri import parse as parse_pkcs11

from agent_rerun.errors import SignerError
from agent_rerun.keyfile import key_path
from agent_rerun.sshagent.uri import parse_agent_uri
from agent_rerun.uri import (
    PercentDecodeError,
    file_location_path,
    percent_decode,
    percent_decode_bytes,
)


def test_plus_stays_a_plus_and_escapes_decode_as_utf8() -> None:
    assert percent_decode("a+b%2Bc%20d%C3%A9") == "a+b+c dé"
    assert percent_decode_bytes("%00%ff+") == b"\x00\xff+"


@pytest.mark.parametrize(("raw", "says", "escape"), [
    ("50%off", "not a %XX escape", "%of"), ("%", "not a %XX escape", "%"),
    ("%ff", "UTF-8", ""), ("a%0Ab", "control character", ""), ("\udcff", "UTF-8", ""),
])
def test_what_does_not_decode_is_refused(raw: str, says: str, escape: str) -> None:
    with pytest.raises(PercentDecodeError, match=says) as exc:
        percent_decode(raw)
    assert exc.value.escape == escape


def test_controls_pass_only_when_asked() -> None:
    assert percent_decode("a%0Ab", controls=True) == "a\nb"


@pytest.mark.parametrize(("location", "path"), [
    ("/abs/k", "/abs/k"), ("rel/k", "rel/k"), ("file:rel/k", "rel/k"),
    ("file:/a%20b", "/a%20b"), ("FILE:/x", "/x"), ("file:///a%20b+c", "/a b+c"),
    ("FILE://localhost/x", "/x"), ("file:~/k", "~/k"),
])
def test_file_locations(location: str, path: str) -> None:
    assert file_location_path(location, "key") == path


def test_a_remote_file_url_is_refused() -> None:
    with pytest.raises(SignerError, match="pin-source 'file://host/x' names host 'host'"):
        file_location_path("file://host/x", "pin-source")


@pytest.mark.parametrize("location", ["file:/tmp/my%20pin", "file:///tmp/my%20pin",
                                      "FILE:///tmp/my%20pin", "/tmp/my%20pin"])
def test_key_files_and_pin_sources_read_a_location_the_same_way(location: str) -> None:
    assert pin_source_path(location) == key_path(location)


def test_every_backend_refuses_a_stray_percent_with_one_wording() -> None:
    for parse, uri in [(parse_keyring_uri, "keyring:50%off"),
                       (parse_agent_uri, "ssh-agent:?comment=50%off")]:
        with pytest.raises(SignerError, match="not a %XX escape"):
            parse(uri)
    with pytest.raises(SignerError, match="bad percent-encoding in object near '%of'"):
        parse_pkcs11("pkcs11:object=50%off")
