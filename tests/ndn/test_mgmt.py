from __future__ import annotations

import pytest
from ndn.app_support import nfd_mgmt
from ndn.encoding import Name as PyName

from ccn.ndn import mgmt
from ccn.ndn.packets import decode_name, encode_name


def _ours(name: list[bytes]) -> tuple[tuple[int, bytes], ...]:
    return decode_name(PyName.encode(name))


@pytest.mark.parametrize("maker", [nfd_mgmt.make_command, nfd_mgmt.make_command_v2])
def test_parses_python_ndn_commands(maker: object) -> None:
    name = _ours(maker("rib", "register", None, name="/p/q", cost=7))  # type: ignore[operator]
    assert mgmt.is_command(name)
    cmd = mgmt.parse_command(name)
    assert (cmd.module, cmd.verb) == (b"rib", b"register")
    assert cmd.params.name == ((8, b"p"), (8, b"q")) and cmd.params.cost == 7


def test_response_parses_with_python_ndn() -> None:
    params = mgmt.ControlParameters(((8, b"p"),), 12, 0, 0, 1, None)
    wire = mgmt.control_response(200, "OK", params)
    got = nfd_mgmt.parse_response(wire)
    assert got["status_code"] == 200 and got["status_text"] == "OK"
    assert got["face_id"] == 12 and got["flags"] == 1
    assert encode_name(((8, b"p"),)) in wire
    err = nfd_mgmt.parse_response(mgmt.control_response(400, "bad", mgmt.ControlParameters()))
    assert err["status_code"] == 400


def test_rejects_malformed() -> None:
    with pytest.raises(mgmt.CommandRejected):
        mgmt.parse_command(((8, b"localhost"), (8, b"nfd"), (8, b"rib")))
    with pytest.raises(mgmt.CommandRejected):
        mgmt.parse_command(tuple((8, x) for x in (b"localhost", b"nfd", b"rib", b"register", b"?")))
