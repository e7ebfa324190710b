"""UDP multicast faces, one per LAN interface and address family, and the interface list.

A :class:`MulticastFace` sends every packet to the ccn group on its interface and delivers
what the other nodes of the segment send there. Groups and port (docs/lan.md):

- IPv4: :data:`GROUP_V4` ``224.0.23.170``, port :data:`DEFAULT_PORT` ``56464`` (NDN uses 56363;
  ours is distinct so the two never mix on a LAN);
- IPv6: :data:`GROUP_V6` ``ff02::1:cc`` (link-local scope), same port, on interfaces with a
  link-local address.

Rules: TTL / hop limit 1 (never routed); our own datagrams are not looped back; a socket joins
its group on one interface only and receives only what arrives there (``IP_MULTICAST_ALL`` off,
bound to the device where permitted). Large packets are fragmented (:mod:`ccn.frag`) at the
interface MTU and reassembled per sender. ``send`` never blocks. The face is non-local. Nacks
are neither sent to the group nor taken from it (one member's Nack says nothing of the others).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import ipaddress
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ccn.codec import decode, encode
from ccn.errors import ConnectError, DecodeError, InvalidPacket
from ccn.faces.base import Deliver, Face
from ccn.faces.udp import grow_buffers, receive_turn
from ccn.frag import Fragmenter, FragmentError, Reassembler, is_fragment
from ccn.packet import Nack, Packet

GROUP_V4 = "224.0.23.170"
GROUP_V6 = "ff02::1:cc"
DEFAULT_PORT = 56464
MAX_SENDERS = 256

# Linux ioctls and options the socket module does not export.
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_SIOCGIFMTU = 0x8921
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_RUNNING = 0x40
_IFF_MULTICAST = 0x1000
_IP_MULTICAST_ALL = 49
_IPV6_MULTICAST_ALL = 29
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    index: int
    mtu: int
    ipv4: str | None
    ipv6_link_local: str | None


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    buf = array.array("B", name.encode()[:15].ljust(40, b"\0"))
    fcntl.ioctl(sock.fileno(), request, buf, True)
    return buf.tobytes()


def list_interfaces(names: list[str] | None = None) -> list[Interface]:
    """LAN interfaces that are up, running and multicast-capable (loopback excluded), with their
    first IPv4 address and IPv6 link-local address (one that passed duplicate address
    detection); an interface with neither is left out. ``names`` restricts the list."""
    v6: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[0].startswith("fe80"):
                continue
            # An address still under duplicate address detection (or that failed it) cannot
            # be a source yet: the interface is taken up by a later scan.
            if int(parts[4], 16) & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
                continue
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            v6.setdefault(parts[5], str(addr))
    out: list[Interface] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for index, name in socket.if_nameindex():
            if names and name not in names:
                continue
            try:
                flags = struct.unpack_from("H", _ifreq(s, _SIOCGIFFLAGS, name), 16)[0]
                mtu = struct.unpack_from("i", _ifreq(s, _SIOCGIFMTU, name), 16)[0]
            except OSError:
                continue
            want = _IFF_UP | _IFF_RUNNING | _IFF_MULTICAST
            if flags & want != want or flags & _IFF_LOOPBACK:
                continue
            try:
                ipv4: str | None = socket.inet_ntoa(_ifreq(s, _SIOCGIFADDR, name)[20:24])
            except OSError:
                ipv4 = None
            if ipv4 is None and name not in v6:
                continue
            out.append(Interface(name, index, mtu, ipv4, v6.get(name)))
    return out


def _open_v4(iface: Interface, port: int) -> socket.socket:
    assert iface.ipv4 is not None
    ipv4 = iface.ipv4

    def join(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
        sock.bind((GROUP_V4, port))
        mreq = socket.inet_aton(GROUP_V4) + socket.inet_aton(ipv4)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ipv4))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)

    return _group_socket(socket.AF_INET, iface, join)


def _open_v6(iface: Interface, port: int) -> socket.socket:
    def join(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL, 0)
        sock.bind((GROUP_V6, port, 0, iface.index))
        mreq = socket.inet_pton(socket.AF_INET6, GROUP_V6) + struct.pack("@I", iface.index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, iface.index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)

    return _group_socket(socket.AF_INET6, iface, join)


def _group_socket(
    family: int, iface: Interface, join: Callable[[socket.socket], None]
) -> socket.socket:
    """A non-blocking UDP socket on ``iface`` that ``join`` binds to the group and sets up."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.name.encode())
        join(sock)
        grow_buffers(sock)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class MulticastFace(Face):
    """The ccn multicast group on one interface, for one address family."""

    def __init__(self, iface: Interface, family: int, port: int = DEFAULT_PORT) -> None:
        v6 = family == socket.AF_INET6
        group = GROUP_V6 if v6 else GROUP_V4
        host = f"[{group}%{iface.name}]" if v6 else group
        super().__init__(f"udp+multicast://{host}:{port}#{iface.name}", local=False)
        self.iface = iface
        self.family = family
        self.port = port
        try:
            self.sock = _open_v6(iface, port) if v6 else _open_v4(iface, port)
        except OSError as e:
            raise ConnectError(f"cannot join {group} on {iface.name}: {e.strerror or e}") from None
        self._dest: tuple[Any, ...] = (group, port, 0, iface.index) if v6 else (group, port)
        self._own = (iface.ipv6_link_local if v6 else iface.ipv4, port)
        overhead = 48 if v6 else 28
        self.fragmenter = Fragmenter(max(576, iface.mtu) - overhead, secrets.randbits(32))
        self._reassemblers: dict[tuple[Any, ...], Reassembler] = {}
        self._cancel = trio.CancelScope()
        #: Nacks neither sent nor delivered: a group carries no Nacks (docs/lan.md)
        self.nacks_suppressed = 0

    @property
    def address(self) -> str | None:
        """This node's address on the interface, in this face's family."""
        return self.iface.ipv6_link_local if self.family == socket.AF_INET6 else self.iface.ipv4

    def send(self, packet: Packet) -> None:
        if self.closed:
            return
        if type(packet) is Nack:
            # One member's "no route" says nothing about the others: Nacks stay off the group.
            self.nacks_suppressed += 1
            return
        try:
            datagrams = self.fragmenter.fragment(encode(packet))
        except (InvalidPacket, FragmentError):
            self.counters.dropped += 1
            return
        try:
            for d in datagrams:
                self.sock.sendto(d, self._dest)
                self.counters.out_bytes += len(d)
        except OSError:  # buffer full, link down: lost, as on a wire
            self.counters.dropped += 1
            return
        self.counters.count_out(packet)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._cancel.cancel()

    async def run(self, deliver: Deliver) -> None:
        try:
            with self._cancel:
                await self._read_loop(deliver)
        finally:
            self.closed = True
            self.sock.close()

    async def _read_loop(self, deliver: Deliver) -> None:
        sock = self.sock
        counters = self.counters
        while True:
            await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            for data, addr in receive_turn(sock, lambda _e: True):
                if (addr[0].split("%")[0], addr[1]) == self._own:
                    continue
                counters.in_bytes += len(data)
                raw = data
                if is_fragment(data):
                    whole = self._reassembler(addr).feed(data, now)
                    if whole is None:
                        continue
                    raw = whole
                try:
                    packet = decode(raw)
                except DecodeError:
                    counters.malformed += 1
                    continue
                if type(packet) is Nack:
                    self.nacks_suppressed += 1
                    continue
                counters.count_in(packet)
                deliver(self, packet)
                if self.closed:
                    return

    def _reassembler(self, addr: tuple[Any, ...]) -> Reassembler:
        key = addr[:2]
        r = self._reassemblers.get(key)
        if r is None:
            if len(self._reassemblers) >= MAX_SENDERS:
                self._reassemblers.clear()
            r = self._reassemblers[key] = Reassembler(max_packets=32, max_bytes=4 << 20)
        return r

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["interface"] = self.iface.name
        out["nacks_suppressed"] = self.nacks_suppressed
        return out
