from __future__ import annotations

import json
import subprocess

import pytest

from ccn.faces.uri import FaceUri, InvalidUri, is_own_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:6464", FaceUri("tcp", host="127.0.0.1", port=6464)),
        ("tcp://[::1]:1", FaceUri("tcp", host="::1", port=1)),
        ("udp://[::1]:6464", FaceUri("udp", host="::1", port=6464)),
        ("udp://[fe80::1%e1]:6464", FaceUri("udp", host="fe80::1%e1", port=6464)),
        ("tcp://[fe80::a:b%veth0]:7", FaceUri("tcp", host="fe80::a:b%veth0", port=7)),
        ("tcp://[fe80::1%Eth0]:7", FaceUri("tcp", host="fe80::1%Eth0", port=7)),  # case kept
        ("tcp://[fe80::1%3]:7", FaceUri("tcp", host="fe80::1%3", port=7)),  # interface index
        ("unix:///run/ccn.sock", FaceUri("unix", path="/run/ccn.sock")),
    ],
)
def test_parse_and_print(text: str, expected: FaceUri) -> None:
    uri = FaceUri.parse(text)
    assert uri == expected
    assert str(uri) == text


def test_rfc_6874_zone_is_read_and_printed_as_ip_writes_it() -> None:
    uri = FaceUri.parse("udp://[fe80::1%25e1]:6464")
    assert uri == FaceUri("udp", host="fe80::1%e1", port=6464)
    assert str(uri) == "udp://[fe80::1%e1]:6464"


@pytest.mark.parametrize(
    "text", ["", "tcp://host", "tcp://:5", "unix://", "http://x:1", "tcp://h:99999"]
)
def test_rejects(text: str) -> None:
    with pytest.raises(InvalidUri):
        FaceUri.parse(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tcp://::1:6464", "an IPv6 address goes in brackets"),
        ("udp://fe80::1%e1:6464", "an IPv6 address goes in brackets"),
        ("tcp://[fe80::1%25]:6464", "no interface after '%'"),
        ("tcp://[fe80::1%]:6464", "does not appear to be an IPv4 or IPv6 address"),
        ("tcp://[::1]", "expected tcp://HOST:PORT"),
        ("tcp://[nope]:1", "does not appear to be an IPv4 or IPv6 address"),
        ("tcp://10.0.0.1:6464/x", "expected tcp://HOST:PORT, nothing more"),
        ("udp://h:1?x=1", "expected udp://HOST:PORT, nothing more"),
        ("tcp://me@h:1", "expected tcp://HOST:PORT, nothing more"),
        ("unix:///tmp/n\0c.sock", "it holds a NUL character"),
    ],
)
def test_bad_ipv6_addresses_are_one_clear_error(text: str, why: str) -> None:
    with pytest.raises(InvalidUri) as caught:
        FaceUri.parse(text)
    assert str(caught.value).startswith(f"bad address {text!r}: ")
    assert why in str(caught.value)


def test_a_unix_path_is_taken_as_written() -> None:
    # urlsplit took "?v=2.sock" for a query and "#1.sock" for a fragment: the node listened
    # on a path cut short (helper-54)
    for path in ("/tmp/sock?v=2.sock", "/tmp/my#1.sock", "/tmp/a b.sock"):
        assert FaceUri.parse(f"unix://{path}") == FaceUri("unix", path=path)


@pytest.mark.parametrize(
    ("target", "listener", "own"),
    [
        ("tcp://127.0.0.1:6464", "tcp://0.0.0.0:6464", True),
        ("tcp://127.0.0.2:6464", "tcp://0.0.0.0:6464", True),  # all of 127/8 is this host
        ("tcp://localhost:6464", "tcp://127.0.0.1:6464", True),
        ("tcp://0.0.0.0:6464", "tcp://127.0.0.1:6464", True),  # 0.0.0.0 reaches loopback
        ("tcp://0.0.0.0:6464", "tcp://0.0.0.0:6464", True),
        ("tcp://[::ffff:127.0.0.1]:6464", "tcp://127.0.0.1:6464", True),
        ("tcp://[::1]:6464", "tcp://[::]:6464", True),
        ("udp://127.0.0.1:6464", "udp://0.0.0.0:6464", True),
        ("unix:///tmp/x/../n.sock", "unix:///tmp/n.sock", True),
        ("tcp://[::1]:6464", "tcp://0.0.0.0:6464", False),  # an IPv4 listener
        ("tcp://127.0.0.1:6465", "tcp://0.0.0.0:6464", False),
        ("udp://127.0.0.1:6464", "tcp://0.0.0.0:6464", False),
        ("tcp://127.0.0.2:6464", "tcp://127.0.0.1:6464", False),
        ("tcp://192.0.2.1:6464", "tcp://0.0.0.0:6464", False),  # TEST-NET-1: no one's
        ("tcp://node.invalid:6464", "tcp://0.0.0.0:6464", False),  # names are not looked up
        ("unix:///tmp/m.sock", "unix:///tmp/n.sock", False),
    ],
)
def test_is_own_address(target: str, listener: str, own: bool) -> None:
    assert is_own_address(FaceUri.parse(target), [FaceUri.parse(listener)]) is own


def _global_addresses() -> list[str]:
    try:
        out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return [
        a["local"]
        for link in json.loads(out.stdout)
        for a in link.get("addr_info", [])
        if a.get("family") == "inet" and a.get("scope") == "global"
    ]


def test_an_address_of_this_host_reaches_a_listener_on_all_addresses() -> None:
    found = _global_addresses()
    if not found:
        pytest.skip("this host has no global IPv4 address")
    target = FaceUri("tcp", host=found[0], port=6464)
    assert is_own_address(target, [FaceUri.parse("tcp://0.0.0.0:6464")])
    assert not is_own_address(target, [FaceUri.parse("tcp://127.0.0.1:6464")])
