"""UDP unicast faces: one packet per datagram, fragmented when larger than the path MTU.

A :class:`UdpChannel` owns one UDP socket bound to ``udp://host:port`` and demultiplexes the
peers it hears from into one :class:`UdpFace` each (created on demand, as NFD's UDP channel
does); :meth:`UdpChannel.face_for` makes the face for a peer we want to talk to (a route, a
neighbour found by discovery). Every face of a channel sends from the channel's socket, so a
peer sees one address per node and both directions land on the same face.

Rules:

- Packets larger than the datagram size of the path (its MTU less the IP and UDP headers,
  asked of the kernel per peer) are cut by :mod:`ccn.frag`; each face reassembles what its peer
  sends, with bounded buffers. A lost fragment loses that packet only.
- ``send`` never blocks: a datagram is handed to the kernel at once; if the socket buffer is
  full it waits in a bounded queue, beyond which it is dropped and counted.
- A face made on demand (a peer that spoke first) closes after ``idle_timeout`` seconds without
  receiving anything; a face made by :meth:`face_for` is *persistent* and closes only when told.
- Peers on loopback are local, like TCP ones, if they run as the node's user or root
  (:mod:`ccn.faces.peers`).
- The kernel's word that a peer is unreachable (an ICMP error: nobody listens on its port, or
  its host or network cannot be reached) is taken from the socket's error queue and given to
  that peer's face (:meth:`UdpFace.icmp_error`): counted, and an Interest it carried is answered
  with a "no route" Nack at once instead of waiting for its timeout. Such a report also fails
  the socket's next ``recvfrom`` or ``sendto`` once, whatever its peer: the one is skipped, the
  other retried.

The channel runs each face's task (``on_face``) in its own nursery and closes its socket when
:meth:`UdpChannel.run` returns.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import secrets
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from time import perf_counter
from typing import Any

import trio

from ccn.codec import decode, encode
from ccn.errors import ConnectError, DecodeError, InvalidPacket
from ccn.faces.base import READ_QUANTUM, Deliver, Face
from ccn.faces.liveness import PROBE, PROBE_LIFETIME_MS, heard, probe_interest
from ccn.faces.peers import is_loopback
from ccn.faces.uri import FaceUri, sockaddr_host, unknown_zone
from ccn.frag import (
    ASK_AFTER,
    Fragmenter,
    FragmentError,
    Reassembler,
    is_fragment,
    is_request,
    parse_ask,
    parse_header,
)
from ccn.name import MAX_COMPONENT_BYTES, MAX_NAME_BYTES, Name
from ccn.pacing import Pacer, RateMeter
from ccn.packet import Data, Interest, Nack, NackReason, Packet

DEFAULT_IDLE_TIMEOUT = 60.0
#: Packets a new face keeps that arrive before the node starts running it; the rest are
#: dropped and counted in the channel's ``dropped`` (``drops.udp_dropped``).
EARLY_MAX = 64
MAX_ON_DEMAND_FACES = 1024
SOCKET_BUFFER = 8 << 20
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4
FALLBACK_MTU = 1500
MAX_QUEUE_DATAGRAMS = 65536
#: Bytes of fragmented packets a face keeps (each for 2 s) to send missing fragments again.
KEEP_SENT_BYTES = 4 << 20
#: Datagram sizes a face falls back to, largest first, when its peer answers small packets but
#: not one of the size its path's MTU allows (a link on the way with a smaller MTU that says
#: nothing: a bridge port, a tunnel): Ethernet's, and the least every IPv4 and IPv6 host takes.
FALLBACK_SIZES = {socket.AF_INET: (1472, 548), socket.AF_INET6: (1452, 1232)}
#: How long a face waits for the answer to a probe of its datagram size, and how many it sends.
SIZE_PROBE_WAIT = 0.5
SIZE_PROBE_TRIES = 2
#: How long the channel waits before sending again when the kernel has no buffer for a
#: datagram (ENOBUFS: the interface's queue is full, as behind a slow link).
NOBUFS_WAIT = 0.001
# Linux constants the socket module does not export.
_IP_MTU = 14
_IPV6_MTU = 24
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33
_IP_RECVERR = 11
_IPV6_RECVERR = 25
#: ICMP errors taken from a socket's error queue per wake-up (the rest wait for the next).
MAX_ERRORS_PER_TURN = 256
SockAddr = tuple[Any, ...]
OnUdpFace = Callable[["UdpFace"], Awaitable[None]]


def _silent(_line: str) -> None:
    pass


def _padding(size: int) -> tuple[bytes, ...]:
    """Name components of ``size`` bytes in all (at most a name's worth)."""
    size = min(size, MAX_NAME_BYTES - 64)
    whole, rest = divmod(size, MAX_COMPONENT_BYTES)
    return (b"\0" * MAX_COMPONENT_BYTES,) * whole + ((b"\0" * rest,) if rest else ())


def _padded_probe(nonce: int, size: int) -> bytes:
    """A probe Interest (hop limit 0) for :data:`PROBE` plus padding, encoded in ``size`` bytes
    or a few less (one datagram), or in :data:`MAX_SIZE_PROBE` if ``size`` is larger."""

    def probe(pad: int) -> bytes:
        name = PROBE.append(*_padding(pad))
        return encode(Interest(name, nonce, PROBE_LIFETIME_MS, hop_limit=0))

    pad = max(0, size - len(probe(0)))
    wire = probe(pad)
    while len(wire) > size and pad > 0:  # the padding's own headers
        pad = max(0, pad - (len(wire) - size))
        wire = probe(pad)
    return wire


def _is_size_probe(name: Name) -> bool:
    return len(name) > len(PROBE) and PROBE.is_prefix_of(name)


#: The largest probe :func:`_padded_probe` makes (a name holds at most 2048 bytes): a path
#: that drops datagrams only above this size (jumbo frames on the way, but smaller than this
#: host's) is not found out.
MAX_SIZE_PROBE = len(_padded_probe(0, 1 << 16))


def _key(addr: SockAddr) -> tuple[str, int, int]:
    return (addr[0], addr[1], addr[3] if len(addr) > 3 else 0)


def _uri_text(addr: SockAddr) -> str:
    return str(FaceUri("udp", host=sockaddr_host(addr), port=addr[1]))


def path_datagram_size(family: int, addr: SockAddr) -> int:
    """The largest datagram payload that crosses the path to ``addr`` unfragmented by IP: the
    route's MTU as the kernel knows it, less the IP and UDP headers."""
    overhead = 48 if family == socket.AF_INET6 else 28
    mtu = FALLBACK_MTU
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(addr)
            if family == socket.AF_INET6:
                mtu = probe.getsockopt(socket.IPPROTO_IPV6, _IPV6_MTU)
            else:
                mtu = probe.getsockopt(socket.IPPROTO_IP, _IP_MTU)
    except OSError:
        pass
    return max(576 - overhead, min(MAX_DATAGRAM, mtu - overhead))


def receive_turn(
    sock: socket.socket, ignorable: Callable[[OSError], bool]
) -> Iterator[tuple[bytes, Any]]:
    """The datagrams waiting on non-blocking ``sock``, for at most READ_QUANTUM of the node's
    time (what is left waits in the socket's buffer, and is dropped there by the kernel when
    that is full). Errors ``ignorable`` says yes to are skipped; others are raised."""
    turn_ends = perf_counter() + READ_QUANTUM
    while perf_counter() < turn_ends:
        try:
            yield sock.recvfrom(65536)
        except BlockingIOError:
            return
        except OSError as e:
            if not ignorable(e):
                raise


#: What an ICMP error says when the peer cannot be reached (port, host or network unreachable,
#: administratively prohibited, time exceeded).
_UNREACHABLE = frozenset(
    (
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EACCES,
    )
)
#: Every errno an ICMP error can leave on a UDP socket (Linux's icmp_err_convert and its IPv6
#: twin): the unreachable ones, "fragmentation needed" / "packet too big" (the kernel adjusts
#: the path MTU itself), protocol unreachable, parameter problem, source route failed.
_REPORTED = _UNREACHABLE | {errno.EMSGSIZE, errno.ENOPROTOOPT, errno.EPROTO, errno.EOPNOTSUPP}


def report_errors(sock: socket.socket) -> None:
    """Ask the kernel to queue the ICMP errors of datagrams ``sock`` sent (which peer, why, and
    the start of the datagram) on its error queue: an unconnected socket hears of none
    otherwise. They are read by :func:`receive_errors`."""
    with contextlib.suppress(OSError):
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)


