"""The node: faces, the forwarder core, the store and its producer, management — one nursery.

Packets arriving on any face are turned into forwarder events and handled at once (the core is
synchronous and never awaits, so it is effectively one task); the resulting actions are handed
to faces, whose ``send`` never blocks. One timer task ticks the core at ``next_deadline()``.
Answers from internal faces (producer, management) are queued behind the event being handled,
so the forwarder is never re-entered.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import resource
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from ccn.codec import MAX_PACKET_SIZE
from ccn.config import ConfigError, NodeConfig, check_store_dir
from ccn.defaults import ccn_home
from ccn.errors import (
    CorruptObject,
    InvalidObject,
    ObjectNotFound,
    StoreError,
)
from ccn.faces.base import READ_QUANTUM, Deliver, Face
from ccn.faces.internal import InternalFace
from ccn.faces.stream import (
    DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_PACKETS,
    RECEIVE_SIZE,
)
from ccn.faces.transport import open_listener, serve
from ccn.faces.udp import UdpChannel
from ccn.faces.uri import FaceUri, is_own_address, own_address_error
from ccn.framing import HEADER_SIZE
from ccn.fw.actions import (
    Action,
    DataIn,
    DataRefused,
    Event,
    FaceDown,
    FaceUp,
    InterestIn,
    NackIn,
    SendData,
    SendInterest,
    SendNack,
    Tick,
)
from ccn.fw.forwarder import Forwarder, ForwarderConfig
from ccn.logline import say
from ccn.mgmt import Management
from ccn.mgmt_proto import PREFIX as MGMT_PREFIX
from ccn.name import ROOT, Name
from ccn.neighbours import MAX_HELD, Neighbour, Neighbours
from ccn.packet import Data, Interest, NackReason, Packet
from ccn.producer import LATEST_FRESHNESS_MS, VERSION_FRESHNESS_MS, Producer
from ccn.store.cache import CacheFeeder, CacheInUse, CacheTier, batches
from ccn.store.newstore import NewStore
from ccn.store.objects import MAX_OBJECT_SIZE, Kind, Version, children
from ccn.store.objects import decode as decode_object
from ccn.store.objstore import DiskObjectStore
from ccn.store.refs import DiskRefStore
from ccn.store.seen import SeenVersions
from ccn.trust import Anchors, UntrustedVersion

if TYPE_CHECKING:
    from ccn.discovery import Discovery
    from ccn.ndngw import NdnGateway

MAX_TICK_INTERVAL: Final = 0.5
#: Faces and routes ``status`` lists (its reply must fit one packet); it also gives totals.
STATUS_MAX_FACES: Final = 1000
STATUS_MAX_ROUTES: Final = 2000
#: When a pool of faces is full, a face its peer opened that has sent no valid packet for
#: this long gives its place to the newcomer (see Node._evict_silent).
SILENT_GRACE = 2.0  # not Final: tests shorten it (docs/compiled.md)
#: How many digests forwarded upstream the node remembers (see ``Node._asked``).
ASKED_MAX: Final = 65536
#: At exit, the CS's nameless objects are written to the cache tier for at most this long,
#: in batches of SAVE_BATCH_BYTES (shutdown must stay well within a second).
SAVE_AT_EXIT_S = 0.4  # (these two not Final: tests change them; docs/compiled.md)
SAVE_BATCH_BYTES = 8 << 20
#: A "newest version seen" answer needs every object of the version on this node: the check
#: walks at most this many objects (more: not answered so), and this many verdicts are kept.
WHOLE_CHECK_MAX_OBJECTS: Final = 100_000
WHOLE_VERDICTS_KEPT: Final = 1024
#: Version records a local client refused (the ``refuse`` command): how many are kept, and for
#: how long (s) this node refuses them too.
REFUSED_KEPT: Final = 1024
REFUSED_FOR: Final = 60.0


def _children_of(raw: bytes) -> list[tuple[bytes, Kind]]:
    """What the object ``raw`` points at; nothing if it does not decode."""
    try:
        return children(decode_object(raw))
    except InvalidObject:
        return []


def _version_record(data: Data) -> Version | None:
    """The version record ``data`` carries, if it is one for exactly ``data``'s name."""
    try:
        version = decode_object(data.content)
    except InvalidObject:
        return None
    if type(version) is not Version or version.full_name != data.name:
        return None
    return version


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a start that routes every published name makes
    a few objects per name and none of them garbage, yet the collections their number set
    off took a quarter of it (0.47 of 1.7 s for 66,000 names)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _say(line: str) -> None:
    say(f"ccn node: {line}")


#: Descriptors a node needs besides its faces': listeners, UDP sockets, store packs
#: (MAX_OPEN_PACKS), cache segments, files being published, worker threads' files.
DESCRIPTORS_BESIDES_FACES: Final = 256


