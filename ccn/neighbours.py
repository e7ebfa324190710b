"""Configured neighbours: the next hops of ``--route`` and ``route add``, kept connected.

Each neighbour is dialled by its own task and dialled again whenever the connection drops or a
dial fails (after :data:`REDIAL_DELAY`, doubling to :data:`MAX_REDIAL_DELAY`); while it is
connected its routes are in the FIB, and while it is down they are kept here (``route list``
shows them as down, with the last dial error). The node's stderr says when a neighbour goes down
and when it is back. A neighbour that accepts the connection but sends what is not ccn (another
packet format version: an older or newer ccn) is told once, shown as down with that reason, and
dialled with the same back-off as one that refuses; its routes go back in only once a new
connection has shown it speaks ccn (:meth:`Neighbours._run_once_heard`).

An Interest the forwarder finds no route for, whose name is under a route of a neighbour that is
down, does not get its "no route" Nack at once: the node dials that neighbour now, cutting its
back-off short (:meth:`Neighbours.hold`), and keeps the Interest until the dial has succeeded or
failed (at most :data:`HOLD_WAIT`), then hands it to the forwarder again: forwarded if the
neighbour is back, Nacked "no route" if not. So a producer that restarts is used as soon as it
listens again, not after the rest of a back-off of up to 5 s, while a neighbour that refuses the
connection still makes a request fail at once. Interests waiting for one neighbour share one
dial, which starts at least :data:`DIAL_NOW_SPACING` after the neighbour's previous dial ended
(a producer may be back a moment after a failed dial, so a recent failure is not taken as the
answer), except that a dial made for waiting Interests that failed is the answer for
:data:`HELD_FAILURE_STANDS` (so one ``ccn get``, which asks twice, dials once); at most
:data:`MAX_HELD` Interests wait at once (the next are Nacked at once, counted
in ``drops.held_overflow``). The decision is made here, not in the sans-IO forwarder: the node
sees the forwarder's "no route" (its ``no_route`` counter moved while it handled the Interest)
and asks :meth:`Neighbours.hold` before the Nack goes out.

UDP has no connection: a ``udp://`` neighbour is *up* only once it has answered a probe
(:meth:`ccn.faces.udp.UdpFace.probe`: a packet that decodes comes back), and *down* from the
moment it does not: the kernel reports it unreachable (an ICMP error, see ccn/faces/udp.py),
or it stays silent (a firewall that drops datagrams and sends no ICMP error), or what it sends
is not this ccn (told once, as for TCP). While up it is watched cheaply
(:meth:`Neighbours._probe_due`): it is probed when it has sent nothing for
:data:`LIVENESS_INTERVAL` while this node sent it Interests, or for :data:`IDLE_PROBE` at all,
and an unanswered probe takes it down: its routes leave the FIB, and the Interests sent to it
that it has not answered are tried elsewhere or Nacked "no route" at once (the forwarder's
``FaceUnreachable``; a TCP neighbour's closed connection does the same through ``FaceDown``).
While down it is probed at the same intervals as TCP's dials, and an Interest held for it has
it probed at once (the probe is its dial).

A ``tcp://`` or ``unix://`` neighbour is up once connected, and watched the same way over its
connection (:meth:`Neighbours._carry`): a probe it leaves unanswered closes the connection
(a stopped process or a host gone keeps it open for many minutes), and after that a new
connection carries its routes only once a probe on it has been answered.

Discovery's neighbours are ccn/discovery.py's, and Interests are not held for them: there is no
address to dial (a node that comes back has a new id, often a new port, and announces itself
by hello at start, faster than a dial could find it), and one is dropped only after 3.5 s
without a hello, so a second more would rarely bring it back (docs/lan.md).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from ccn.errors import ConnectError
from ccn.faces.base import Face
from ccn.faces.liveness import heard, probe_stream
from ccn.faces.stream import StreamFace
from ccn.faces.transport import dial
from ccn.faces.udp import UdpFace
from ccn.faces.uri import FaceUri
from ccn.fw.actions import FaceUnreachable
from ccn.mgmt import CommandFailed
from ccn.name import Name
from ccn.packet import Interest

if TYPE_CHECKING:
    from ccn.node import Node

#: How long a node's start waits for its neighbours' first dials (each: until it succeeds or
#: fails); one that is not up by then keeps being dialled in the background.
INITIAL_DIAL_WAIT = 2.0
REDIAL_DELAY = 0.5
MAX_REDIAL_DELAY = 5.0
#: How a stream face's close reason starts when the peer sent what is not ccn (ccn/faces/stream.py).
NOT_CCN = "not a ccn stream: "
#: How it starts when this node closed it because the peer left a probe unanswered.
SILENT = "silent: "
#: How long ``route add`` waits for the dial it starts.
ROUTE_ADD_WAIT = 3.0
#: How long a ``udp://`` neighbour's probe waits for an answer or an ICMP error.
PROBE_WAIT = 1.0
#: A ``udp://`` neighbour that is up and has sent nothing for this long while this node sent
#: it Interests is probed (checked at this interval: a peer that vanished behind a firewall is
#: down within about LIVENESS_INTERVAL + PROBE_WAIT of the first Interest it leaves unanswered).
LIVENESS_INTERVAL = 1.0
#: ... and one silent this long while nothing was sent to it either: a peer that vanished is
#: noticed before a request needs it, for one datagram each way per neighbour at most this often.
IDLE_PROBE = 10.0
#: How long an Interest that found no route waits for the dial of a down neighbour with a route
#: for it (see :meth:`Neighbours.hold`) before it is handed to the forwarder again.
HOLD_WAIT = 1.0
#: How many such Interests wait at once, node-wide; the next are Nacked "no route" at once.
MAX_HELD = 1024
#: A dial for waiting Interests starts at least this long after the neighbour's previous dial
#: ended: a flood of Interests dials a neighbour that refuses at most ten times a second.
DIAL_NOW_SPACING = 0.1
#: A dial made for waiting Interests that failed stands as the answer this long: an Interest for
#: the same neighbour in that time is Nacked "no route" at once, not held for another dial. A
#: ``ccn get`` sends a second Interest right after a "no route" (it asks again for the newest
#: version a node on the way has seen), which dialled a neighbour that refuses twice per get.
HELD_FAILURE_STANDS = 0.5


@dataclass
class Neighbour:
    """A configured next hop: dialled, and re-dialled whenever the connection drops."""

    uri: FaceUri
    prefixes: dict[Name, int] = field(default_factory=dict)
    #: The face its routes go through; None while it is down.
    face: Face | None = None
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)
    #: Why the last dial failed ("" once connected).
    error: str = ""
    #: Set while the peer closes every connection by sending what is not ccn (another packet
    #: format version: an older or newer ccn, or not ccn): told once, not at every redial.
    incompatible: bool = False
    #: Set once a ``tcp://`` peer left a probe unanswered (a stopped process, a host gone, a
    #: listener that is not ccn): its routes go back in only once a connection is answered.
    silent: bool = False
    #: Whether its going down and coming back are told on stderr: a configured neighbour, or
    #: one a ``route add`` succeeded for (a failed ``route add`` is told to its client).
    reported: bool = False
    #: Set when the dial in progress (or, between dials, the next one) has succeeded or failed,
    #: then replaced by a fresh event for the dial after it.
    attempt: trio.Event = field(default_factory=trio.Event)
    #: When (trio time) the last dial succeeded or failed.
    attempted_at: float = float("-inf")
    #: When (trio time) a dial made for waiting Interests last failed (see HELD_FAILURE_STANDS).
    held_failed_at: float = float("-inf")
    _pause: trio.CancelScope | None = None

    def up(self, face: Face) -> None:
        self.face = face
        self.error = ""
        self._attempted()

    def dial_failed(self, error: str) -> None:
        self.error = error
        self._attempted()

    def _attempted(self) -> None:
        self.attempted_at = trio.current_time()
        self.attempt.set()
        self.attempt = trio.Event()

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before the next dial, unless :meth:`dial_now` cuts it short."""
        with trio.CancelScope() as self._pause:
            await trio.sleep(seconds)
        self._pause = None

    def dial_now(self) -> trio.Event:
        """End the wait before the next dial; return the event set when that dial (or the one in
        progress) has succeeded or failed."""
        if self._pause is not None:
            self._pause.cancel()
        return self.attempt


