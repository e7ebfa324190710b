"""LAN discovery: neighbours found over multicast, prefixes announced by distance vector.

Owns the multicast faces, the neighbour table and the routes it installs; it must not touch
routes it did not make. The wire convention is in docs/protocol.md §8 and docs/lan.md.

- **Hello.** Every :data:`HELLO_INTERVAL` seconds (and at once when something changed) the node
  sends on each multicast face an Interest ``/localhop/ccn/nd/hello/<params>``, hop limit 1,
  whose parameters (msgpack, split like management parameters) are ``id`` (8 random bytes per
  node run), ``uri`` (its UDP unicast address on that interface) and ``seq`` (the version of its
  route table). Hellos reach this module through the forwarder (route ``/localhop/ccn/nd`` to
  its internal face); they are never answered.
- **Neighbours.** A hello from an unknown id opens a persistent UDP unicast face to its ``uri``
  and a route ``/localhop/ccn/nd/routes/<id in hex>`` over it (:func:`link_prefix`). A
  neighbour not heard for :data:`DEAD_INTERVAL` is removed: its face is closed, which drops
  every route through it.
- **Prefix announcements.** When a neighbour's ``seq`` differs from the table we hold (or every
  :data:`REFRESH_INTERVAL`), we fetch ``/localhop/ccn/nd/routes/<its id in hex>/<params {to:
  our id}>``; the answer (Data, freshness 0) lists ``[prefix, cost]``: the prefixes it
  produces at cost 0 and the best route it learned for every other prefix, except routes
  learned from the asker (split horizon). We install each at ``cost + LINK_COST`` through that
  neighbour's face, unless it reaches :data:`INFINITY`. Routes not confirmed within
  :data:`ROUTE_LIFETIME` expire.
- **Multicast fallback.** Each ``multicast_prefixes`` prefix gets the multicast strategy and a
  route to one multicast face per interface at :data:`~ccn.fw.strategy.FALLBACK_COST` (never
  announced): the IPv4 one where there is one, else the IPv6 one.
- **IPv6.** An interface with an IPv6 link-local address gets an IPv6 multicast face beside the
  IPv4 one (if it has an IPv4 address), so nodes with only IPv6 on the segment are found too.
  A hello on it names the sender's link-local address; the receiver adds the zone of the
  interface the hello came in on (the sender's own interface name means nothing here) and
  reaches the neighbour over an IPv6 UDP channel. A neighbour is one entry per node id, heard
  in both families or not: where both are heard, IPv4 is used (a dual-stack LAN works as it did
  before IPv6 was added), and IPv6 only for neighbours that send no IPv4 hellos.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import random
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from ccn.errors import CcnError, DecodeError
from ccn.faces.base import Face
from ccn.faces.internal import InternalFace
from ccn.faces.multicast import DEFAULT_PORT, Interface, MulticastFace, list_interfaces
from ccn.faces.udp import UdpChannel, UdpFace
from ccn.faces.uri import FaceUri
from ccn.fw.strategy import FALLBACK_COST, Multicast
from ccn.mgmt_proto import PARAM_COMPONENT_BYTES
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, Packet

if TYPE_CHECKING:
    from ccn.node import Node

PREFIX = Name.parse("/localhop/ccn/nd")
HELLO = PREFIX / "hello"
ROUTES = PREFIX / "routes"

HELLO_INTERVAL = 1.0
DEAD_INTERVAL = 3.5 * HELLO_INTERVAL
#: Shortest gap between two hellos on a face (triggered hellos are rate-limited to it).
MIN_HELLO_GAP = 0.1
REFRESH_INTERVAL = 10.0
ROUTE_LIFETIME = 3 * REFRESH_INTERVAL
FETCH_TIMEOUT = 2.0
#: After this many requests in a row for a neighbour's table went unanswered, the node says so
#: on stderr, once per neighbour: a node from before 16050ec asks for tables under the raw id,
#: not its hex, and answers only that form, so the two hear each other but learn nothing.
UNANSWERED_TOLD = 3
RESCAN_INTERVAL = 5.0
#: The longest the loop sleeps when nothing is due and nothing pokes it: bounds how late a
#: change of the route table that nobody announced (see :meth:`Discovery.poke`) goes out.
MAX_SLEEP = HELLO_INTERVAL
LINK_COST = 1
INFINITY = 16
MAX_ROUTES = 10_000
#: At most this many of a node's own prefixes are announced as they are; more are announced
#: shortened, to the longest prefixes that are this few (see :func:`announced`).
MAX_OWN_ANNOUNCED = 1_000
#: A route table reply stays well inside one packet (a bigger one could not be sent at all).
MAX_TABLE_BYTES = 512 * 1024
#: Neighbours at once; hellos from further ids are ignored (counted) until some go silent.
MAX_NEIGHBOURS = 1024
NODE_ID_BYTES = 8


def _retry_delay(failed: int) -> float:
    """How long after a request for a neighbour's table that got none (the ``failed``-th in a
    row) the next may go out: :data:`FETCH_TIMEOUT`, doubling up to :data:`REFRESH_INTERVAL`."""
    return min(FETCH_TIMEOUT * (1 << min(failed - 1, 8)), REFRESH_INTERVAL)


def link_prefix(node_id: bytes) -> Name:
    """Where a neighbour's route table is asked for: its id in hex, so that the route to it
    reads as text in ``route list`` (as the id does everywhere else), not as escaped bytes."""
    return ROUTES / node_id.hex()


def _params_name(base: Name, params: dict[str, Any]) -> Name:
    blob: bytes = msgpack.packb(params, use_bin_type=True)
    return base.append(
        *(blob[i : i + PARAM_COMPONENT_BYTES] for i in range(0, len(blob), PARAM_COMPONENT_BYTES))
    )


def _params(name: Name, base: Name) -> dict[str, Any]:
    rest = b"".join(name.components[len(base) :])
    try:
        params = msgpack.unpackb(rest, raw=False, strict_map_key=True)
    except Exception:
        raise DecodeError("discovery parameters are not msgpack") from None
    if not isinstance(params, dict):
        raise DecodeError("discovery parameters must be a map")
    return params


def _peer(target: FaceUri, arrival: MulticastFace | None) -> FaceUri | None:
    """The one peer a hello's address names, as this node reaches it, or None. An IPv4 address
    is taken as it is, unless the hello came in on an IPv6 group; an IPv6 one only from an IPv6
    group, and only link-local, with the zone of the interface it came in on. A host name would
    be resolved on the event loop at every send; unspecified, multicast and broadcast addresses
    are no neighbour."""
    if target.scheme != "udp" or target.port == 0:
        return None
    v6 = arrival is not None and arrival.family == socket.AF_INET6
    try:
        if not v6:
            ip4 = ipaddress.IPv4Address(target.host)
            return None if ip4.is_unspecified or ip4.is_multicast or ip4.is_reserved else target
        ip6 = ipaddress.IPv6Address(target.host.partition("%")[0])
    except ValueError:
        return None
    if not ip6.is_link_local:
        return None
    assert arrival is not None
    return FaceUri("udp", host=f"{ip6}%{arrival.iface.name}", port=target.port)


@dataclass
class Neighbour:
    id: bytes
    uri: str
    face: UdpFace
    last_heard: float
    #: When a hello last named ``uri`` (a node on two shared segments is heard under two
    #: addresses; while ``uri`` is heard, the other is not taken for a change of address).
    #: Only that one time is kept: a time for every address ever named, never pruned, grew
    #: with each hello naming a new one.
    uri_heard: float = -math.inf
    seq: int = -1
    fetched_seq: int = -1
    fetched_at: float = -math.inf
    fetching: bool = False
    #: prefix -> cost as installed (the neighbour's cost + LINK_COST)
    routes: dict[Name, int] = field(default_factory=dict)
    #: Requests for its table in a row that got no answer at all (see
    #: :data:`UNANSWERED_TOLD`); a Nack is an answer: the node there is gone or unreachable,
    #: which an older ccn is not.
    unanswered: int = 0
    #: Requests for its table in a row that got no table (silence or a Nack), and the time
    #: before which the next is not sent (:func:`_retry_delay` after the last went out).
    failed: int = 0
    retry_at: float = -math.inf


class Discovery:
    def __init__(
        self, node: Node, *, port: int = DEFAULT_PORT, say: Callable[[str], None] | None = None
    ) -> None:
        self.node = node
        self._say = say if say is not None else (lambda _line: None)
        #: Requests for a neighbour's table that got no table (no answer in time, or a Nack).
        self.tables_unanswered = 0
        self.port = port
        self.id = secrets.token_bytes(NODE_ID_BYTES)
        self.face = InternalFace("internal://discovery", self._on_packet)
        self.neighbours: dict[bytes, Neighbour] = {}
        #: (interface name, address family) -> its multicast face
        self.mcast: dict[tuple[str, int], MulticastFace] = {}
        #: The multicast faces that carry the multicast fallback's routes (one per interface).
        self._fallback: set[MulticastFace] = set()
        #: The multicast face whose packet the node is handing to the forwarder now (a hello
        #: reaches :meth:`_on_packet` within that call), else None.
        self._arrival: MulticastFace | None = None
        self.seq = 0
        self._signature: object = None
        self._learned = 0  # changes to the routes learned from neighbours
        self._own_cache: tuple[int, list[Name]] | None = None  # (FIB epoch, announced)
        self._hello_due = 0.0
        self._last_hello = -math.inf
        self._pending: dict[Name, trio.MemorySendChannel[Packet]] = {}
        self._channel: UdpChannel | None = None
        #: The IPv6 UDP channel, opened when the first IPv6 multicast face is; None until then.
        self._channel6: UdpChannel | None = None
        self._nursery: trio.Nursery | None = None
        self._poked = trio.Event()
        self.wakeups = 0
        self.hellos_sent = 0
        self.hellos_heard = 0
        self.neighbours_refused = 0

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        node._attach(self.face)
        node.forwarder.add_route(PREFIX, self.face.id, 0)
        for prefix in node.config.multicast_prefixes:
            node.forwarder.set_strategy(prefix, Multicast.name)
        self._channel = await node.udp_channel(socket.AF_INET)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._scan()
            task_status.started()
            next_scan = trio.current_time() + RESCAN_INTERVAL
            while True:
                now = trio.current_time()
                self.wakeups += 1
                if now >= next_scan:
                    await self._scan()
                    next_scan = now + RESCAN_INTERVAL
                self._maintain(now)
                with trio.move_on_at(min(next_scan, self._next_due(now))):
                    await self._poked.wait()
                self._poked = trio.Event()

    def poke(self) -> None:
        """Something discovery acts on changed (a hello came, a fetch ended, the node published):
        look at once rather than when the next timer is due."""
        self._poked.set()

    def _next_due(self, now: float) -> float:
        """When :meth:`_maintain` next has something to do on its own (a hello, a neighbour
        going silent, a table refresh or route expiry), at most :data:`MAX_SLEEP` away."""
        due = [now + MAX_SLEEP, max(self._hello_due, self._last_hello + MIN_HELLO_GAP)]
        for nb in self.neighbours.values():
            due.append(nb.last_heard + DEAD_INTERVAL)
            if nb.routes:
                due.append(nb.fetched_at + ROUTE_LIFETIME)
            if not nb.fetching:
                refresh = nb.fetched_at + REFRESH_INTERVAL if nb.seq == nb.fetched_seq else now
                due.append(max(refresh, nb.retry_at))
        return min(due)

    async def _scan(self) -> None:
        """Open a multicast face on every LAN interface for each family it has an address of
        (IPv4, IPv6 link-local) and has no face for; faces of vanished interfaces or addresses
        have closed themselves (their socket errors) or are closed here."""
        wanted = self.node.config.interfaces or None
        present: dict[tuple[str, int], Interface] = {}
        for iface in list_interfaces(wanted):
            if iface.ipv4:
                present[(iface.name, socket.AF_INET)] = iface
            if iface.ipv6_link_local:
                present[(iface.name, socket.AF_INET6)] = iface
        for key, face in list(self.mcast.items()):
            now_there = present.get(key)
            if face.closed or now_there is None or _address(now_there, key[1]) != face.address:
                face.close()
                del self.mcast[key]
        assert self._nursery is not None
        for key, iface in present.items():
            if key in self.mcast or not await self._channel_open(key[1]):
                continue
            try:
                face = MulticastFace(iface, key[1], self.port)
            except CcnError:
                continue
            self.mcast[key] = face
            self._nursery.start_soon(self.node._serve_face, face, self._from_group)
            self._hello_due = 0.0
        self._place_fallback()

    async def _channel_open(self, family: int) -> bool:
        """Whether a UDP channel of ``family`` runs for neighbours to be reached over (the IPv6
        one is opened here, the first time it is wanted: a host without IPv6 has none)."""
        if family == socket.AF_INET:
            return True
        if self._channel6 is None:
            with contextlib.suppress(CcnError):
                self._channel6 = await self.node.udp_channel(socket.AF_INET6)
        return self._channel6 is not None

    def _place_fallback(self) -> None:
        """The multicast strategy's fallback (FALLBACK_COST) on one face per interface: the
        IPv4 one if there is one (a dual-stack segment carries each Interest once, as before
        IPv6 faces existed), else the IPv6 one. A route goes with its face when it closes."""
        chosen: dict[str, MulticastFace] = {}
        for (name, family), face in self.mcast.items():
            if name not in chosen or family == socket.AF_INET:
                chosen[name] = face
        carrying = set(chosen.values())
        fw = self.node.forwarder
        for face in self._fallback - carrying:
            for prefix in self.node.config.multicast_prefixes:
                fw.remove_route(prefix, face.id)
        for face in carrying - self._fallback:
            for prefix in self.node.config.multicast_prefixes:
                with contextlib.suppress(CcnError):
                    fw.add_route(prefix, face.id, FALLBACK_COST)
        self._fallback = carrying

    def _from_group(self, face: Face, packet: Packet) -> None:
        """A multicast face delivers ``packet``: the node handles it as any other, and a hello
        in it reaches :meth:`_on_hello` before this returns, knowing the face it came in on."""
        self._arrival = face if isinstance(face, MulticastFace) else None
        try:
            self.node.receive(face, packet)
        finally:
            self._arrival = None

    def _maintain(self, now: float) -> None:
        # neighbours gone silent
        for nb in list(self.neighbours.values()):
            if now - nb.last_heard > DEAD_INTERVAL or nb.face.closed:
                self._remove(nb)
            elif now - nb.fetched_at > ROUTE_LIFETIME and nb.routes:
                self._install(nb, {})
        # our table changed: a new version, announced at once
        signature = self._table_signature()
        if signature != self._signature:
            self._signature = signature
            self.seq += 1
            self._hello_due = min(self._hello_due, now)
        if now >= self._hello_due and now - self._last_hello >= MIN_HELLO_GAP:
            self._send_hellos(now)
        # fetch tables that changed or are due for a refresh
        for nb in self.neighbours.values():
            stale = nb.seq != nb.fetched_seq or now - nb.fetched_at > REFRESH_INTERVAL
            if stale and not nb.fetching and now >= nb.retry_at and self._nursery is not None:
                nb.fetching = True
                self._nursery.start_soon(self._fetch, nb)

    def _send_hellos(self, now: float) -> None:
        assert self._channel is not None
        self._last_hello = now
        self._hello_due = now + HELLO_INTERVAL * random.uniform(0.9, 1.1)
        # IPv4 first: a dual-stack neighbour hears that one first, and keeps to it
        for face in sorted(self.mcast.values(), key=lambda f: f.family != socket.AF_INET):
            channel = self._channel6 if face.family == socket.AF_INET6 else self._channel
            if face.closed or face.address is None or channel is None:
                continue
            # an IPv6 address without its zone: the receiver adds its own interface's
            uri = str(FaceUri("udp", host=face.address, port=channel.bound.port))
            name = _params_name(HELLO, {"id": self.id, "uri": uri, "seq": self.seq})
            face.send(Interest(name, secrets.randbits(32), lifetime_ms=200, hop_limit=1))
            self.hellos_sent += 1

    # -- packets from the forwarder ----------------------------------------------------------

    def _on_packet(self, packet: Packet) -> None:
        if type(packet) is Interest:
            name = packet.name
            try:
                if HELLO.is_prefix_of(name):
                    self._on_hello(_params(name, HELLO), self._arrival)
                elif ROUTES.is_prefix_of(name) and len(name) > len(ROUTES):
                    self._on_routes_request(packet)
            except (DecodeError, CcnError, KeyError, TypeError, ValueError):
                return
        elif type(packet) is Data or type(packet) is Nack:
            key = packet.name if type(packet) is Data else packet.interest.name  # type: ignore[union-attr]
            waiter = self._pending.pop(key, None)
            if waiter is not None:
                waiter.send_nowait(packet)

    def _on_hello(self, params: dict[str, Any], arrival: MulticastFace | None = None) -> None:
        """A hello with ``params``, which came in on multicast face ``arrival`` (None: another
        face, or none)."""
        nid, uri, seq = params["id"], params["uri"], params["seq"]
        if (
            type(nid) is not bytes
            or len(nid) != NODE_ID_BYTES
            or type(uri) is not str
            or type(seq) is not int
            or nid == self.id
        ):
            return
        target = _peer(FaceUri.parse(uri), arrival)
        if target is None:
            return
        uri = str(target)
        self.hellos_heard += 1
        now = trio.current_time()
        nb = self.neighbours.get(nid)
        in_use = nb is not None and now - nb.uri_heard < DEAD_INTERVAL
        if nb is not None and nb.uri != uri and in_use and not _preferred(uri, nb.uri):
            # the neighbour is on another shared segment too, or heard in the other family
            # as well; keep the address in use
            nb.last_heard = now
            return
        if nb is not None and nb.uri != uri:
            # its address changed, or it is heard over IPv4 now too: start over on the new one
            self._remove(nb)
            nb = None
        if nb is None:
            if len(self.neighbours) >= MAX_NEIGHBOURS:
                self.neighbours_refused += 1
                return
            face = self._face_to(target)
            if face is None:
                return
            nb = Neighbour(nid, uri, face, now)
            self.neighbours[nid] = nb
            self.node.forwarder.add_route(link_prefix(nid), face.id, 0)
            self._hello_due = 0.0  # let it hear us at once
        nb.uri_heard = now
        nb.last_heard = now
        nb.seq = seq
        self.poke()

    def _face_to(self, target: FaceUri) -> UdpFace | None:
        v6 = ":" in target.host
        channel = self._channel6 if v6 else self._channel
        if channel is None:
            return None
        try:
            if v6:
                # numeric, so no lookup: the zone becomes the address's scope id, and the host
                # is spelled as the channel's received datagrams spell it
                infos = socket.getaddrinfo(
                    target.host,
                    target.port,
                    socket.AF_INET6,
                    socket.SOCK_DGRAM,
                    0,
                    socket.AI_NUMERICHOST,
                )
                addr: tuple[Any, ...] = tuple(infos[0][4])
            else:
                addr = (target.host, target.port)
            return channel.face_for(addr, persistent=True)
        except (OSError, CcnError):
            return None

    def _on_routes_request(self, interest: Interest) -> None:
        own = link_prefix(self.id)
        if not own.is_prefix_of(interest.name):
            return
        params = _params(interest.name, own)
        asker = params.get("to")
        routes = _bounded_table(self._table_for(asker))
        content: bytes = msgpack.packb(
            {"id": self.id, "seq": self.seq, "routes": routes}, use_bin_type=True
        )
        self.node.inject(self.face.id, Data(interest.name, content, 0))

    # -- the route table ---------------------------------------------------------------------

    def own_prefixes(self) -> list[Name]:
        return sorted(self._own_routed())

    def _own_routed(self) -> list[Name]:
        """The prefixes our producer serves that may be announced, in no order."""
        routed = self.node.forwarder.fib.prefixes_via(self.node.producer.face.id)
        return [p for p in routed if len(p) and not (p.is_localhost or p.is_localhop)]

    def _own_epoch(self) -> int:
        """Changes whenever a route to our producer does (see :meth:`ccn.tables.fib.Fib.epoch`)."""
        return self.node.forwarder.fib.epoch(self.node.producer.face.id)

    def _own_announced(self) -> list[Name]:
        epoch = self._own_epoch()
        if self._own_cache is None or self._own_cache[0] != epoch:
            self._own_cache = (epoch, announced(self._own_routed(), MAX_OWN_ANNOUNCED))
        return self._own_cache[1]

    def _table_for(self, asker: object) -> dict[Name, int]:
        """What we announce to ``asker``: own prefixes at 0, and the best route learned from
        any other neighbour (split horizon)."""
        table: dict[Name, int] = {p: 0 for p in self._own_announced()}
        for nb in self.neighbours.values():
            if nb.id == asker:
                continue
            for prefix, cost in nb.routes.items():
                if cost < table.get(prefix, INFINITY):
                    table[prefix] = cost
        return table

    def _table_signature(self) -> object:
        """Changes when what we announce may have: our producer's routes, or routes learned.
        Counted, not compared: a node with many names looks at none of them here (building
        this from the table once a second cost an idle node with 66,000 names 60 % of a core)."""
        return (self._own_epoch(), self._learned)

    async def _fetch(self, nb: Neighbour) -> None:
        seq = nb.seq
        sent = trio.current_time()
        name = _params_name(link_prefix(nb.id), {"to": self.id, "seq": seq})
        send, receive = trio.open_memory_channel[Packet](1)
        self._pending[name] = send
        try:
            interest = Interest(name, secrets.randbits(32), 1000, 4, False, True)
            self.node.inject(self.face.id, interest)
            answered = nacked = False
            with trio.move_on_after(FETCH_TIMEOUT):
                reply = await receive.receive()
                nacked = type(reply) is Nack
                if type(reply) is Data and self.neighbours.get(nb.id) is nb:
                    answered = True
                    self._accept(nb, reply.content, seq)
            if answered:
                nb.unanswered = nb.failed = 0
                nb.retry_at = -math.inf
            elif self.neighbours.get(nb.id) is nb:
                # not again at once: a Nack (the port unreachable) comes back at once, and a
                # neighbour that just stopped would be asked in a loop until it is dropped
                nb.failed += 1
                nb.retry_at = sent + _retry_delay(nb.failed)
                self._unanswered(nb, silent=not nacked)
        finally:
            self._pending.pop(name, None)
            nb.fetching = False
            self.poke()

    def _unanswered(self, nb: Neighbour, *, silent: bool) -> None:
        self.tables_unanswered += 1
        if not silent:
            return
        nb.unanswered += 1
        if nb.unanswered == UNANSWERED_TOLD:
            self._say(
                f"discovery: neighbour {nb.id.hex()} at {nb.uri} has not answered "
                f"{UNANSWERED_TOLD} requests for its route table: it may run a ccn whose "
                "discovery differs (before 16050ec); no routes are learned from it: upgrade it, "
                "or give a static --route (docs/lan.md)"
            )

    def _accept(self, nb: Neighbour, content: bytes, seq: int) -> None:
        try:
            reply = msgpack.unpackb(content, raw=False, strict_map_key=True)
            routes: dict[Name, int] = {}
            for prefix, cost in reply["routes"][:MAX_ROUTES]:
                p = Name.parse(prefix)
                if type(cost) is int and cost >= 0 and not (p.is_localhop or p.is_localhost):
                    routes[p] = cost + LINK_COST
        except (Exception, CcnError):
            return
        # the reply is a map here (``reply["routes"]`` worked); its seq is the peer's word only
        their_seq = reply.get("seq")
        nb.fetched_seq = max(seq, their_seq) if type(their_seq) is int else seq
        nb.fetched_at = trio.current_time()
        own = self.node.forwarder.fib.prefixes_via(self.node.producer.face.id)
        self._install(nb, {p: c for p, c in routes.items() if c < INFINITY and p not in own})

    def _install(self, nb: Neighbour, routes: dict[Name, int]) -> None:
        fw = self.node.forwarder
        for prefix in nb.routes.keys() - routes.keys():
            other = self._sharing(nb, prefix)
            if other is None:
                fw.remove_route(prefix, nb.face.id)
            else:
                # A node restarted on its port is a new id on the face the old id shares:
                # the route is the new one's too (at its cost), not the old one's to take.
                with contextlib.suppress(CcnError):
                    fw.add_route(prefix, nb.face.id, other.routes[prefix])
        for prefix, cost in routes.items():
            # Added (or its cost set) at every table, not only when it changed: a discovered
            # route removed by hand comes back, as a routing protocol's would (it was gone for
            # good while the node still took it for one of discovery's).
            try:
                fw.add_route(prefix, nb.face.id, cost)
            except CcnError:
                continue
        if routes != nb.routes:
            self._learned += 1
        nb.routes = routes

    def _sharing(self, nb: Neighbour, prefix: Name) -> Neighbour | None:
        """Another neighbour on ``nb``'s face that has a route to ``prefix``, if any."""
        for other in self.neighbours.values():
            if other is not nb and other.face is nb.face and prefix in other.routes:
                return other
        return None

    def _remove(self, nb: Neighbour) -> None:
        if self.neighbours.get(nb.id) is nb:
            del self.neighbours[nb.id]
        self._install(nb, {})
        self.node.forwarder.remove_route(link_prefix(nb.id), nb.face.id)
        nb.face.release("neighbour silent")

    # -- status ----------------------------------------------------------------------------

    def origin(self, prefix: Name, face_id: int) -> str | None:
        for face in self.mcast.values():
            if face.id == face_id:
                v6 = " (IPv6)" if face.family == socket.AF_INET6 else ""
                return f"multicast fallback {face.iface.name}{v6}"
        for nb in self.neighbours.values():
            if nb.face.id == face_id:
                if prefix in nb.routes:
                    return f"discovery: neighbour {nb.id.hex()} {nb.uri}"
                if prefix == link_prefix(nb.id):
                    return f"discovery: link to neighbour {nb.id.hex()} {nb.uri}"
        return None

    def missing_interfaces(self) -> list[str]:
        """Configured ``interfaces`` that have no multicast face now: absent, down, not
        multicast-capable or with neither an IPv4 address nor an IPv6 link-local one.
        :meth:`_scan` looks for them again every :data:`RESCAN_INTERVAL` seconds."""
        have = {name for name, _family in self.mcast}
        return [name for name in self.node.config.interfaces if name not in have]

    def status(self) -> dict[str, Any]:
        now = trio.current_time()
        return {
            "id": self.id.hex(),
            "seq": self.seq,
            "multicast": [f.remote for f in self.mcast.values()],
            "hellos_sent": self.hellos_sent,
            "hellos_heard": self.hellos_heard,
            "neighbours_refused": self.neighbours_refused,
            "tables_unanswered": self.tables_unanswered,
            "neighbours": [
                {
                    "id": nb.id.hex(),
                    "uri": nb.uri,
                    "face": nb.face.id,
                    "heard_ago": round(now - nb.last_heard, 3),
                    "routes": len(nb.routes),
                    "unanswered": nb.unanswered,
                }
                for nb in self.neighbours.values()
            ],
        }


