"""Whether the peer of a TCP connection is an app on this host that may act for the node's user.

A face is *local* (it may use ``/localhost``: management, publishing) when its peer is on this
host and runs as the node's user or as root. A Unix socket is protected by its file mode. A
loopback TCP peer could be any user's process, so the node asks the kernel who owns the socket
at the other end of this very connection (the node and its peer share the network namespace):
by ``NETLINK_SOCK_DIAG``, an exact lookup by the connection's four addresses, or, where that
cannot be asked, in ``/proc/net/tcp[6]`` by the same four. Whatever is not found is not local:

- the peer's socket must still belong to a process, or be a connection its listener has yet
  to accept (a socket closed since, ``TIME_WAIT`` or an orphan, is listed as root's with no
  inode: it is no one's, and not local);
- a lookup that fails, or a table that cannot be read, leaves the peer on the network.

UDP peers are never local: a datagram's address names a port whose owner may change while the
face lives, and ccn's apps talk to their node over a stream.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import sys
from typing import Any, Final

from ccn.faces.uri import host_address

__all__ = ["is_local_peer", "is_loopback", "tcp_peer_owner"]

SockAddr = tuple[Any, ...]

_NETLINK_SOCK_DIAG: Final = 4
_SOCK_DIAG_BY_FAMILY: Final = 20
_NLMSG_ERROR: Final = 2
_NLM_F_REQUEST: Final = 1
_ALL_STATES: Final = 0xFFFFFFFF
_NO_COOKIE: Final = 0xFFFFFFFF
_ESTABLISHED: Final = 1
#: nlmsghdr (16 bytes), then inet_diag_msg: family, state, timer, retrans (4), the socket id
#: (48), expires, rqueue, wqueue, uid, inode.
_UID_AT: Final = 16 + 4 + 48 + 12


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address (an IPv4-mapped one too, as a dual-stack socket sees an
    IPv4 peer), or ``localhost``."""
    addr = host_address(host)
    return addr is not None and addr.is_loopback


def is_local_peer(local: SockAddr, peer: SockAddr) -> bool:
    """The peer of the TCP connection between ``local`` (``getsockname()``) and ``peer``
    (``getpeername()``) is on loopback and runs as the node's user or root."""
    if not is_loopback(str(peer[0])):
        return False
    uid = tcp_peer_owner(local, peer)
    return uid is not None and (uid == 0 or uid == os.geteuid())


def tcp_peer_owner(local: SockAddr, peer: SockAddr) -> int | None:
    """The uid of the process holding the socket at the ``peer`` end of the TCP connection
    between ``local`` and ``peer`` on this host; None if no process holds it (gone, closed) or
    it cannot be found."""
    try:
        ends = _candidates(str(local[0]), int(local[1]), str(peer[0]), int(peer[1]))
    except ValueError:
        return None
    try:
        return _owner_by_netlink(ends)
    except OSError:
        return _owner_by_proc(ends)


#: One way the peer's socket may be written: (family, its own address, its port, its remote
#: address, its port), addresses packed.
_Ends = tuple[int, bytes, int, bytes, int]


def _candidates(ours: str, our_port: int, theirs: str, their_port: int) -> list[_Ends]:
    """The peer's socket as the kernel may list it: an IPv4-mapped pair (what a dual-stack
    socket of ours sees of an IPv4 peer) is an IPv4 socket's, or a dual-stack one's."""
    a = ipaddress.ip_address(ours.split("%")[0])
    b = ipaddress.ip_address(theirs.split("%")[0])
    found: list[_Ends] = []
    if isinstance(a, ipaddress.IPv6Address) and isinstance(b, ipaddress.IPv6Address):
        if a.ipv4_mapped is not None and b.ipv4_mapped is not None:
            found.append(
                (socket.AF_INET, b.ipv4_mapped.packed, their_port, a.ipv4_mapped.packed, our_port)
            )
        found.append((socket.AF_INET6, b.packed, their_port, a.packed, our_port))
    elif isinstance(a, ipaddress.IPv4Address) and isinstance(b, ipaddress.IPv4Address):
        found.append((socket.AF_INET, b.packed, their_port, a.packed, our_port))
    return found


def _owner_by_netlink(ends: list[_Ends]) -> int | None:
    """Ask the kernel for the one socket (``ss`` does the same); raise OSError if it cannot be
    asked here."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        for family, src, sport, dst, dport in ends:
            nl.send(_diag_request(family, src, sport, dst, dport))
            reply = nl.recv(4096)
            kind = struct.unpack_from("=H", reply, 4)[0]
            if kind == _NLMSG_ERROR:
                code = -struct.unpack_from("=i", reply, 16)[0]
                if code == errno.ENOENT:
                    continue  # not this way: try the next
                raise OSError(code, os.strerror(code))
            if kind != _SOCK_DIAG_BY_FAMILY or len(reply) < _UID_AT + 8:
                raise OSError(errno.EPROTO, "unexpected sock_diag reply")
            state = reply[17]
            uid, inode = struct.unpack_from("=II", reply, _UID_AT)
            return _held_by(uid, state, inode)
    return None


def _diag_request(family: int, src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    """An inet_diag_req_v2 for the TCP socket whose own address is ``src:sport`` and remote
    ``dst:dport``, in its netlink header."""
    sockid = struct.pack("!HH16s16s", sport, dport, src, dst) + struct.pack(
        "=III", 0, _NO_COOKIE, _NO_COOKIE
    )
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid
    return struct.pack("=IHHII", 16 + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + body


def _owner_by_proc(ends: list[_Ends]) -> int | None:
    """The same lookup in ``/proc/net/tcp[6]``; None if it cannot be read."""
    for family, src, sport, dst, dport in ends:
        table = "/proc/net/tcp" if family == socket.AF_INET else "/proc/net/tcp6"
        own, remote = _proc_address(src, sport), _proc_address(dst, dport)
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)  # the header
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[1] == own and fields[2] == remote:
                        return _held_by(int(fields[7]), int(fields[3], 16), int(fields[9]))
        except (OSError, ValueError):
            continue
    return None


def _held_by(uid: int, state: int, inode: int) -> int | None:
    """The owner of a socket found by the lookup, if a process holds it: one with an inode, or
    an established connection not yet accepted (the peer's listener owns it, ``uid`` is the
    listener's). A socket closed since is no one's (its uid reads as root's)."""
    return uid if inode or state == _ESTABLISHED else None


def _proc_address(packed: bytes, port: int) -> str:
    """An address as ``/proc/net`` writes it: 32-bit words in host byte order, hex."""
    words = "".join(
        f"{int.from_bytes(packed[i : i + 4], sys.byteorder):08X}" for i in range(0, len(packed), 4)
    )
    return f"{words}:{port:04X}"
