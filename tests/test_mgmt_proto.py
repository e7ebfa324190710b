from __future__ import annotations

import pytest

from ccn.errors import DecodeError
from ccn.mgmt_proto import (
    PARAM_COMPONENT_BYTES,
    command_name,
    decode_reply,
    encode_reply,
    parse_command,
)
from ccn.name import Name


def test_round_trip_with_long_parameters() -> None:
    params = {"path": "/x" * 400, "name": "/a/b"}
    name = command_name("publish", params)
    assert all(len(c) <= PARAM_COMPONENT_BYTES for c in name.components)
    assert parse_command(name) == ("publish", params)
    assert parse_command(command_name("status")) == ("status", {})


@pytest.mark.parametrize(
    "text", ["/a/b", "/localhost/ccn", "/localhost/ccn/status/%FF%FF", "/localhost/ccn/x/%01"]
)
def test_malformed_commands(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_command(Name.parse(text))


def test_replies() -> None:
    assert decode_reply(encode_reply({"ok": True, "x": 1})) == {"ok": True, "x": 1}
    for bad in (b"\xc1", encode_reply({"x": 1}), b"\x01"):
        with pytest.raises(DecodeError):
            decode_reply(bad)


def test_arguments_too_long_for_a_command_are_named_as_such() -> None:
    # 'ccn put <a 2 KB path> /short' said "name too long" of the name /short (helper-54).
    from ccn.errors import InvalidName

    with pytest.raises(InvalidName, match=r"^the arguments of 'publish' take \d+ bytes"):
        command_name("publish", {"path": "/d" * 1100, "name": "/short"})
    assert parse_command(command_name("publish", {"path": "/d" * 500}))[1] == {"path": "/d" * 500}