class Neighbours:
    """The node's configured neighbours, by URI, each kept connected by a task of its own."""

    def __init__(self, node: Node, say: Callable[[str], None]) -> None:
        self.node = node
        self.table: dict[str, Neighbour] = {}
        self._say = say
        #: Interests waiting for dials (see :meth:`hold`), oldest first.
        self._held: list[_Held] = []
        #: URIs of the neighbours whose dial waiting Interests are waiting for.
        self._dialling: set[str] = set()
        #: ... of those, the ones dialled again and again (see ``orphan`` in :meth:`hold`).
        self._redialling: set[str] = set()
        #: Interests held so far, those Nacked at once because MAX_HELD were waiting, and
        #: those dropped when their dial was over because their own lifetime had ended.
        self.held = 0
        self.held_overflow = 0
        self.held_expired = 0

    def configure(self, prefix: Name, uri: str) -> None:
        """A route from the configuration; its neighbour is dialled by :meth:`start`."""
        nb = self._get(FaceUri.parse(uri))
        nb.prefixes[prefix] = 0
        nb.reported = True

    async def start(self) -> None:
        """Dial every configured neighbour; return when each first dial has succeeded or failed
        (at most :data:`INITIAL_DIAL_WAIT`), so the first request after start has its routes."""
        first_dials = [nb.attempt for nb in self.table.values()]
        for nb in self.table.values():
            self.node.nursery.start_soon(self._maintain, nb)
        with trio.move_on_after(INITIAL_DIAL_WAIT):
            for dialled in first_dials:
                await dialled.wait()

    def _get(self, uri: FaceUri) -> Neighbour:
        nb = self.table.get(str(uri))
        if nb is None:
            nb = self.table[str(uri)] = Neighbour(uri)
        return nb

    # -- keeping them connected ------------------------------------------------------------

    async def _maintain(self, nb: Neighbour) -> None:
        if nb.uri.scheme == "udp":
            await self._maintain_udp(nb)
            return
        delay = REDIAL_DELAY
        with nb.cancel:
            while nb.prefixes:
                if await self._connection(nb):
                    delay = REDIAL_DELAY  # it was up: the back-off starts over
                    await nb.pause(REDIAL_DELAY)
                else:
                    await nb.pause(delay)
                    delay = min(MAX_REDIAL_DELAY, delay * 2)

    async def _connection(self, nb: Neighbour) -> bool:
        """Dial ``nb`` and carry its routes until the connection ends. False if the dial failed
        or the peer turned out not to speak this ccn (both reported): back off."""
        node = self.node
        try:
            face = await dial(nb.uri)
        except ConnectError as e:
            self._failed(nb, str(e))
            return False
        node._attach(face)
        try:
            await self._carry(nb, face)
        finally:
            nb.face = None
            node._detach(face)
        reason = face.close_reason or ""
        if reason.startswith(NOT_CCN):
            self._incompatible(nb, reason.removeprefix(NOT_CCN))
            return False
        if reason.startswith(SILENT):
            nb.silent = True
            self._failed(nb, f"cannot reach a ccn node at {nb.uri}: {reason.removeprefix(SILENT)}")
            return False
        nb.incompatible = False
        return True

    async def _carry(self, nb: Neighbour, face: StreamFace) -> None:
        """Carry ``nb``'s connection ``face`` until it closes, its routes in the FIB while the
        peer shows signs of life.

        After a connection that closed on what was not ccn, or on silence, the routes go in
        only once the peer has answered a probe (which a ccn node does at once,
        docs/protocol.md §7), not as soon as it accepts the connection: else an Interest held
        for its dial was sent to it and lost with the connection, and waited out its lifetime.
        (A peer that was incompatible and stays silent for :data:`PROBE_WAIT` goes up anyway,
        as before; one that was silent is closed again.) While up it is watched as a UDP
        neighbour is (:meth:`_probe_due`): a connection whose peer leaves a probe unanswered is
        closed, so a stopped process or a host gone without a word (whose connection TCP
        keeps for many minutes) is down within about two seconds of the first Interest it
        leaves unanswered, and what was sent to it is tried elsewhere or Nacked then."""
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                try:
                    await face.run(self.node.receive)
                finally:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            if nb.incompatible or nb.silent:
                answered = await probe_stream(face, PROBE_WAIT)
                if not answered and nb.silent:
                    face.close(f"{SILENT}no answer within {PROBE_WAIT:g} s")
                    return
                nb.silent = False
            if face.closed:
                return
            self._up(nb, face)
            while await self._probe_due(face, None):
                if not await probe_stream(face, PROBE_WAIT):
                    face.close(f"{SILENT}a probe went unanswered for {PROBE_WAIT:g} s")
                    return

    def _incompatible(self, nb: Neighbour, why: str) -> None:
        """``nb`` accepted the connection, then sent what this node cannot decode: said once on
        stderr (the packets are counted as ``malformed``), and shown as its error."""
        error = (
            f"{nb.uri} does not speak this ccn's protocol ({why}): it may run an older or newer "
            "ccn (docs/protocol.md §2), or not be ccn"
        )
        if not nb.incompatible and nb.reported:
            self._say(f"{error}; retrying in the background")
        nb.incompatible = True
        nb.dial_failed(error)

    async def _maintain_udp(self, nb: Neighbour) -> None:
        """A ``udp://`` neighbour: a persistent face, remade if it ever closes."""
        with nb.cancel:
            while nb.prefixes:
                try:
                    family = socket.AF_INET6 if ":" in nb.uri.host else socket.AF_INET
                    channel = await self.node.udp_channel(family)
                    face = channel.face_for(await channel.resolve(nb.uri), persistent=True)
                except ConnectError as e:
                    self._failed(nb, str(e))
                    await nb.pause(MAX_REDIAL_DELAY)
                    continue
                try:
                    await self._watch_udp(nb, face)
                finally:
                    self._down(nb)
                    face.release()
                await nb.pause(REDIAL_DELAY)

    async def _watch_udp(self, nb: Neighbour, face: UdpFace) -> None:
        """Keep ``nb``'s routes in the FIB while its peer answers, out of it from the moment
        it does not (an ICMP error, silence, or what is not ccn); return when ``face`` closes."""
        junk = face.counters.malformed
        answered = await face.probe(PROBE_WAIT)
        delay = REDIAL_DELAY
        while not face.closed:
            if answered is not True:
                self._down(nb)
                if answered is False:
                    why = face.unreachable_error or face.close_reason or "closed"
                    self._failed(nb, f"cannot reach a ccn node at {nb.uri}: {why}")
                elif face.counters.malformed != junk:
                    self._incompatible(nb, face.decode_error)
                else:
                    self._failed(
                        nb,
                        f"cannot reach a ccn node at {nb.uri}: no answer within "
                        f"{PROBE_WAIT:g} s (is a firewall dropping its datagrams?)",
                    )
                junk = face.counters.malformed  # what it sends until the next probe counts
                await nb.pause(delay)
                delay = min(MAX_REDIAL_DELAY, delay * 2)
                answered = await face.probe(PROBE_WAIT)
                continue
            delay = REDIAL_DELAY
            nb.incompatible = False
            self._up(nb, face)
            while answered is True:  # up: until a probe it needs goes unanswered
                if not await self._probe_due(face, face.wait_unreachable):
                    answered = False
                    break
                junk = face.counters.malformed
                answered = await face.probe(PROBE_WAIT)

    async def _probe_due(
        self,
        face: Face,
        alarm: Callable[[], Awaitable[None]] | None,
    ) -> bool:
        """Return True when the peer of ``face`` (up) has sent nothing (no packet that decoded:
        :func:`~ccn.faces.liveness.heard`) for :data:`LIVENESS_INTERVAL` while this node sent
        it Interests, or for :data:`IDLE_PROBE` at all: it is time to probe it. False when
        ``alarm`` returns (a UDP peer's ICMP error), or when the face closes. Costs a wake-up
        per interval and neighbour, no packet."""
        quiet = 0.0
        while not face.closed:
            signs, asked = heard(face), face.counters.out_interests
            with trio.move_on_after(LIVENESS_INTERVAL):
                if alarm is None:
                    await trio.sleep_forever()
                await alarm()
                return False
            if heard(face) != signs:
                quiet = 0.0
                continue
            quiet += LIVENESS_INTERVAL
            if face.counters.out_interests != asked or quiet >= IDLE_PROBE:
                return True
        return False

    def _up(self, nb: Neighbour, face: Face) -> None:
        """``nb`` is connected through ``face``: its routes go into the FIB."""
        for prefix, cost in nb.prefixes.items():
            self.node.forwarder.add_route(prefix, face.id, cost)
        if nb.error and nb.reported and not nb.incompatible:
            self._say(f"{nb.uri} is reachable again")
        nb.up(face)

    def _down(self, nb: Neighbour) -> None:
        """``nb``'s face no longer carries its routes (it is kept to probe the peer), and what
        was sent to it and is still unanswered is taken as its "no route" Nack: tried
        elsewhere, or Nacked downstream now, not left to wait out its lifetime."""
        if nb.face is not None:
            for prefix in nb.prefixes:
                self.node.forwarder.remove_route(prefix, nb.face.id)
            self.node.process(FaceUnreachable(nb.face.id))
            nb.face = None

    def _failed(self, nb: Neighbour, error: str) -> None:
        """A dial (or probe) of ``nb`` failed; said on stderr when it was up until now."""
        if not nb.error and nb.reported:
            self._say(f"{error}; retrying in the background")
        nb.dial_failed(error)

    # -- routes ----------------------------------------------------------------------------

    async def add_route(self, prefix: Name, uri: str, cost: int = 0) -> None:
        """Route ``prefix`` to the neighbour at ``uri``, dialling it if needed; a route whose
        dial fails is not kept (:class:`CommandFailed` says why)."""
        target = FaceUri.parse(uri)
        fresh = str(target) not in self.table
        nb = self._get(target)
        before = nb.prefixes.get(prefix)
        nb.prefixes[prefix] = cost
        if nb.face is not None:
            self.node.forwarder.add_route(prefix, nb.face.id, cost)
            nb.reported = True
            return
        # a new neighbour's first dial, or a known one's next dial now, not after its back-off
        outcome = nb.dial_now()
        if fresh:
            self.node.nursery.start_soon(self._maintain, nb)
        with trio.move_on_after(ROUTE_ADD_WAIT):  # a dial into the void waits for nothing
            await outcome.wait()
        if nb.face is None:
            if fresh:
                nb.cancel.cancel()
                del self.table[str(target)]
            elif before is None:  # a known neighbour, down: the failed command leaves no route
                del nb.prefixes[prefix]
            else:
                nb.prefixes[prefix] = before
            raise CommandFailed(nb.error or f"cannot reach a ccn node at {target}")
        nb.reported = True

    def remove_route(self, prefix: Name, face_spec: str) -> int:
        """Remove the routes for ``prefix`` via the neighbour whose URI or face id is
        ``face_spec``; return how many. A neighbour left without routes is hung up."""
        removed = 0
        for nb in list(self.table.values()):
            matches = face_spec == str(nb.uri) or (
                nb.face is not None and face_spec == str(nb.face.id)
            )
            if matches and nb.prefixes.pop(prefix, None) is not None:
                removed += 1
                if nb.face is not None:
                    self.node.forwarder.remove_route(prefix, nb.face.id)
                if not nb.prefixes:
                    nb.cancel.cancel()
                    del self.table[str(nb.uri)]
        return removed

    # -- Interests waiting for a dial ------------------------------------------------------

    def hold(self, face_id: int, interest: Interest, *, orphan: bool = False) -> bool:
        """The forwarder found no route for ``interest`` from ``face_id``. If a neighbour that
        is down has a route for its name, dial it now and keep the Interest until that dial has
        succeeded or failed (at most :data:`HOLD_WAIT`), then hand it back to the node
        (:meth:`Node.retry_held <ccn.node.Node.retry_held>`); True. False: no such neighbour,
        or :data:`MAX_HELD` Interests are waiting already (counted): Nack it now.

        ``orphan``: the Interest had gone to that neighbour, whose connection has just closed
        under it: its dial is tried again (every :data:`DIAL_NOW_SPACING`) until it succeeds or
        :data:`HOLD_WAIT` is over, since what closed is most likely a producer restarting."""
        name = interest.name
        if name.is_localhost:
            return False
        prefixes = None
        down: list[Neighbour] = []
        now = trio.current_time()
        for nb in self.table.values():
            if nb.face is None:
                if prefixes is None:
                    prefixes = list(name.prefixes())
                # (a dial for waiting Interests that has just failed is the answer)
                recent = now - nb.held_failed_at < HELD_FAILURE_STANDS
                if not recent and any(p in nb.prefixes for p in prefixes):
                    down.append(nb)
        if not down:
            return False
        if len(self._held) >= MAX_HELD:
            self.held_overflow += 1
            return False
        expires = trio.current_time() + interest.lifetime_ms / 1000
        self._held.append(_Held(face_id, interest, expires, {str(nb.uri) for nb in down}))
        self.held += 1
        for nb in down:
            key = str(nb.uri)
            if orphan:
                self._redialling.add(key)
            if key not in self._dialling:
                self._dialling.add(key)
                self.node.nursery.start_soon(self._dial_for_held, nb)
        return True

    async def _dial_for_held(self, nb: Neighbour) -> None:
        """Dial ``nb`` now for the Interests waiting for it (one dial, however many wait: the
        one in progress if there is one), and release them when it has succeeded or failed."""
        key = str(nb.uri)
        try:
            with trio.move_on_after(HOLD_WAIT):
                while nb.face is None:
                    wait = nb.attempted_at + DIAL_NOW_SPACING - trio.current_time()
                    if wait > 0:
                        await trio.sleep(wait)
                    if nb.face is None:  # (its own redial may have brought it back meanwhile)
                        await nb.dial_now().wait()
                    if key not in self._redialling:  # one dial answers an Interest with no route
                        break
        finally:
            self._dialling.discard(key)
            self._redialling.discard(key)
        if nb.face is None:
            nb.held_failed_at = trio.current_time()
        self._release(key, up=nb.face is not None)

    def _release(self, key: str, *, up: bool) -> None:
        """The dial of the neighbour at ``key`` is over: the Interests waiting for it go back to
        the node, except those still waiting for another neighbour's dial (if it failed)."""
        ready: list[_Held] = []
        waiting: list[_Held] = []
        for held in self._held:
            if key in held.waiting:
                held.waiting.discard(key)
                if up or not held.waiting:
                    ready.append(held)
                    continue
            waiting.append(held)
        self._held = waiting
        now = trio.current_time()
        for held in ready:
            if now >= held.expires:
                # its consumer has given up on it (or sent another, with its own nonce)
                self.held_expired += 1
                continue
            self.node.retry_held(held.face_id, held.interest)

    # -- what they are doing ---------------------------------------------------------------

    def unreachable(self) -> list[str]:
        """Why each neighbour that is not connected is not (its last dial error)."""
        return [nb.error for nb in self.table.values() if nb.face is None and nb.error]

    def down_routes(self, under: Name | None = None) -> list[dict[str, Any]]:
        """Routes (under ``under``) whose neighbour is not connected, so not in the FIB:
        ``{"prefix", "uri", "error"}`` each (the last dial error, "" before the first)."""
        return [
            {"prefix": str(prefix), "uri": str(nb.uri), "error": nb.error}
            for nb in self.table.values()
            if nb.face is None
            for prefix in nb.prefixes
            if under is None or under.is_prefix_of(prefix)
        ]

    def origins(self) -> dict[tuple[str, int], str]:
        """``(prefix, face id) -> "static <uri>"`` for the routes in the FIB through them."""
        return {
            (str(p), nb.face.id): f"static {nb.uri}"
            for nb in self.table.values()
            if nb.face is not None
            for p in nb.prefixes
        }


@dataclass(slots=True)
class _Held:
    """An Interest that found no route, waiting for the dials of the neighbours in ``waiting``
    (their URIs), which have routes for it."""

    face_id: int
    interest: Interest
    #: When (trio time) the Interest's own lifetime ends: not forwarded after that.
    expires: float
    waiting: set[str]