def receive_errors(sock: socket.socket) -> tuple[list[tuple[SockAddr, int, bytes]], bool]:
    """Read ``sock``'s error queue, at most MAX_ERRORS_PER_TURN entries: for each saying its
    peer is unreachable, the peer's address, the errno and the start of the datagram that came
    back (the others are dropped); and whether the bound was reached (more may wait)."""
    found: list[tuple[SockAddr, int, bytes]] = []
    for _ in range(MAX_ERRORS_PER_TURN):
        try:
            quoted, ancillary, _flags, addr = sock.recvmsg(MAX_DATAGRAM, 256, socket.MSG_ERRQUEUE)
        except OSError:
            return found, False  # empty (EAGAIN), or no error queue on this socket
        for _level, _kind, raw in ancillary:
            if len(raw) >= 4:  # struct sock_extended_err starts with the errno, a u32
                err = struct.unpack_from("=I", raw)[0]
                if err in _UNREACHABLE:
                    found.append((addr, err, quoted))
    return found, True


def grow_buffers(sock: socket.socket) -> None:
    """Socket buffers of :data:`SOCKET_BUFFER` (forced as root): a burst of datagrams waits
    there while the node is busy instead of being dropped."""
    for force, plain in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF), (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


class UdpFace(Face):
    """One peer of a :class:`UdpChannel`. Built by the channel, never directly."""

    def __init__(
        self,
        channel: UdpChannel,
        addr: SockAddr,
        *,
        persistent: bool,
        idle_timeout: float,
        max_datagram: int,
    ) -> None:
        # Never local: a datagram's address is a port whose owner may change while the face
        # lives, so /localhost (management) is for stream peers only (see ccn.faces.peers).
        super().__init__(_uri_text(addr), local=False)
        self.opened_by_peer = not persistent
        self.channel = channel
        self.addr = addr
        self.persistent = persistent
        self.idle_timeout = idle_timeout
        self.fragmenter = Fragmenter(
            max_datagram, first_id=secrets.randbits(32), keep_bytes=KEEP_SENT_BYTES
        )
        self.reassembler = Reassembler(ask_after=ASK_AFTER)
        #: Data to the peer, paced once the peer has reported the rate it gets (ccn.pacing)
        self.pacer = Pacer()
        self._pace_wake = trio.Event()
        #: what comes from the peer, whose rate goes with each request for lost fragments
        self.receiving = RateMeter()
        self.close_reason: str | None = None
        self.last_received = trio.current_time()
        #: ICMP errors for datagrams sent to the peer, and the last one's text ("" if none)
        self.unreachable = 0
        self.unreachable_error = ""
        #: Why the last datagram from the peer that was not a packet could not be decoded
        #: ("" if none): another format version says the peer speaks another ccn.
        self.decode_error = ""
        #: Who asked for this face as persistent and has not released it (:meth:`release`)
        self.holders = 0
        #: (size before, size after) once the peer did not answer datagrams of the path's size
        #: and the face fell back to smaller ones (:meth:`check_size`)
        self.size_fallback: tuple[int, int] | None = None
        self._size_probe: tuple[int, trio.Event] | None = None  # (nonce, answered)
        self._size_due = trio.Event()
        self._largest_fallback = max(FALLBACK_SIZES.get(channel.family, (0,)))
        self._deliver: Deliver | None = None
        self._early: list[Packet] = []
        self._closed_event = trio.Event()
        self._wake = trio.Event()
        self._refused = trio.Event()  # set (and replaced) at each ICMP error, and at close
        self._news: trio.Event | None = None  # while a probe waits: set by any sign from the peer

    def send(self, packet: Packet) -> None:
        if self.closed:
            return
        now = trio.current_time()
        try:
            wire = encode(packet)
            datagrams = self.fragmenter.fragment(wire, now)
        except (InvalidPacket, FragmentError):
            self.counters.dropped += 1
            return
        if not self._size_due.is_set() and len(datagrams[0]) > self._largest_fallback:
            self._size_due.set()  # the first datagram larger than the usual: check_size
        if not self._transmit(datagrams, now, paced=type(packet) is Data):
            self.counters.dropped += 1
            return
        self.counters.count_out(packet)
        self.counters.out_bytes += sum(len(d) for d in datagrams)

    def _transmit(
        self, datagrams: list[bytes], now: float, *, paced: bool, again: bool = False
    ) -> bool:
        """Hand ``datagrams`` (one packet's, or fragments sent ``again``) to the pacer while it
        paces, if they are ``paced`` (Data), else to the channel. False if dropped."""
        if paced and self.pacer.active:
            if not self.pacer.offer(datagrams, now, again=again):
                return False
            self._pace_wake.set()
            return True
        return self.channel.send_datagrams(datagrams, self.addr)

    def datagram_received(self, data: bytes, now: float) -> None:
        """The channel hands over one datagram from this face's peer."""
        self.last_received = now
        self.counters.in_bytes += len(data)
        self.receiving.add(len(data), now)
        if self._news is not None:
            self._news.set()
        raw = data
        if is_fragment(data):
            if is_request(data):
                request = parse_ask(data)
                again = self.fragmenter.resend(request, now)
                if request is not None and self.fragmenter.sent_lately(request.packet_id, now):
                    # (only a request about a packet this face sent lately paces it: one with
                    # a guessed id, from an address spoofed as the peer's, cannot slow it down;
                    # one about a packet no longer kept does: the peer is losing a lot)
                    self.pacer.feedback(request.rate, now)
                if again:
                    self._transmit(again, now, paced=True, again=True)
                return
            reassembler = self.reassembler
            waiting = reassembler.pending
            whole = reassembler.feed(data, now)
            if reassembler.pending > waiting:
                self._wake.set()  # run() sleeps until it asks for its missing fragments
            if whole is None:
                return
            raw = whole
        try:
            packet = decode(raw)
        except DecodeError as e:
            self.counters.malformed += 1
            self.decode_error = str(e)
            return
        self.counters.count_in(packet)
        probe = self._size_probe
        if probe is not None and type(packet) is Nack and packet.interest.nonce == probe[0]:
            probe[1].set()  # the answer to check_size's probe: for nobody else
            return
        if type(packet) is Interest and packet.hop_limit == 0 and _is_size_probe(packet.name):
            # A peer's check_size: answered here, with the probe's name alone, so that the
            # answer is small (what is checked is the size of the datagrams it sends us).
            small = Interest(PROBE, packet.nonce, PROBE_LIFETIME_MS, hop_limit=0)
            self.channel.send_datagrams([encode(Nack(small, NackReason.HOP_LIMIT))], self.addr)
            return
        if self._deliver is None:
            if len(self._early) < EARLY_MAX:
                self._early.append(packet)
            else:
                self.channel.dropped += 1
            return
        self._deliver(self, packet)

    def icmp_error(self, err: int, quoted: bytes) -> None:
        """The kernel says a datagram sent to the peer came back (an ICMP error with ``err``;
        ``quoted``: the start of that datagram). Counted; an Interest it held (whole) is
        answered as if the peer had Nacked it "no route": nothing there can answer it, so the
        forwarder tries another upstream or tells its downstream now, not at the timeout."""
        self.unreachable += 1
        self.unreachable_error = os.strerror(err)
        self._refused.set()
        self._refused = trio.Event()
        if self._news is not None:
            self._news.set()
        if self.closed or self._deliver is None or is_fragment(quoted):
            return
        try:
            packet = decode(quoted)
        except DecodeError:
            return  # cut short by the ICMP message: that Interest waits for its timeout
        if type(packet) is Interest and packet.name != PROBE:
            self._deliver(self, Nack(packet, NackReason.NO_ROUTE))

    async def probe(self, timeout: float) -> bool | None:
        """Ask the peer for a sign of life: an Interest for :data:`PROBE` with hop limit 0,
        which a ccn node answers at once. True when a packet (:func:`~ccn.faces.liveness.heard`:
        one that decoded; a datagram of another format version is no sign) comes from the
        peer within ``timeout``, False when the kernel reports it unreachable (or the face
        closes) first, None when neither happens (a peer behind a firewall that drops both, or
        one whose datagrams this node cannot decode: see :attr:`decode_error`)."""
        before, refused = heard(self), self.unreachable
        self._news = news = trio.Event()
        try:
            self.send(probe_interest())
            with trio.move_on_after(timeout):
                while not self.closed:
                    await news.wait()
                    if heard(self) != before:
                        return True
                    if self.unreachable != refused:
                        return False
                    self._news = news = trio.Event()
            return False if self.closed else None
        finally:
            self._news = None

    async def wait_unreachable(self) -> None:
        """Return at the next ICMP error for the peer, or when the face closes."""
        if not self.closed:
            await self._refused.wait()

    def release(self, reason: str = "closed") -> None:
        """A holder (see :meth:`UdpChannel.face_for`) is done with the face: it closes when no
        holder is left. Removing a static route no longer closed the face discovery was using
        for the same peer, taking its routes with it."""
        self.holders = max(0, self.holders - 1)
        if not self.holders:
            self.close(reason)

    def close(self, reason: str = "closed") -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self._closed_event.set()
            self._wake.set()
            self._refused.set()
            if self._news is not None:
                self._news.set()
            self.channel.forget(self)

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    async def run(self, deliver: Deliver) -> None:
        self._deliver = deliver
        early, self._early = self._early, []
        for packet in early:
            deliver(self, packet)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pace_loop)
                if self.channel.max_datagram is None and not is_loopback(self.addr[0]):
                    nursery.start_soon(self._check_size_when_due)
                await self._timer_loop()
                nursery.cancel_scope.cancel()
        finally:
            self.close(self.close_reason or "closed")

    async def _check_size_when_due(self) -> None:
        """:meth:`check_size`, once the face first sends a datagram larger than the largest
        of :data:`FALLBACK_SIZES` (a path with jumbo frames): smaller ones are the size of
        every Ethernet, and on such a path nothing is sent to check (nor can a stranger who
        opens a face with one spoofed datagram have this node send probes somewhere)."""
        await self._size_due.wait()
        await self.check_size()

    async def check_size(self) -> None:
        """Find out whether datagrams of this face's size reach the peer: a probe Interest
        padded to that size (hop limit 0, which a ccn node answers at once, with a Nack that
        carries the Interest back). If it goes unanswered while a small one is answered, a
        link on the way has a smaller MTU and drops what is larger without a word (no ICMP on
        a bridge): every fragment of every large packet would be lost, the fetch would fail
        after its retries, and nothing would say why. The face then falls back to smaller
        datagrams (:data:`FALLBACK_SIZES`), which it checks the same way, and the channel
        says so once. A peer that answers nothing is left to the liveness probes."""
        first = size = self.fragmenter.max_datagram
        smaller = [n for n in FALLBACK_SIZES.get(self.channel.family, ()) if n < size]
        while not await self._answers(size):
            if self.closed or not smaller or not await self._answers(smaller[-1]):
                return  # closed, nothing smaller to try, or silent whatever the size
            size = smaller.pop(0)
        if size != first:
            self.fragmenter.max_datagram = size
            self.size_fallback = (first, size)
            self.channel.say(
                f"{self.remote} does not receive {first}-byte datagrams (a link on the way has "
                f"a smaller MTU than this host's, and drops them without a word): sending it "
                f"{size}-byte ones"
            )

    async def _answers(self, size: int) -> bool:
        """Whether the peer answers a probe padded to one datagram of ``size`` bytes (at most
        :data:`MAX_SIZE_PROBE`), of :data:`SIZE_PROBE_TRIES` sent :data:`SIZE_PROBE_WAIT`
        apart."""
        for _ in range(SIZE_PROBE_TRIES):
            if self.closed:
                return False
            nonce = secrets.randbits(32)
            answered = trio.Event()
            self._size_probe = (nonce, answered)
            try:
                probe = _padded_probe(nonce, min(size, MAX_SIZE_PROBE))
                self.channel.send_datagrams([probe], self.addr)
                with trio.move_on_after(SIZE_PROBE_WAIT):
                    await answered.wait()
                    return True
            finally:
                self._size_probe = None
        return False

    async def _timer_loop(self) -> None:
        while not self.closed:
            # Wake for the idle timeout (faces made on demand) and for the reassembler's next
            # expiry or request: a peer that stops sending must not pin its incomplete packets.
            wake = math.inf if self.persistent else self.last_received + self.idle_timeout
            expiry = self.reassembler.next_deadline()
            with trio.move_on_at(wake if expiry is None else min(wake, expiry)):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time()
            self.reassembler.expire(now)
            rate = self.receiving.rate()
            for request in self.reassembler.asks(now, self.fragmenter.max_datagram, rate):
                self.channel.send_datagrams([request], self.addr)
            if not self.persistent and now >= self.last_received + self.idle_timeout:
                self.close("idle")

    async def _pace_loop(self) -> None:
        """Send the Data the pacer holds as it lets it go."""
        pacer = self.pacer
        while True:
            await self._pace_wake.wait()
            self._pace_wake = trio.Event()
            while pacer.queued:
                now = trio.current_time()
                ready = pacer.take(now)
                if ready:
                    self.channel.send_datagrams(ready, self.addr)
                    continue
                at = pacer.next_time(now)
                assert at is not None  # something is queued
                await trio.sleep_until(at)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["persistent"] = self.persistent
        out["mtu_payload"] = self.fragmenter.max_datagram
        out["size_fallback"] = self.size_fallback
        out["unreachable"] = self.unreachable
        out["unreachable_error"] = self.unreachable_error
        out["reassembly"] = self.reassembler.counters.as_dict()
        out["resend"] = self.fragmenter.counters.as_dict()
        pacer = self.pacer
        out["pacing"] = {
            "rate": None if pacer.rate is None else round(pacer.rate),
            "queued_bytes": pacer.queued_bytes,
            "dropped": pacer.dropped,
        }
        return out


