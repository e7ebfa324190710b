"""Whether a peer is an app of the node's user on this host: loopback addresses, and the owner of
the peer's socket looked up in /proc/net by its address (real sockets on loopback)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from ccn.faces.peers import is_local_peer, is_loopback, peer_uid

NOBODY = 65534


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.3.2.1", "::1", "::1%lo", "::ffff:127.0.0.1", "localhost"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "192.0.2.7",
        "::ffff:10.0.0.1",
        "fe80::1%eth0",
        "example.org",
        "",
    ],
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def _pair(kind: int, family: int = socket.AF_INET, host: str = "127.0.0.1") -> list[socket.socket]:
    """A connected client (first) and its server side, on loopback."""
    server = socket.socket(family, kind)
    server.bind((host, 0))
    client = socket.socket(family, kind)
    if kind == socket.SOCK_STREAM:
        server.listen(1)
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        server.close()
        return [client, accepted]
    client.connect(server.getsockname())
    return [client, server]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_our_own_socket_is_found_and_local(transport: str) -> None:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    sockets = _pair(kind)
    try:
        host, port = sockets[0].getsockname()[:2]
        assert peer_uid(transport, host, port) == os.geteuid()
        assert is_local_peer(transport, host, port)
    finally:
        for s in sockets:
            s.close()


def test_ipv6_loopback_is_looked_up_in_the_v6_table() -> None:
    try:
        sockets = _pair(socket.SOCK_STREAM, socket.AF_INET6, "::1")
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    try:
        host, port = sockets[0].getsockname()[:2]
        assert peer_uid("tcp", host, port) == os.geteuid()
    finally:
        for s in sockets:
            s.close()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_an_ipv4_peer_of_a_dual_stack_socket_is_found(transport: str) -> None:
    """A dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d: the peer's socket is in the
    v4 table (an IPv4 socket) or the v6 one (a dual-stack socket connected over IPv4)."""
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    v4 = _pair(kind)
    try:
        port = v4[0].getsockname()[1]
        assert peer_uid(transport, "::ffff:127.0.0.1", port) == os.geteuid()
        assert is_local_peer(transport, "::ffff:127.0.0.1", port)
    finally:
        for s in v4:
            s.close()
    try:
        dual = _pair(kind, socket.AF_INET6, "::ffff:127.0.0.1")
    except OSError as e:
        pytest.skip(f"no dual-stack sockets here: {e}")
    try:
        host, port = dual[0].getsockname()[:2]
        assert host == "::ffff:127.0.0.1"
        assert peer_uid(transport, host, port) == os.geteuid()
    finally:
        for s in dual:
            s.close()


def test_an_address_nobody_holds_or_that_is_no_address_gives_no_owner() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert peer_uid("udp", "127.0.0.1", port) is None  # closed: gone from the table
    assert peer_uid("tcp", "not-an-address", 80) is None
    assert peer_uid("sctp", "127.0.0.1", port) is None  # no such table: unknown, no error


def test_a_peer_on_the_network_is_never_local_whoever_owns_the_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not is_local_peer("udp", "192.0.2.1", port)
        assert not is_local_peer("udp", "10.1.0.1", port)


_NOBODYS_SOCKETS = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen(1)
print(u.getsockname()[1], t.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def nobodys_ports() -> Iterator[tuple[int, int]]:
    """A UDP and a TCP port on 127.0.0.1 held by a process running as ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a process as another user")
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3")
    proc = subprocess.Popen(
        ["/usr/bin/python3", "-c", _NOBODYS_SOCKETS],
        user=NOBODY,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        udp, tcp = map(int, proc.stdout.readline().split())
        yield udp, tcp
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # it exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_socket_of_another_user_is_not_local(nobodys_ports: tuple[int, int]) -> None:
    udp, tcp = nobodys_ports
    assert peer_uid("udp", "127.0.0.1", udp) == NOBODY
    assert peer_uid("tcp", "127.0.0.1", tcp) == NOBODY
    assert not is_local_peer("udp", "127.0.0.1", udp)
    assert not is_local_peer("tcp", "127.0.0.1", tcp)
    # the same peer as a dual-stack socket sees it (IPv4-mapped) is not local either
    assert not is_local_peer("udp", "::ffff:127.0.0.1", udp)
