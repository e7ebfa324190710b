"""Whether the peer of a TCP connection is an app of the node's user on this host: loopback
addresses, and the owner of the socket at the other end of that very connection, asked of the
kernel (sock_diag) or read in /proc/net (real sockets on loopback, both ways)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ccn.faces import peers
from ccn.faces.peers import is_local_peer, is_loopback, tcp_peer_owner

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


@pytest.fixture(params=["sock_diag", "proc"])
def lookup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: by sock_diag, and by /proc/net as where netlink cannot be asked."""
    if request.param == "proc":

        def refused(_ends: object) -> int | None:
            raise PermissionError("no netlink here")

        monkeypatch.setattr(peers, "_owner_by_netlink", refused)
    return str(request.param)


class _Connection:
    """A TCP connection on loopback: the client's socket, and the server's once accepted."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(4)
        self.client = socket.create_connection(self.listener.getsockname()[:2])
        self.server: socket.socket | None = None

    def accept(self) -> socket.socket:
        self.server, _ = self.listener.accept()
        return self.server

    def close(self) -> None:
        for s in (self.client, self.server, self.listener):
            if s is not None:
                s.close()


@pytest.fixture
def conn() -> Iterator[_Connection]:
    c = _Connection()
    yield c
    c.close()


def _ends(s: socket.socket) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return s.getsockname(), s.getpeername()


def test_our_own_client_is_local(lookup: str, conn: _Connection) -> None:
    server = conn.accept()
    assert tcp_peer_owner(*_ends(server)) == os.geteuid()
    assert is_local_peer(*_ends(server))


def test_a_node_we_dial_is_local_before_it_accepts(lookup: str, conn: _Connection) -> None:
    """The peer's end of a connection its listener has not accepted yet has no inode: its owner
    is the listener's."""
    assert tcp_peer_owner(*_ends(conn.client)) == os.geteuid()
    assert is_local_peer(*_ends(conn.client))


def test_a_peer_that_closed_is_no_ones(lookup: str, conn: _Connection) -> None:
    """A closed socket lingers in the kernel's tables as root's (FIN_WAIT, TIME_WAIT): a peer
    that sends a command and closes before the node looks must not pass for root."""
    server = conn.accept()
    ends = _ends(server)
    conn.client.close()
    assert tcp_peer_owner(*ends) is None
    assert not is_local_peer(*ends)


def test_a_connection_that_does_not_exist_has_no_owner(lookup: str, conn: _Connection) -> None:
    server = conn.accept()
    ours, theirs = _ends(server)
    assert tcp_peer_owner(ours, (theirs[0], theirs[1] ^ 1)) is None  # another port
    assert tcp_peer_owner(("not-an-address", 1), theirs) is None


def test_a_peer_on_the_network_is_never_local(conn: _Connection) -> None:
    server = conn.accept()
    ours, _ = _ends(server)
    assert not is_local_peer(ours, ("192.0.2.1", 6464))
    assert not is_local_peer(ours, ("::ffff:10.1.0.1", 6464))


def test_ipv6_loopback(lookup: str) -> None:
    try:
        c = _Connection(socket.AF_INET6, "::1")
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    try:
        assert tcp_peer_owner(*_ends(c.accept())) == os.geteuid()
    finally:
        c.close()


def test_an_ipv4_peer_of_a_dual_stack_listener(lookup: str) -> None:
    """A dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d; the peer's socket is an IPv4
    one (looked up as such)."""
    try:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", 0))
    except OSError as e:
        pytest.skip(f"no dual-stack sockets here: {e}")
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", listener.getsockname()[1]))
    server, peer = listener.accept()
    try:
        assert peer[0] == "::ffff:127.0.0.1"
        assert tcp_peer_owner(*_ends(server)) == os.geteuid()
        assert is_local_peer(*_ends(server))
    finally:
        for s in (client, server, listener):
            s.close()


_NOBODYS_CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
sys.stdin.readline()
s.close()
print("closed", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a process as another user")
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
def test_a_client_of_another_user_is_not_local_open_or_closed(lookup: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", _NOBODYS_CLIENT, str(port)],
            user=NOBODY,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "connected"
            server, _ = listener.accept()
            with server:
                ends = _ends(server)
                assert tcp_peer_owner(*ends) == NOBODY
                assert not is_local_peer(*ends)
                proc.stdin.write("close\n")
                proc.stdin.flush()
                assert proc.stdout.readline().strip() == "closed"
                assert tcp_peer_owner(*ends) is None  # not root's now
                assert not is_local_peer(*ends)
        finally:
            proc.stdin.close()  # it exits when its stdin closes
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