class UdpChannel:
    """A bound UDP socket and the faces of the peers it talks to."""

    def __init__(
        self,
        sock: socket.socket,
        bound: FaceUri,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_on_demand: int = MAX_ON_DEMAND_FACES,
        max_datagram: int | None = None,
    ) -> None:
        self.sock = sock
        self.bound = bound
        self.family = sock.family
        self.idle_timeout = idle_timeout
        self.max_on_demand = max_on_demand
        self.max_datagram = max_datagram
        self.faces: dict[tuple[str, int, int], UdpFace] = {}
        self.dropped = 0
        #: times a send waited because the kernel had no buffer (the device queue was full)
        self.nobufs = 0
        #: ICMP errors for datagrams this socket sent (to a face's peer or to one since gone)
        self.unreachable = 0
        #: The error queue may hold something (see :meth:`_read_loop`).
        self._errors_queued = False
        self._queue: deque[tuple[bytes, SockAddr]] = deque()
        self._wake = trio.Event()
        self._on_face: OnUdpFace | None = None
        self._nursery: trio.Nursery | None = None
        #: Where the channel's faces say what a person should know (the node's stderr).
        self.say: Callable[[str], None] = _silent

    @classmethod
    async def open(cls, uri: FaceUri, **kwargs: Any) -> UdpChannel:
        """Bind ``udp://host:port`` (port 0: any). Raises :class:`ConnectError` on failure."""
        try:
            infos = await trio.socket.getaddrinfo(
                uri.host or None, uri.port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, addr = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as e:
            raise ConnectError(f"cannot listen on {uri}: {e.strerror or e}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
        except OSError as e:
            sock.close()
            raise ConnectError(f"cannot listen on {uri}: {e.strerror or e}") from None
        sock.setblocking(False)
        grow_buffers(sock)
        report_errors(sock)
        host, port = sock.getsockname()[:2]
        return cls(sock, FaceUri("udp", host=host, port=port), **kwargs)

    async def run(
        self,
        on_face: OnUdpFace,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Receive and send until cancelled, running ``on_face(face)`` for every new face.
        Closes the socket and every face on the way out."""
        self._on_face = on_face
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write_loop)
                task_status.started()
                await self._read_loop()
        finally:
            for face in list(self.faces.values()):
                face.close("channel closed")
            self.sock.close()

    # -- faces -----------------------------------------------------------------------------

    async def resolve(self, uri: FaceUri) -> SockAddr:
        zone_error = unknown_zone(uri.host)
        if zone_error:
            raise ConnectError(f"cannot resolve {uri}: {zone_error}")
        try:
            infos = await trio.socket.getaddrinfo(
                uri.host, uri.port, family=self.family, type=socket.SOCK_DGRAM
            )
        except OSError as e:
            raise ConnectError(f"cannot resolve {uri}: {e.strerror or e}") from None
        return tuple(infos[0][4])

    def face_for(self, addr: SockAddr, *, persistent: bool = True) -> UdpFace:
        """The face for peer ``addr``, made (and started) if needed. Asking for a persistent
        face makes an existing on-demand one persistent, and makes the caller one of its
        holders, who give it up with :meth:`UdpFace.release` (a static route and discovery may
        hold the face of one peer)."""
        face = self.faces.get(_key(addr))
        if face is None:
            face = self._new_face(addr, persistent=persistent)
        elif persistent:
            face.persistent = True  # run() sees it at its next idle check
            face.opened_by_peer = False
        if persistent:
            face.holders += 1
        return face

    def _new_face(self, addr: SockAddr, *, persistent: bool) -> UdpFace:
        assert self._nursery is not None and self._on_face is not None, "channel not running"
        size = self.max_datagram or path_datagram_size(self.family, addr)
        face = UdpFace(
            self,
            addr,
            persistent=persistent,
            idle_timeout=self.idle_timeout,
            max_datagram=size,
        )
        self.faces[_key(addr)] = face
        self._nursery.start_soon(self._on_face, face)
        return face

    def forget(self, face: UdpFace) -> None:
        if self.faces.get(_key(face.addr)) is face:
            del self.faces[_key(face.addr)]

    # -- I/O -------------------------------------------------------------------------------

    def send_datagrams(self, datagrams: list[bytes], addr: SockAddr) -> bool:
        """Hand datagrams to the kernel, queueing what does not fit now. False if dropped."""
        queue = self._queue
        if queue:
            if len(queue) + len(datagrams) > MAX_QUEUE_DATAGRAMS:
                self.dropped += 1
                return False
            queue.extend((d, addr) for d in datagrams)
            return True
        sendto = self.sock.sendto
        for i, d in enumerate(datagrams):
            try:
                sendto(d, addr)
            except BlockingIOError:
                queue.extend((rest, addr) for rest in datagrams[i:])
                self._wake.set()
                return True
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the interface's queue is full: wait for it
                    self.nobufs += 1
                    queue.extend((rest, addr) for rest in datagrams[i:])
                    self._wake.set()
                    return True
                if not self._resent(e, d, addr):
                    # unreachable network, link down, no route: lost, as on a wire
                    self.dropped += 1
                    return False
        return True

    def _resent(self, error: OSError, data: bytes, addr: SockAddr) -> bool:
        """``sendto`` failed with ``error``. If that may be the report of an ICMP error for an
        earlier datagram (to any peer), which fails the next send once while the error itself
        waits on the error queue, send once more; whether that went (a genuine error of this
        datagram's fails again)."""
        if error.errno not in _REPORTED:
            return False
        self._errors_queued = True
        try:
            self.sock.sendto(data, addr)
        except OSError:
            return False
        return True

    def _reported(self, e: OSError) -> bool:
        """Whether a ``recvfrom`` error is the kernel's report of an ICMP error (not the
        socket's fault: skipped, and the error queue read)."""
        if e.errno in _REPORTED:
            self._errors_queued = True
            return True
        return False

    async def _write_loop(self) -> None:
        queue = self._queue
        sock = self.sock
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while queue:
                data, addr = queue[0]
                try:
                    sock.sendto(data, addr)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                    continue
                except OSError as e:
                    if e.errno == errno.ENOBUFS:
                        # Nothing to wait on: the socket is writable, the device queue full.
                        self.nobufs += 1
                        await trio.sleep(NOBUFS_WAIT)
                        continue
                    if not self._resent(e, data, addr):
                        self.dropped += 1
                queue.popleft()

    async def _read_loop(self) -> None:
        sock = self.sock
        faces = self.faces
        while True:
            await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            received = False
            for data, addr in receive_turn(sock, self._reported):
                received = True
                face = faces.get(_key(addr))
                if face is None:
                    if not self._acceptable(data):
                        self.dropped += 1
                        continue
                    face = self._new_face(addr, persistent=False)
                face.datagram_received(data, now)
            # The error queue is read when a send or receive reported an error, and after a
            # wake-up that brought no datagram (a queued error wakes the loop until it is
            # read): not at every wake-up, which would cost a system call per datagram.
            if self._errors_queued or not received:
                self._take_errors()

    def _take_errors(self) -> None:
        errors, self._errors_queued = receive_errors(self.sock)
        for addr, err, quoted in errors:
            self.unreachable += 1
            face = self.faces.get(_key(addr))
            if face is not None:
                face.icmp_error(err, quoted)

    def _acceptable(self, data: bytes) -> bool:
        """Whether a datagram from an unknown peer may open a face: it must look like ccn, and
        the on-demand faces must be under their bound."""
        if sum(1 for f in self.faces.values() if not f.persistent) >= self.max_on_demand:
            return False
        if is_fragment(data):
            return parse_header(data) is not None
        try:
            decode(data)
        except DecodeError:
            return False
        return True