def _address(iface: Interface, family: int) -> str | None:
    return iface.ipv6_link_local if family == socket.AF_INET6 else iface.ipv4


def _preferred(uri: str, used: str) -> bool:
    """Whether a neighbour heard at ``uri`` too is better reached there than at ``used``, the
    address in use: IPv4 over IPv6 (see the module's docstring)."""
    return "[" in used and "[" not in uri


def announced(prefixes: list[Name], budget: int) -> list[Name]:
    """``prefixes`` as announced: as they are if they are at most ``budget``, else each cut
    to the longest length at which they are that few (66,000 names ``/data/set<i>/item<j>``
    under 100 sets are announced as the 100 ``/data/set<i>``): a route to a node for a prefix
    it does not wholly hold costs a Nack for the names it lacks; no route costs every name.
    If even their first components are too many, those are announced (and the table's bounds
    keep what fits)."""
    shorter = set(prefixes)
    depth = max((len(p) for p in prefixes), default=0)
    while len(shorter) > budget and depth > 1:
        depth -= 1
        shorter = {p[:depth] for p in prefixes}
    return sorted(shorter)


def _bounded_table(table: dict[Name, int]) -> list[list[object]]:
    """The reply's routes: cheapest first, then by name, at most :data:`MAX_ROUTES` of them
    and :data:`MAX_TABLE_BYTES` of names (a neighbour takes no more; the packet must fit)."""
    routes: list[list[object]] = []
    size = 0
    for prefix, cost in sorted(table.items(), key=_by_cost):
        text = str(prefix)
        size += len(text) + 4
        if len(routes) == MAX_ROUTES or size > MAX_TABLE_BYTES:
            break
        routes.append([text, cost])
    return routes


def _by_cost(route: tuple[Name, int]) -> tuple[int, Name]:
    return route[1], route[0]