def raise_descriptor_limit(config: NodeConfig) -> None:
    """Raise this process's soft limit of open files as far as the faces allowed
    (``max_faces`` for apps and as many for peers) need, within the hard limit. The usual
    soft limit of 1024 let a node reach neither: at the limit, accept fails and new
    connections wait (see :func:`ccn.faces.transport.accept_forever`). Go's runtime raises
    it for every program the same way."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * config.max_faces + DESCRIPTORS_BESIDES_FACES
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Node:
    def __init__(self, config: NodeConfig) -> None:
        config.validate()
        check_store_dir(config.store)
        self.config = config
        #: What of the store's path this start creates: removed if the start fails.
        self._new_store = NewStore(config.store)
        try:
            config.store.mkdir(parents=True, exist_ok=True)
            self.store = DiskObjectStore(config.store, fsync=config.fsync)
            self.refs = DiskRefStore(config.store)
            #: Objects this node forwarded, on disk within ``cache_bytes`` (ccn/store/cache.py):
            #: a victim cache, written as objects leave the in-memory CS (and at exit).
            self.cache = CacheTier(
                config.store / "cache", config.cache_bytes, max_entries=config.cache_max_entries
            )
            #: Versions of names published elsewhere that this node fetched for someone, so
            #: that it can answer for them from the cache tier when no producer can
            #: (ccn/store/seen.py).
            self.seen = SeenVersions(config.store / "cache" / "versions")
            self._seen_pins()
        except CacheInUse:
            raise  # another node's store (it made it since we looked): not ours to take back
        except BaseException:
            self._new_store.undo()
            raise
        self.cache_feed = CacheFeeder(self.cache, report=_say)
        #: version id -> (whether this node holds all of it, until when that verdict stands)
        self._whole: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()
        #: Whether a seen version record passes the anchors (see _trusted_seen).
        self._seen_trusted: OrderedDict[bytes, bool] = OrderedDict()
        #: Digest Interests answered from the main store by the hook in :meth:`process`.
        self.store_served = [0, 0]  # objects, bytes
        #: Digests this node recently asked upstream for, so that an object arriving after its
        #: requester left (a killed ``ccn get``) is still kept for the resumed fetch.
        self._asked: OrderedDict[bytes, None] = OrderedDict()
        self.forwarder = Forwarder(
            ForwarderConfig(
                cs_max_bytes=config.cs_bytes,
                cs_max_entries=config.cs_max_entries,
                pit_max_entries=config.pit_max_entries,
                pit_max_per_face=config.pit_max_per_face,
                default_strategy=config.strategy,
            )
        )
        self.forwarder.cs.keep_evicted = True
        self.faces: dict[int, Face] = {}
        self._attached_at: dict[int, float] = {}  # face id -> trio time it was attached
        #: Version records under these prefixes must be signed by their keys (ccn/trust.py).
        self.anchors = Anchors(Anchors.parse_line(t, sep="=") for t in config.trust)
        #: Version records a local client's trust file refused (:meth:`refuse`): record id ->
        #: trio time until which this node refuses them as it does what its anchors reject.
        self.refused: OrderedDict[bytes, float] = OrderedDict()
        #: Drops on purpose, node-wide, including those of faces since closed (``status.drops``).
        self.drops = {
            "malformed": 0,
            "queue_full": 0,
            "faces_refused": 0,
            "silent_faces": 0,
            "faces_per_host": 0,
            "untrusted": 0,
            "late_answers": 0,
        }
        #: Configured next hops (``--route``, ``route add``), kept connected.
        self.links = Neighbours(self, say=_say)
        self.bound: list[FaceUri] = []
        #: UDP sockets (``udp://`` listeners, or opened for a route or discovery), see faces/udp.py
        self.udp_channels: list[UdpChannel] = []
        #: LAN discovery (``discovery = true``), see ccn/discovery.py.
        self.discovery: Discovery | None = None
        #: The NDN side (``--ndn``): listeners for NDN apps, see ccn/ndngw.py.
        self.ndn: NdnGateway | None = None
        self.bound_ndn: list[FaceUri] = []
        self.producer = Producer(self.store, self.refs, self.inject)
        self.management = Management(self)
        self._queue: deque[Event] = deque()
        self._busy = False
        #: trio's clock, read straight: ``trio.current_time()`` costs twice as much, per
        #: Interest (set at the first reading, inside trio).
        self._read_clock: Callable[[], float] | None = None
        #: The Interest event :meth:`retry_held` is handing to the forwarder again.
        self._retrying: InterestIn | None = None
        self._timer_wake = trio.Event()
        self._sleeping_until = 0.0
        self._nursery: trio.Nursery | None = None

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None, "the node is not running"
        return self._nursery

    # -- running ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[list[FaceUri]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen, dial configured routes, serve until cancelled. Reports the bound addresses.
        A start that fails (or is cancelled) before that removes what it created of the store's
        path (:class:`~ccn.store.newstore.NewStore`)."""
        started = False
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._attach(self.producer.face)
                self._attach(self.management.face)
                self.forwarder.add_route(MGMT_PREFIX, self.management.face.id, 0)
                with _collector_paused():
                    for name in self.refs.names(None):
                        self._route_to_producer(name)
                for text in self.config.listen:
                    uri = FaceUri.parse(text)
                    if uri.scheme == "udp":
                        channel = await self._open_udp(uri)
                        self.bound.append(channel.bound)
                        continue
                    if uri.scheme == "unix" and Path(uri.path).parent == ccn_home():
                        # ccn's own directory (the default socket's) is made if need be; a
                        # socket elsewhere needs its directory to exist (open_listener)
                        ccn_home().mkdir(parents=True, exist_ok=True)
                    listener, bound = await open_listener(uri)
                    self.bound.append(bound)
                    nursery.start_soon(
                        partial(serve, max_frame=self.config.max_frame, say=_say),
                        listener,
                        bound,
                        self._serve_face,
                    )
                if self.config.ndn:
                    from ccn.ndngw import NdnGateway

                    self.ndn = NdnGateway(self, say=_say)
                    uris = [FaceUri.parse(u) for u in self.config.ndn]
                    self.bound_ndn = await nursery.start(self.ndn.run, uris)
                for prefix, route_uri in self.config.routes:
                    if is_own_address(FaceUri.parse(route_uri), self.bound):
                        raise ConfigError(f"route {prefix}: {own_address_error(route_uri)}")
                    self.links.configure(prefix, route_uri)
                nursery.start_soon(self._timer_loop)
                nursery.start_soon(self.cache_feed.run)
                nursery.start_soon(self.management.maintenance.auto_merge)
                if self.config.discovery:
                    from ccn.discovery import Discovery

                    self.discovery = Discovery(self, port=self.config.multicast_port, say=_say)
                    await nursery.start(self.discovery.run)
                await self.links.start()
                task_status.started(list(self.bound))
                started = True
        finally:
            self._save_cache()
            self.store.close()
            self.seen.close()
            self.cache.close()
            if not started:
                self._new_store.undo()

    async def _serve_face(self, face: Face, deliver: Deliver | None = None) -> None:
        """Run ``face`` as one of the node's until it closes; what it receives goes to
        ``deliver`` (default :meth:`receive`; one that wraps it, as discovery's does to know
        which multicast face a hello came in on)."""
        refused = self._refusal(face)
        if refused:
            self.drops[refused] += 1
            face.close()
            await face.run(self.receive)  # returns at once, closing the stream
            return
        self._attach(face)
        try:
            await face.run(self.receive if deliver is None else deliver)
        finally:
            self._detach(face)

    def _refusal(self, face: Face) -> str:
        """The drop counter that refuses ``face`` (its peer host's share, or its pool, is full
        and no silent face there gives way), or "" to let it in."""
        host = face.peer_host
        if (
            host is not None
            and self._faces_of(host) >= self.config.max_faces_per_host
            and not self._evict_silent(local=False, host=host)
        ):
            return "faces_per_host"
        if self._external_faces(local=face.local) >= self.config.max_faces and not (
            self._evict_silent(local=face.local)
        ):
            return "faces_refused"
        return ""

    def _evict_silent(self, *, local: bool, host: str | None = None) -> bool:
        """Make room in a full pool (with ``host``: in that peer host's share of the network
        pool): close the face, opened by its peer, that has been silent longest (no valid
        packet yet, for at least SILENT_GRACE seconds). Silent connections then cannot keep
        newcomers out, and an idle link has nothing to fear while there is room. False if there
        is no such face."""
        since = trio.current_time() - SILENT_GRACE
        # self.faces is in the order faces were attached: the first match is the oldest.
        victim = next(
            (
                f
                for f in self.faces.values()
                if f.local == local
                and f.opened_by_peer
                and (host is None or f.peer_host == host)
                and f.counters.in_interests + f.counters.in_data + f.counters.in_nacks == 0
                and self._attached_at[f.id] <= since
            ),
            None,
        )
        if victim is None:
            return False
        self.drops["silent_faces"] += 1
        victim.close()
        self._detach(victim)
        return True

    def _attach(self, face: Face) -> None:
        self.faces[face.id] = face
        self._attached_at[face.id] = trio.current_time()
        self.process(FaceUp(face.id, face.local))

    def _detach(self, face: Face) -> None:
        face.close()
        self._attached_at.pop(face.id, None)
        if self.faces.pop(face.id, None) is not None:
            self.drops["malformed"] += face.counters.malformed
            self.drops["queue_full"] += face.counters.dropped
            self.drops["late_answers"] += face.counters.late
            self.process(FaceDown(face.id))

    def _external_faces(self, *, local: bool | None = None) -> int:
        """Faces to other processes; with ``local``, only those on this host (apps, over the
        Unix socket or loopback) or only those on the network. Each of the two is bounded by
        ``max_faces`` on its own, so peers on the network cannot take every slot from apps."""
        return sum(
            1
            for f in self.faces.values()
            if not isinstance(f, InternalFace) and (local is None or f.local == local)
        )

    def _faces_of(self, host: str) -> int:
        """Faces that peers at network address ``host`` opened (see ``max_faces_per_host``)."""
        return sum(1 for f in self.faces.values() if f.peer_host == host)

    # -- the core --------------------------------------------------------------------------

    def receive(self, face: Face, packet: Packet) -> None:
        """A face delivered a packet (the face has counted it)."""
        # The Interest case inline: it is most of the traffic, and a layer less per packet.
        if type(packet) is Interest:
            if not self._busy:
                # A digest Interest the CS answers: no event, no actions (see answer_from_cs).
                data = self.forwarder.answer_from_cs(face.id, packet, self._now())
                if data is not None:
                    face.send(data)
                    return
            self.process(InterestIn(face.id, packet))
            return
        if type(packet) is Data and (self.anchors or self.refused) and not self._trusted(packet):
            # Refused, not just dropped: the Interests it answers hear "refused" from this
            # upstream (another next hop is tried, or the consumer is told why) instead of
            # waiting out their lifetime as if nothing had come.
            self.drops["untrusted"] += 1
            self.process(DataRefused(face.id, packet))
            return
        self._dispatch_in(face.id, packet)

    def _now(self) -> float:
        read = self._read_clock
        if read is None:
            read = self._read_clock = trio.lowlevel.current_clock().current_time
        return read()

    def _trusted(self, data: Data) -> bool:
        """False for a version record under an anchored prefix that is not one validly signed
        by a key of that prefix, for exactly the name it came under: such Data is dropped before
        the forwarder sees it, so it is neither cached nor forwarded."""
        name = data.name
        if name.version is None:
            return True
        if self.refused and self._refused_now(data.digest):
            return False
        if self.anchors.covering(name) is None:
            return True
        version = _version_record(data)
        if version is None:
            return False
        try:
            self.anchors.check(version)
        except UntrustedVersion:
            return False
        return True

    def refuse(self, name: Name, vid: bytes) -> None:
        """A local client refused the version record ``vid`` it got for ``name`` (``/n/vN``):
        its trust file rejects it. For :data:`REFUSED_FOR` this node refuses it as it refuses
        what its own anchors reject (the Interests it answers take it as a ``refused`` Nack from
        its upstream, which lets the strategy ask another next hop), and no longer answers with
        it from the CS or the versions it has seen; so the client's next request for the latest
        version gets past it. At most :data:`REFUSED_KEPT` are kept, the oldest go first."""
        refused = self.refused
        refused[vid] = trio.current_time() + REFUSED_FOR
        refused.move_to_end(vid)
        while len(refused) > REFUSED_KEPT:
            refused.popitem(last=False)
        cs = self.forwarder.cs
        cached = cs.get_by_digest(vid)
        if cached is not None and cached.name == name:
            cs.erase(name)

    def _refused_now(self, vid: bytes) -> bool:
        until = self.refused.get(vid)
        if until is None:
            return False
        if until <= trio.current_time():
            del self.refused[vid]
            return False
        return True

    def inject(self, face_id: int, packet: Packet) -> None:
        """An internal face (producer, management) answers."""
        face = self.faces.get(face_id)
        if face is not None:
            face.counters.count_in(packet)
        self._dispatch_in(face_id, packet)

    def _dispatch_in(self, face_id: int, packet: Packet) -> None:
        if type(packet) is Interest:
            self.process(InterestIn(face_id, packet))
        elif type(packet) is Data:
            self.process(DataIn(face_id, packet))
        else:
            self.process(NackIn(face_id, packet))  # type: ignore[arg-type]

    def process(self, event: Event) -> None:
        queue = self._queue
        queue.append(event)
        if self._busy:
            return
        self._busy = True
        forwarder = self.forwarder
        epoch = forwarder.timer_epoch
        try:
            handle = forwarder.handle
            fw_counters = forwarder.counters
            in_cs = forwarder.cs.get_by_digest
            # One clock reading per burst: what one packet sets off is processed at once.
            now = self._now()
            while queue:
                event = queue.popleft()
                if type(event) is InterestIn:
                    interest = event.interest
                    digest = interest.digest
                    if digest is not None:
                        if in_cs(digest) is None:
                            self._from_storage(digest, now)
                    elif self.seen and not interest.must_be_fresh:
                        self._from_seen(interest, now)
                    no_route = fw_counters.no_route
                    actions = handle(event, now)
                    if fw_counters.no_route != no_route and event is not self._retrying:
                        # A configured neighbour that is down may have a route: the Interest
                        # waits for its dial instead.
                        actions = self._hold_nacks(actions, orphans=False)
                    self._send(actions)
                    continue
                if type(event) is DataIn:
                    satisfied = fw_counters.satisfied
                    actions = handle(event, now)
                    data = event.data
                    if data.is_nameless:
                        if fw_counters.satisfied == satisfied:
                            self._late_to_cache(data)
                    elif fw_counters.satisfied != satisfied:
                        self._remember_version(event.face_id, data)
                    self._send(actions)
                    continue
                actions = handle(event, now)
                if type(event) is FaceDown and actions:
                    actions = self._hold_nacks(actions, orphans=True)
                self._send(actions)
            evicted = forwarder.cs.evicted
            if evicted:
                self._spill(evicted)
        finally:
            self._busy = False
        if forwarder.timer_epoch != epoch:
            deadline = forwarder.next_deadline()
            if deadline is not None and deadline < self._sleeping_until:
                self._timer_wake.set()

    def _hold_nacks(self, actions: list[Action], *, orphans: bool) -> list[Action]:
        """``actions`` without the "no route" Nacks whose Interests a down neighbour's dial now
        waits for (:meth:`Neighbours.hold <ccn.neighbours.Neighbours.hold>`). The forwarder
        counted each Nack (and, for an Interest that had just arrived, its "no route"): that is
        taken back here, and the Interest is counted by what happens to it when it comes back
        (:meth:`retry_held`).

        ``orphans``: a connection closed under these Interests, forwarded on it and unanswered,
        with no other next hop left (``FaceDown``). If it was a configured neighbour's, the dial
        is tried again and again for :data:`ccn.neighbours.HOLD_WAIT` (most likely a producer
        restarting). Their nonces went into the dead-nonce list with their PIT entries: sent
        again by this node, they are no loop. (A UDP neighbour found unreachable has been probed
        in vain for a second already: its Interests are not held.)"""
        if not self.links.table:
            return actions
        kept: list[Action] = []
        forwarder = self.forwarder
        held = 0
        for action in actions:
            if type(action) is SendNack and action.nack.reason is NackReason.NO_ROUTE:
                interest = action.nack.interest
                if self.links.hold(action.face_id, interest, orphan=orphans):
                    held += 1
                    if orphans:
                        forwarder.dnl.discard(interest.name, interest.digest, interest.nonce)
                    continue
            kept.append(action)
        counters = forwarder.counters
        counters.out_nacks -= held
        if not orphans:  # (a closed upstream's Nacks count as upstream_down, which stays)
            counters.no_route -= held
        return kept

    def retry_held(self, face_id: int, interest: Interest) -> None:
        """An Interest held by :meth:`_hold_nacks` goes to the forwarder again, now that the
        dial it waited for is over: forwarded if the neighbour is back, else Nacked "no route"
        (it is not held twice)."""
        if face_id not in self.faces:
            return  # its downstream is gone
        event = InterestIn(face_id, interest)
        counters = self.forwarder.counters
        arrived, missed = counters.in_interests, counters.cs_misses
        self._retrying = event
        try:
            self.process(event)
        finally:
            self._retrying = None
        # One Interest, counted in once (when it came) and missed in the CS once (then): not
        # again now. What it leads to now (out_interests, or no_route and out_nacks) is its
        # own, once. (A CS hit now, for Data that came meanwhile, is counted as a hit.)
        counters.in_interests -= min(1, counters.in_interests - arrived)
        counters.cs_misses -= min(1, counters.cs_misses - missed)

    def _send(self, actions: list[Action]) -> None:
        faces = self.faces
        for action in actions:
            face = faces.get(action.face_id)
            if face is None:
                continue
            if type(action) is SendData:
                face.send(action.data)
            elif type(action) is SendInterest:
                face.send(action.interest)
                digest = action.interest.digest
                if digest is not None:
                    asked = self._asked
                    asked[digest] = None
                    if len(asked) > ASKED_MAX:
                        asked.popitem(last=False)
            elif type(action) is SendNack:
                face.send(action.nack)

    # -- the store and cache tier behind the CS ----------------------------------------------

    def _from_storage(self, digest: bytes, now: float) -> None:
        """On a CS miss for ``digest``, put the object into the CS from the main store or the
        cache tier, so the forwarder answers it as a CS hit (scope and loop rules still apply).
        ``known`` is a set lookup; only an actual hit reads a file."""
        cs = self.forwarder.cs
        if cs.get_by_digest(digest) is not None:
            return
        raw: bytes | None = None
        if self.store.known(digest):
            try:
                raw = self.store.get(digest)
            except (ObjectNotFound, CorruptObject):
                return
            self.store_served[0] += 1
            self.store_served[1] += len(raw)
            # Published objects answered from the store are this node producing its content:
            # the producer counters say so, whichever path (CS or producer face) served them.
            pc = self.producer.counters
            pc.interests += 1
            pc.data += 1
            pc.bytes += len(raw)
        else:
            raw = self._cached_copy(digest)
        if raw is not None:
            data = Data(ROOT, raw, 0, digest)
            if not cs.insert(data, now):
                cs.pass_on(data)  # larger than the whole CS: it answers this Interest only

    def _from_seen(self, interest: Interest, now: float) -> None:
        """Put into the CS the version record that answers ``interest`` (``/n/vN``, or ``/n``
        with can-be-prefix: the newest seen) from the versions this node saw pass, if the cache
        tier still holds its object. Only Interests that do not ask for fresh Data come here: a
        consumer whose must-be-fresh "latest" Interest found no producer asks again without it
        (ccn/fetch.py), and is answered by the nearest node that has seen a version."""
        name = interest.name
        number = name.version
        latest = number is None
        if number is not None:
            name = name.unversioned()
            vid = self.seen.get(name, number)
            candidates: Iterable[tuple[int, bytes]] = [] if vid is None else [(number, vid)]
        elif interest.can_be_prefix:
            candidates = self.seen.newest_first(name)
        else:
            return
        # What was seen before the node had its anchors (or other ones) is checked again:
        # it did not pass receive()'s check on its way in.
        anchored = bool(self.anchors) and self.anchors.covering(name) is not None
        for number, vid in candidates:
            if self.refused and self._refused_now(vid):
                continue
            raw = self._copy_of(vid)
            if raw is None:
                continue
            data = Data(name.with_version(number), raw, VERSION_FRESHNESS_MS, vid)
            if anchored and not self._trusted_seen(vid, data):
                continue
            if latest and not self._holds_whole(vid, raw, now):
                continue
            self.forwarder.cs.insert(data, now)
            return

    def _seen_pins(self) -> None:
        """Count the versions pinned from elsewhere as seen: a pin records the version's id,
        and its objects are in the main store. A store made before the seen-versions log
        existed (ccn before e6f2f2a) has such pins and no log, and a log may have lost an
        entry (its bound, a full disk); without this the node would not answer for a version
        it keeps. A pins file that cannot be read is left to gc and fsck to report."""
        with contextlib.suppress(StoreError, OSError):
            for pin in self.refs.pins():
                if pin.id is not None and pin.number is not None:
                    self.seen.record(pin.name, pin.number, pin.id)

    def _trusted_seen(self, vid: bytes, data: Data) -> bool:
        """:meth:`_trusted` for a seen version record; the verdict is kept (``vid`` names the
        record's bytes and the anchors do not change while the node runs), so a flood of
        Interests costs no signature check each."""
        verdict = self._seen_trusted.get(vid)
        if verdict is None:
            verdict = self._seen_trusted[vid] = self._trusted(data)
            while len(self._seen_trusted) > WHOLE_VERDICTS_KEPT:
                self._seen_trusted.popitem(last=False)
        return verdict

    def _holds_whole(self, vid: bytes, raw: bytes, now: float) -> bool:
        """Whether this node holds every object of version ``vid`` (record ``raw``): "the newest
        version" must be one the consumer can then fetch, not one whose fetch broke off. The
        verdict is kept for LATEST_FRESHNESS_MS (a walk per Interest would be a flood's lever)."""
        kept = self._whole.get(vid)
        if kept is not None and kept[1] > now:
            return kept[0]
        whole = self._walk_whole(raw)
        self._whole[vid] = (whole, now + LATEST_FRESHNESS_MS / 1000)
        while len(self._whole) > WHOLE_VERDICTS_KEPT:
            self._whole.popitem(last=False)
        return whole

    def _walk_whole(self, raw: bytes) -> bool:
        stack = _children_of(raw)
        seen: set[bytes] = set()
        while stack:
            oid, kind = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            if len(seen) > WHOLE_CHECK_MAX_OBJECTS:
                return False
            if kind is Kind.BLOB:
                if not self._has_copy(oid):
                    return False
                continue
            inner = self._copy_of(oid)
            if inner is None:
                return False
            stack.extend(_children_of(inner))
        return True

    def _has_copy(self, digest: bytes) -> bool:
        return (
            self.forwarder.cs.get_by_digest(digest) is not None
            or self.cache.known(digest)
            or self.store.known(digest)
            or self.cache_feed.pending(digest) is not None
        )

    def _copy_of(self, digest: bytes) -> bytes | None:
        """The object ``digest`` from the CS, the cache tier or the main store (a pinned
        version), if any holds it."""
        data = self.forwarder.cs.get_by_digest(digest)
        if data is not None:
            return data.content
        if self.store.known(digest):
            with contextlib.suppress(ObjectNotFound, CorruptObject):  # else: a cached copy
                return self.store.get(digest)
        return self._cached_copy(digest)

    def _cached_copy(self, digest: bytes) -> bytes | None:
        """The object ``digest`` from the cache tier, or from the feeder's queue on its way
        there."""
        if self.cache.known(digest):
            return self.cache.get(digest)
        return self.cache_feed.pending(digest)

    def _remember_version(self, face_id: int, data: Data) -> None:
        """A named Data that answered this node's Interest: if it is a version record of a name
        published elsewhere, remember its name and number (:attr:`seen`) and keep its object
        in the cache tier, so that the node can answer for it when no producer can."""
        name = data.name
        number = name.version
        if number is None or face_id == self.producer.face.id or _version_record(data) is None:
            return
        if self.seen.record(name.unversioned(), number, data.digest):
            self._offer(data)

    def _spill(self, evicted: list[Data]) -> None:
        """Nameless Data leaving the in-memory CS go to the cache tier (a victim cache behind
        it). They are verified: the forwarder caches nameless Data only when its digest matched
        a PIT entry, and what came from the store or the tier is skipped (the feeder skips
        what the tier holds)."""
        for data in evicted:
            if data.is_nameless:
                self._offer(data)
        evicted.clear()

    def _late_to_cache(self, data: Data) -> None:
        """Nameless Data that came too late for its PIT entry is kept (it never enters the CS)
        if its digest (= blake3 of its bytes) is one this node asked for; unsolicited Data is
        not."""
        digest = data.digest
        if digest not in self._asked:
            return
        del self._asked[digest]
        self._offer(data)

    def _offer(self, data: Data) -> None:
        """Queue ``data``'s content for the cache tier, unless the main store has it. Its id is
        ``data.digest``: blake3 of the content, whatever the Data's name."""
        if not self.store.known(data.digest):
            self.cache_feed.offer(data.digest, data.content)

    def _save_cache(self) -> None:
        """At exit, what only memory holds goes to the cache tier: the feeder's queue, then the
        CS's nameless Data, most recently used first, for at most :data:`SAVE_AT_EXIT_S`."""
        deadline = time.perf_counter() + SAVE_AT_EXIT_S
        queued = self.cache_feed.take_all()
        in_cs = ((d.digest, d.content) for d in self.forwarder.cs.nameless_recent_first())
        unsaved = (
            (oid, raw)
            for oid, raw in itertools.chain(queued, in_cs)
            if not (self.store.known(oid) or self.cache.known(oid))
        )
        try:
            for batch in batches(unsaved, SAVE_BATCH_BYTES):
                self.cache.add_many(batch, ids_verified=True)
                if time.perf_counter() >= deadline:
                    return
        except (OSError, StoreError):
            pass  # a cache that cannot be written loses only what it would have cached

    async def _timer_loop(self) -> None:
        """Tick the core at its next deadline; woken early only if that deadline moves up."""
        while True:
            now = trio.current_time()
            deadline = self.forwarder.next_deadline()
            until = now + MAX_TICK_INTERVAL
            if deadline is not None:
                until = min(until, deadline)
            self._sleeping_until = until
            with trio.move_on_at(until):
                await self._timer_wake.wait()
            self._timer_wake = trio.Event()
            if trio.current_time() >= until:
                self.process(Tick())

    # -- routes and neighbours -------------------------------------------------------------

    async def _open_udp(self, uri: FaceUri) -> UdpChannel:
        channel = await UdpChannel.open(uri)
        channel.say = _say
        await self.nursery.start(channel.run, self._serve_face)
        self.udp_channels.append(channel)
        return channel

    async def udp_channel(self, family: int = socket.AF_INET) -> UdpChannel:
        """A running UDP channel of ``family``: the first ``udp://`` listener, else one opened
        on an ephemeral port."""
        for channel in self.udp_channels:
            if channel.family == family:
                return channel
        host = "::" if family == socket.AF_INET6 else "0.0.0.0"
        return await self._open_udp(FaceUri("udp", host=host, port=0))

    @property
    def neighbours(self) -> dict[str, Neighbour]:
        """Configured neighbours by URI (see ccn/neighbours.py)."""
        return self.links.table

    def unreachable(self) -> list[str]:
        """Why each configured neighbour that is not connected is not (its last dial error)."""
        return self.links.unreachable()

    async def add_route(self, prefix: Name, uri: str, cost: int = 0) -> None:
        """Route ``prefix`` to the neighbour at ``uri``, dialling it if needed."""
        await self.links.add_route(prefix, uri, cost)

    def remove_route(self, prefix: Name, face_spec: str) -> int:
        """Remove routes for ``prefix`` via a face id or neighbour uri; return how many."""
        removed = self.links.remove_route(prefix, face_spec)
        if not removed and face_spec.isdigit() and int(face_spec) in self.faces:
            with contextlib.suppress(KeyError, ValueError):
                if self.forwarder.remove_route(prefix, int(face_spec)):
                    removed = 1
        return removed

    def _route_to_producer(self, name: Name) -> None:
        # The node's own names are as many as its store holds: not counted against the FIB's
        # bound, which is there for routes others add (a node with more published names than
        # that could not start, and every route added later failed).
        self.forwarder.add_route(name, self.producer.face.id, 0, bounded=False)

    def on_published(self, name: Name) -> None:
        self._route_to_producer(name)
        self.management.maintenance.published()  # one more pack: merge if due
        if self.discovery is not None:
            self.discovery.poke()  # announce the new prefix now

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        fw = self.forwarder.status(max_routes=STATUS_MAX_ROUTES)
        stats = self.store.stats()
        p = self.producer.counters
        faces = list(self.faces.values())
        fib, fib_total = self._fib_with_origins(fw["fib"]), len(self.forwarder.fib)
        return {
            "listen": [str(b) for b in self.bound],
            "ndn": [str(b) for b in self.bound_ndn],
            # Listed up to a bound, so that the reply stays one packet (≤ 1 MiB) whatever
            # the tables hold; the totals say how many there are.
            "faces": [f.info() for f in faces[:STATUS_MAX_FACES]],
            "faces_total": len(faces),
            "fib": fib,
            "fib_total": fib_total,
            "down_routes": self.down_routes(),
            "pit": fw["pit"],
            "cs": fw["cs"],
            "forwarder": fw.get("counters", {}),
            "producer": {
                "interests": p.interests,
                "data": p.data,
                "nacks": p.nacks,
                "bytes": p.bytes,
            },
            "store": {
                "objects": stats.objects,
                "bytes": stats.bytes,
                "packs": len(self.store.packs()),
                "loose": self.store.loose_count(),
                # what the node's own merges of small packs did (ccn/maintenance.py)
                "auto_merge": self.management.maintenance.merges
                | {"at": self.config.auto_merge, "age": self.config.auto_merge_age},
                "served": self.store_served[0],
                "served_bytes": self.store_served[1],
            },
            "cache": self.cache.status()
            | {"versions": len(self.seen), "versions_write_errors": self.seen.write_errors},
            # version records a local client refused (the `refuse` command), refused for now
            "refused_versions": len(self.refused),
            "drops": self._drops(),
            "limits": self.limits(),
            "discovery": None if self.discovery is None else self.discovery.status(),
        }

    def routes(
        self, under: Name | None = None, after: Name | None = None
    ) -> tuple[list[dict[str, Any]], int | None, bool]:
        """FIB entries with the origins of their next hops: those under ``under`` (all if
        None) that come after ``after`` in name order (None: from the first), at most
        STATUS_MAX_ROUTES of them (a reply is one packet); how many are under ``under`` in
        all, on the first page only (None after it: counting them walks the subtree, and
        did so for every page of ``route list``); and whether more come after these (ask
        again after the last one)."""
        fib = self.forwarder.routes(under, STATUS_MAX_ROUTES + 1, after)
        more = len(fib) > STATUS_MAX_ROUTES
        fib = self._fib_with_origins(fib[:STATUS_MAX_ROUTES])
        return fib, self.forwarder.fib.count(under) if after is None else None, more

    def down_routes(self, under: Name | None = None) -> list[dict[str, Any]]:
        """Configured routes (under ``under``) whose neighbour is not connected, so not in the
        FIB: ``{"prefix", "uri", "error"}`` each (the last dial error, "" before the first)."""
        return self.links.down_routes(under)[:STATUS_MAX_ROUTES]

    def _fib_with_origins(self, fib: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each next hop with where its route came from (``origin``)."""
        static = self.links.origins()
        for entry in fib:
            prefix = entry["prefix"]
            for hop in entry["nexthops"]:
                face = hop["face"]
                origin = static.get((prefix, face))
                if origin is None and self.discovery is not None:
                    origin = self.discovery.origin(Name.parse(prefix), face)
                if origin is None:
                    if face == self.producer.face.id:
                        origin = "producer"
                    elif face == self.management.face.id:
                        origin = "management"
                    elif self.discovery is not None and face == self.discovery.face.id:
                        origin = "discovery"
                    elif self._registered_by_ndn_app(prefix, face):
                        origin = "ndn app"
                    else:
                        origin = "manual"
                hop["origin"] = origin
        return fib

    def _registered_by_ndn_app(self, prefix: str, face_id: int) -> bool:
        """Whether an NDN app on ``face_id`` registered ``prefix`` (NFD rib/register)."""
        if self.ndn is None:
            return False
        from ccn.faces.ndn import NdnFace

        face = self.faces.get(face_id)
        return isinstance(face, NdnFace) and Name.parse(prefix) in face.registered

    def _drops(self) -> dict[str, int]:
        out = dict(self.drops)
        for f in self.faces.values():
            out["malformed"] += f.counters.malformed
            out["queue_full"] += f.counters.dropped
            out["late_answers"] += f.counters.late
        # datagrams from strangers that open no face, and datagrams the kernel refused
        out["udp_dropped"] = sum(ch.dropped for ch in self.udp_channels)
        # datagrams that came back as ICMP errors: nothing listens at the peer's address
        out["udp_unreachable"] = sum(ch.unreachable for ch in self.udp_channels)
        fw = self.forwarder.counters
        out["congestion_nacks"] = fw.congestion
        out["unsolicited_data"] = fw.unsolicited_data
        out["scope_violations"] = fw.scope_violations
        # Interests Nacked "no route" at once, not held for a dial: too many were waiting
        out["held_overflow"] = self.links.held_overflow
        # Interests held for a dial whose own lifetime ended before it was over: not forwarded
        out["held_expired"] = self.links.held_expired
        # NDN segment requests Nacked "congestion": their face had the most the gateway serves
        out["ndn_busy"] = 0 if self.ndn is None else self.ndn.refused_busy
        return out

    def limits(self) -> dict[str, int]:
        """Every bound the node enforces, as configured (docs/limits.md)."""
        c = self.config
        fc = self.forwarder.config
        return {
            "max_packet": MAX_PACKET_SIZE,
            "max_object": MAX_OBJECT_SIZE,
            "max_frame": c.max_frame,
            "reassembly_per_face": c.max_frame + HEADER_SIZE + RECEIVE_SIZE,
            "send_queue_packets": DEFAULT_QUEUE_PACKETS,
            "send_queue_bytes": DEFAULT_QUEUE_BYTES,
            "read_quantum_us": int(READ_QUANTUM * 1e6),
            "max_faces": c.max_faces,
            "max_faces_per_host": c.max_faces_per_host,
            "faces": self._external_faces(),
            "local_faces": self._external_faces(local=True),
            "network_faces": self._external_faces(local=False),
            "pit_max_entries": fc.pit_max_entries,
            "pit_max_per_face": fc.pit_max_per_face,
            "cs_bytes": fc.cs_max_bytes,
            "cs_max_entries": fc.cs_max_entries,
            "fib_max_entries": fc.fib_max_entries,
            "dnl_max_entries": fc.dnl_max_entries,
            "cache_bytes": c.cache_bytes,
            "cache_max_entries": c.cache_max_entries,
            "seen_versions": self.seen.max_entries,
            "trust_anchors": len(self.anchors),
            "refused_versions": REFUSED_KEPT,
            "held_interests_max": MAX_HELD,
        }
