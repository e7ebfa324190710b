"""Fetching whole objects by name: version resolution, a pipelined window, ordered output.

A fetch resolves the name to a version record, walks the hash tree below it (manifests and trees
first, level by level), then fetches the leaf blobs in content order through a window of
Interests with congestion control as in NDN's ndncatchunks: slow start, additive increase,
multiplicative decrease on a timeout or congestion Nack (at most once per RTT), retransmission
after an RTO computed from measured RTTs (RFC 6298, Karn's rule); an object Nacked "no route"
is asked again at its retransmission timer, twice, before the fetch fails (a route lost
mid-fetch is often found again within a second). Every object is checked
against its id as it arrives (the client matches Data to Interests by blake3 digest), blobs are
written to disk in order through a bounded reorder buffer, by a writer thread that also hashes
each file (:mod:`ccn.filewriter`: the disk and the hash no longer hold up the packets), and the
whole content hash is checked at the end. Memory is bounded by the window (and the writer's
backlog), not by the size of the content.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import trio
from blake3 import blake3

from ccn.client import Client, nack_error
from ccn.errors import (
    CcnError,
    FetchError,
    InvalidObject,
    LocalError,
    NoAnswer,
    NoRoute,
    NotFound,
    Refused,
    VerificationError,
)
from ccn.filewriter import FileWriter
from ccn.name import Name
from ccn.ndn.names import shown
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.pending import new_nonce
from ccn.store.objects import (
    BLOB_HEADER_MAX,
    MAX_BLOB_SIZE,
    MODE_EXECUTABLE,
    Blob,
    Kind,
    Manifest,
    Tree,
    Version,
    blob_payload,
    decode,
    tree_content_hash,
)
from ccn.trust import UntrustedVersion

#: The most Interests in flight, and how far past the oldest object not yet handed on the window
#: may reach (the reorder bound, in objects). 128 held a fetch over a 40 ms path to about 250
#: MB/s (128 chunks of 80 KiB an RTT); the window grows to this only as answers come back.
MAX_WINDOW: Final = 512
#: The reorder bound in content bytes, for leaf blobs (their sizes are in the manifests): the
#: window reaches past the oldest leaf not yet written by at most this many bytes, so memory
#: does not grow with the size of the chunks (512 chunks of 256 KiB would be 128 MiB).
REORDER_BYTES: Final = 32 * 1024 * 1024
#: Interests in flight at the start. With 4, a fetch over a 40 ms round trip spent about a
#: third of a 256 MiB transfer's time opening its window (slow start from ~9 when the first leaf
#: is asked, five round trips to the rate the path carries); 16 saves two of them (16 chunks,
#: about 1 MiB in flight, is a modest first burst for a LAN) and 64 did little better.
INITIAL_WINDOW: Final = 16
MIN_RTO: Final = 0.5  # faces are mostly reliable streams: loss is rare, queueing delay is not
MAX_RTO: Final = 8.0
INITIAL_RTO: Final = 1.0
MAX_RETRIES: Final = 8
#: An object of the content Nacked "no route" is asked again this many times, each when its
#: retransmission timer fires, before the fetch fails: mid-fetch, a "no route" is often
#: passing (a router on the way went down and its Interests came back Nacked before the routes
#: moved to another; a neighbour is being redialled). A producer that is gone for good still
#: fails the fetch within about 1.5 s (RTO 0.5, doubled at each retransmission).
NO_ROUTE_RETRIES: Final = 2
LATEST_FRESHNESS_RETRIES: Final = 2
#: A latest version the client's anchors refuse: how many times, and for how long (s) in all,
#: it is asked for again past what was refused (see _past_refusals); how long the node is
#: given to take the ``refuse`` command (a node answers commands at once).
REFUSED_RETRIES: Final = 3
REFUSED_RETRY_TIME: Final = 30.0
REFUSE_TIMEOUT: Final = 3.0

#: ``progress(bytes_done, bytes_total)``
Progress = Callable[[int, int], None]


# -- version resolution ----------------------------------------------------------------------


async def resolve(client: Client, name: Name, *, newest_seen: bool = True) -> tuple[Name, Version]:
    """Fetch and check the version record for ``name`` (``/n/vN``, or ``/n`` for the latest);
    with trust anchors on the client, its signature too (:class:`~ccn.trust.UntrustedVersion`).
    ``newest_seen``: when no producer of ``/n`` can be reached, take the newest version a node
    on the way has seen (see :func:`_latest`). A latest version the client's anchors refuse is
    asked for again past it (see :func:`_past_refusals`)."""
    if name.version is not None:
        data = await client.express(Interest(name, new_nonce()), retries=LATEST_FRESHNESS_RETRIES)
        return _checked(client, name, data)
    data = await _latest(client, name, newest_seen)
    try:
        return _checked(client, name, data)
    except UntrustedVersion as refused:
        return await _past_refusals(client, name, newest_seen, data, refused)


def _checked(client: Client, name: Name, data: Data) -> tuple[Name, Version]:
    """The version record ``data`` that answered ``name``, checked (see :func:`resolve`)."""
    got = data.name
    if got.version is None:
        raise VerificationError(
            f"{shown(name)}: answered with {shown(got)}, which is not a ccn version"
        )
    if got.unversioned() != name.unversioned():
        if name.version is None and name.is_prefix_of(got):
            # a cache had only a version of a longer name: /videos has none of its own
            raise NotFound(
                f"{shown(name)} not found (only names under it, such as {shown(got.unversioned())})"
            )
        raise VerificationError(f"{shown(name)}: answered with unrelated name {shown(got)}")
    if name.version is not None and got != name:
        raise VerificationError(f"{shown(name)}: answered with {shown(got)}")
    try:
        version = decode(data.content)
    except InvalidObject as e:
        raise VerificationError(f"{got}: malformed version record: {e}") from None
    if type(version) is not Version:
        raise VerificationError(f"{got}: not a version record")
    if version.name != got.unversioned() or version.number != got.version:
        raise VerificationError(f"{got}: version record is for {version.name}/v{version.number}")
    if client.trust is not None:
        client.trust.check(version)
    return got, version


async def _past_refusals(
    client: Client, name: Name, newest_seen: bool, data: Data, refused: UntrustedVersion
) -> tuple[Name, Version]:
    """The client's anchors refused ``data``, the latest version record of ``name`` it was
    given (a rogue neighbour's higher version, signed by another key). Its node has no anchors
    to refuse it, and answers it again from its CS: the client tells the node it refused it
    (the ``refuse`` command, docs/protocol.md §6), so the node drops it from its CS and refuses
    it from upstream as it refuses what its own anchors reject (another next hop is asked), and
    asks for the latest version again. At most :data:`REFUSED_RETRIES` times, within
    :data:`REFUSED_RETRY_TIME`; then (or if the node cannot be told: an older ccn, or a node not
    on this host) the first refusal stands. What is taken instead comes with a note."""
    with trio.move_on_after(REFUSED_RETRY_TIME):
        for _attempt in range(REFUSED_RETRIES):
            try:
                await client.command(
                    "refuse", {"name": str(data.name), "id": data.digest}, timeout=REFUSE_TIMEOUT
                )
                data = await _latest(client, name, newest_seen)
                got, version = _checked(client, name, data)
            except UntrustedVersion:
                continue
            except CcnError:
                break
            client.notes.append(
                f"{refused}: refused; {got} is the newest version signed by a trusted key that "
                "the network gave"
            )
            return got, version
    raise refused


async def _latest(client: Client, name: Name, newest_seen: bool) -> Data:
    """The latest version record of ``name``: from its producer (must-be-fresh), or, when no
    producer can be reached (no route, or no answer) and ``newest_seen``, the newest version a
    node on the way has seen, with a note on ``client.notes`` saying so."""
    fresh = Interest(name, new_nonce(), can_be_prefix=True, must_be_fresh=True)
    try:
        return await client.express(fresh, retries=LATEST_FRESHNESS_RETRIES)
    except (NoRoute, NoAnswer, Refused) as unreachable:
        if not newest_seen:
            raise
        try:
            data = await client.express(Interest(name, new_nonce(), can_be_prefix=True))
        except FetchError:
            raise unreachable from None
        if data.name.unversioned() != name or data.name.version is None:
            raise unreachable from None  # a longer name's version is not one of this name
        newest = f"{data.name} is the newest version the nearest node that has one holds in full"
        if isinstance(unreachable, Refused):
            # the producer did answer: what came back was refused on the way (helper-53)
            client.notes.append(
                f"the latest version of {shown(name)} was refused by a node on the way (its "
                f"trust anchors reject it: forged, or signed by a key not trusted); {newest}"
            )
            return data
        why = "no answer in time" if isinstance(unreachable, NoAnswer) else str(unreachable)
        client.notes.append(f"no producer of {shown(name)} could be reached ({why}); {newest}")
        return data


# -- the window ------------------------------------------------------------------------------


class _Outstanding:
    """An Interest of the window awaiting its answer. A plain class, one per Interest sent:
    compiled, a dataclass's generated ``__init__`` runs as Python (docs/compiled.md)."""

    __slots__ = ("index", "interest", "nacked", "no_route", "retries", "sent")

    def __init__(
        self, index: int, interest: Interest, sent: float, retries: int = 0, no_route: int = 0
    ) -> None:
        self.index = index
        self.interest = interest
        self.sent = sent
        self.retries = retries
        #: Of the answers to this object so far, "no route" Nacks (see NO_ROUTE_RETRIES)
        self.no_route = no_route
        #: This Interest was Nacked "no route": its timer asks again, and is no timeout
        self.nacked = False


@dataclass
class Stats:
    """What a fetch did, for tests and benchmarks."""

    interests: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    congestion_marks: int = 0
    objects: int = 0
    bytes: int = 0
    max_window: float = 0.0
    #: Times the fetching task woke for a retransmission timer (answers never wake it).
    timer_wakeups: int = 0
    #: Times it woke for timers whose Interests had been answered meanwhile (about one per RTO
    #: at most: an Interest is answered or times out within an RTO of being sent).
    idle_wakeups: int = 0
    #: "No route" Nacks for objects of the content that were asked again (NO_ROUTE_RETRIES)
    no_route_nacks: int = 0


@dataclass
class Pipeline:
    """Fetches objects by id under one locator name, with AIMD congestion control."""

    client: Client
    locator: Name
    max_window: int = MAX_WINDOW
    cwnd: float = INITIAL_WINDOW
    ssthresh: float = math.inf
    srtt: float | None = None
    rttvar: float = 0.0
    rto: float = INITIAL_RTO
    stats: Stats = field(default_factory=Stats)
    _last_decrease: float = 0.0

    def _on_rtt(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(MAX_RTO, max(MIN_RTO, self.srtt + 4 * self.rttvar))

    def _increase(self) -> None:
        if self.cwnd < self.ssthresh:
            self.cwnd += 1.0
        else:
            self.cwnd += 1.0 / self.cwnd
        self.cwnd = min(self.cwnd, float(self.max_window))
        self.stats.max_window = max(self.stats.max_window, self.cwnd)

    def _decrease(self, now: float) -> bool:
        """Halve the window; whether it did (at most once per RTT, like ndncatchunks'
        conservative window adaptation)."""
        if now - self._last_decrease < (self.srtt or self.rto):
            return False
        self._last_decrease = now
        self.ssthresh = max(2.0, self.cwnd / 2)
        self.cwnd = self.ssthresh
        self.stats.congestion_marks += 1
        return True

    async def fetch_ordered(
        self,
        ids: Sequence[bytes],
        sink: Callable[[int, bytes], None],
        sizes: Sequence[int] | None = None,
    ) -> None:
        """Fetch every id; call ``sink(index, raw)`` in index order. Each raw is verified.
        ``sizes``: for blobs, the content bytes each holds, as its manifest says: the window
        then reaches at most :data:`REORDER_BYTES` of them past the oldest not handed on, and a
        blob larger than its manifest says fails the fetch as it arrives.

        Answers are handled as they are delivered (in the connection's receive task): that is
        where the window slides and new Interests go out, so this task only wakes for
        retransmission timers and the end.
        """
        if not ids:
            return
        transfer = _Transfer(self, ids, sink, sizes)
        try:
            await transfer.run()
        finally:
            transfer.forget_all()


class _Timers:
    """Retransmission timers, (deadline, index, nonce), earliest first. A deadline is mostly the
    latest yet (now + the RTO), so it is appended; one before the last (the RTO fell, a "no
    route" retry) is inserted in order. Timers of answered Interests are not removed: they are
    dropped when they come first (:meth:`_Transfer._next_deadline`). A heap did the same at a
    cost of log n tuple comparisons per Interest, with n the Interests of an RTO."""

    def __init__(self) -> None:
        self._items: list[tuple[float, int, int]] = []
        self._head = 0

    def __bool__(self) -> bool:
        return self._head < len(self._items)

    def push(self, deadline: float, index: int, nonce: int) -> None:
        items = self._items
        if self._head == len(items) or deadline >= items[-1][0]:
            items.append((deadline, index, nonce))
        else:
            bisect.insort(items, (deadline, index, nonce), lo=self._head)

    def first(self) -> tuple[float, int, int]:
        """The earliest timer; the caller checks that there is one."""
        return self._items[self._head]

    def pop(self) -> tuple[float, int, int]:
        """Remove and return the earliest timer; the caller checks that there is one."""
        items = self._items
        head = self._head
        entry = items[head]
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head >= 4096 and head * 2 >= len(items):
            del items[:head]
            head = 0
        self._head = head
        return entry


class _Transfer:
    """One ordered, windowed fetch of a list of ids (the state of :meth:`fetch_ordered`)."""

    def __init__(
        self,
        pipe: Pipeline,
        ids: Sequence[bytes],
        sink: Callable[[int, bytes], None],
        sizes: Sequence[int] | None,
    ) -> None:
        self.pipe = pipe
        self.client = pipe.client
        #: The client's pending Interests, called straight (compiled, docs/compiled.md).
        self.pending = pipe.client.pending
        #: trio's clock, read straight (``trio.current_time`` costs two calls more, per packet).
        self.now = trio.lowlevel.current_clock().current_time
        self.ids = ids
        self.sink = sink
        self.sizes = sizes
        #: Content bytes (by ``sizes``) of the objects from ``head`` up to ``next_issue``.
        self.ahead = 0
        self.want: dict[bytes, list[int]] = {}
        self.outstanding: dict[int, _Outstanding] = {}
        self.done: dict[int, bytes] = {}
        self.timers = _Timers()
        self.head = 0
        self.next_issue = 0
        self.error: BaseException | None = None
        self.finished = trio.Event()
        #: ``finished`` is set (read per answer: an attribute, not a call into trio).
        self.over = False
        #: While this task sleeps: the scope whose deadline is its wake-up, and that deadline.
        self._sleep: trio.CancelScope | None = None
        self._sleep_until = math.inf

    async def run(self) -> None:
        self._fill()
        stats = self.pipe.stats
        while not self.over:
            self._sleep_until = self._next_deadline()
            with trio.move_on_at(self._sleep_until) as self._sleep:
                await self.client._wait(self.finished)
            self._sleep = None
            if self.over:
                break
            now = self.now()
            if self._next_deadline() > now:
                # The timers it slept for were answered meanwhile. Answers do not move the
                # wake-up (that costs more, once per answer, than this wake once per RTO).
                stats.idle_wakeups += 1
                continue
            stats.timer_wakeups += 1
            self._expire(now)
        if self.error is not None:
            raise self.error

    def _next_deadline(self) -> float:
        """The earliest retransmission timer still live. Timers of answered Interests stay in
        the heap (lazy deletion); dropping them here keeps this task asleep until a timer can
        actually fire, instead of waking (a cancellation, an exception) once per answer."""
        timers = self.timers
        outstanding = self.outstanding
        while timers:
            deadline, index, nonce = timers.first()
            entry = outstanding.get(index)
            if entry is not None and entry.interest.nonce == nonce:
                return deadline
            timers.pop()
        return math.inf

    def forget_all(self) -> None:
        for entry in self.outstanding.values():
            self.pending.forget(entry.interest)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._finish()

    def _finish(self) -> None:
        self.over = True
        self.finished.set()

    def _issue(self, index: int, retries: int) -> None:
        digest = self.ids[index]
        interest = Interest(self.pipe.locator, new_nonce(), digest=digest)
        now = self.now()
        old = self.outstanding.get(index)
        no_route = 0
        if old is not None:
            self.pending.forget(old.interest)
            no_route = old.no_route
        self.outstanding[index] = _Outstanding(index, interest, now, retries, no_route)
        self.pending.send(interest, lambda packet: self._on_answer(digest, packet))
        deadline = now + self.pipe.rto
        self.timers.push(deadline, index, interest.nonce)
        self.pipe.stats.interests += 1
        if deadline < self._sleep_until and self._sleep is not None:
            # sent while the task sleeps, with a timer before its wake-up (the RTO fell)
            self._sleep_until = self._sleep.deadline = deadline

    def _fill(self) -> None:
        """Issue Interests while the window and the reorder bound allow."""
        n = len(self.ids)
        limit = min(n, self.head + self.pipe.max_window)
        cwnd = int(self.pipe.cwnd)
        sizes = self.sizes
        while self.next_issue < limit and len(self.outstanding) < cwnd:
            index = self.next_issue
            if sizes is not None:
                size = sizes[index]
                if self.ahead + size > REORDER_BYTES and index > self.head:
                    break
                self.ahead += size
            waiting = self.want.setdefault(self.ids[index], [])
            waiting.append(index)
            if len(waiting) == 1:
                self._issue(index, 0)
            self.next_issue += 1

    def _on_answer(self, digest: bytes, packet: Data | Nack) -> None:
        if self.over:
            return
        try:
            self._handle(digest, packet)
        except BaseException as e:  # a fatal Nack or a sink failure ends the fetch
            self._fail(e)

    def _handle(self, digest: bytes, packet: Data | Nack) -> None:
        indexes = self.want.get(digest)
        if not indexes:
            return
        first = self.outstanding.get(indexes[0])
        if first is None:
            return
        pipe = self.pipe
        now = self.now()
        if type(packet) is Nack:
            if packet.reason in (NackReason.CONGESTION, NackReason.DUPLICATE):
                if first.retries >= MAX_RETRIES:
                    why = (
                        "the network answered congestion"
                        if packet.reason == NackReason.CONGESTION
                        else "each came back to a node it had passed: a routing loop? see "
                        "ccn route list on the nodes on the way"
                    )
                    raise NotFound(
                        f"{pipe.locator}: object {digest.hex()[:16]} not received after "
                        f"{MAX_RETRIES + 1} tries ({why})"
                    )
                pipe._decrease(now)
                self._issue(first.index, first.retries + 1)
                return
            if packet.reason == NackReason.NOT_FOUND:
                # the version was found; "<name> not found" sent users looking for the wrong thing
                raise NotFound(
                    f"{pipe.locator}: object {digest.hex()[:16]} of its content not found "
                    "(missing or damaged where it is stored)"
                )
            if packet.reason == NackReason.NO_ROUTE and first.no_route < NO_ROUTE_RETRIES:
                # Asked again after an RTO, then two (it stays outstanding, under a timer of its
                # own): no congestion, so the window and the RTO are left as they are.
                first.nacked = True
                first.no_route += 1
                pipe.stats.no_route_nacks += 1
                again = now + pipe.rto * (1 << (first.no_route - 1))
                self.timers.push(again, first.index, first.interest.nonce)
                if again < self._sleep_until and self._sleep is not None:
                    self._sleep_until = self._sleep.deadline = again
                return
            if packet.reason == NackReason.NO_ROUTE:
                # the version was found: say that part of its content was not
                raise NoRoute(
                    f"no route to {pipe.locator} for object {digest.hex()[:16]} of its content "
                    "(no node on the way holds it, and no producer of it can be reached)"
                )
            raise nack_error(packet, pipe.locator, pipe.client.trust)
        assert type(packet) is Data
        if first.retries == 0:
            pipe._on_rtt(now - first.sent)
        pipe._increase()
        del self.want[digest]
        content = packet.content
        sizes = self.sizes
        if sizes is not None and len(content) > sizes[first.index] + BLOB_HEADER_MAX:
            raise VerificationError(
                f"{pipe.locator}: object {digest.hex()[:16]} holds {len(content)} bytes, more "
                f"than the {sizes[first.index]} its manifest says"
            )
        for i in indexes:
            self.outstanding.pop(i, None)
            self.done[i] = content
        pipe.stats.objects += 1
        pipe.stats.bytes += len(content)
        done = self.done
        head = self.head
        while head in done:
            self.sink(head, done.pop(head))
            if sizes is not None:
                self.ahead -= sizes[head]
            head += 1
        self.head = head
        if head >= len(self.ids):
            self._finish()
            return
        self._fill()

    def _expire(self, now: float) -> None:
        pipe = self.pipe
        timers = self.timers
        while timers and timers.first()[0] <= now:
            _, index, nonce = timers.pop()
            entry = self.outstanding.get(index)
            if entry is None or entry.interest.nonce != nonce:
                continue
            if entry.nacked:  # Nacked "no route": asked again, no loss
                self._issue(index, entry.retries)
                continue
            pipe.stats.timeouts += 1
            if entry.retries >= MAX_RETRIES:
                raise NotFound(
                    f"{pipe.locator}: object {self.ids[index].hex()[:16]} not received "
                    f"after {MAX_RETRIES + 1} tries"
                )
            if pipe._decrease(now):
                # Backed off once per decrease (once an RTT), as ndncatchunks does: a window
                # of Interests lost together doubled the RTO once each (16x for four).
                pipe.rto = min(MAX_RTO, pipe.rto * 2)
            pipe.stats.retransmissions += 1
            self._issue(index, entry.retries + 1)


# -- walking the tree ------------------------------------------------------------------------


@dataclass
class _Leaves:
    """A file's leaf blobs in content order, and the content bytes of each (its manifest's)."""

    ids: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def extend(self, other: _Leaves) -> None:
        self.ids.extend(other.ids)
        self.sizes.extend(other.sizes)


@dataclass
class _File:
    path: Path
    mode: int
    leaves: _Leaves
    size: int


@dataclass
class _Plan:
    dirs: list[Path]
    files: list[_File]
    #: For directories: (relative dir, [(name, mode, size, file-or-dir key)]) to rebuild hashes.
    trees: list[tuple[Path, list[tuple[bytes, int, int, Path]]]]


async def _fetch_interior(pipe: Pipeline, root: bytes, kind: Kind) -> dict[bytes, Manifest | Tree]:
    """Fetch every manifest and tree below ``root``, level by level."""
    found: dict[bytes, Manifest | Tree] = {}
    level = [root] if kind in (Kind.MANIFEST, Kind.TREE) else []
    while level:
        level = list(dict.fromkeys(i for i in level if i not in found))
        objs: list[Manifest | Tree] = []

        def keep(_i: int, raw: bytes, objs: list[Manifest | Tree] = objs) -> None:
            obj = _decode_checked(raw)
            if type(obj) is not Manifest and type(obj) is not Tree:
                raise VerificationError("expected a manifest or tree object")
            objs.append(obj)

        await pipe.fetch_ordered(level, keep)
        nxt: list[bytes] = []
        for oid, obj in zip(level, objs, strict=True):
            found[oid] = obj
            nxt.extend(p.id for p in obj.entries if p.kind in (Kind.MANIFEST, Kind.TREE))
        level = nxt
    return found


def _decode_checked(raw: bytes) -> Manifest | Tree | Blob | Version:
    try:
        return decode(raw)
    except InvalidObject as e:
        raise VerificationError(f"malformed object: {e}") from None


def _leaves(oid: bytes, kind: Kind, size: int, interior: dict[bytes, Manifest | Tree]) -> _Leaves:
    """The leaves of the file object ``oid`` of ``size`` content bytes."""
    if kind == Kind.BLOB:
        return _Leaves([oid], [size])
    out = _Leaves()
    stack = [iter(_manifest(interior, oid).entries)]
    while stack:
        p = next(stack[-1], None)
        if p is None:
            stack.pop()
        elif p.kind == Kind.BLOB:
            out.ids.append(p.id)
            out.sizes.append(p.size)
        else:
            stack.append(iter(_manifest(interior, p.id).entries))
    return out


def _all_leaves(plan: _Plan) -> _Leaves:
    """Every file's leaves, in the plan's order."""
    out = _Leaves()
    for f in plan.files:
        out.extend(f.leaves)
    return out


def _manifest(interior: dict[bytes, Manifest | Tree], oid: bytes) -> Manifest:
    obj = interior[oid]
    if type(obj) is not Manifest:
        raise VerificationError("a file points at a directory object")
    return obj


def _plan(version: Version, interior: dict[bytes, Manifest | Tree], dest: Path) -> _Plan:
    if version.root_kind != Kind.TREE:
        leaves = _leaves(version.root, version.root_kind, version.size, interior)
        return _Plan([], [_File(dest, 0, leaves, version.size)], [])
    plan = _Plan([dest], [], [])
    stack = [(version.root, dest)]
    while stack:
        tid, where = stack.pop()
        tree = interior[tid]
        if type(tree) is not Tree:
            raise VerificationError("a directory points at a file object")
        rows: list[tuple[bytes, int, int, Path]] = []
        for e in tree.entries:
            path = where / os.fsdecode(e.name)
            rows.append((e.name, e.mode, e.size, path))
            if e.kind == Kind.TREE:
                plan.dirs.append(path)
                stack.append((e.id, path))
            else:
                leaves = _leaves(e.id, e.kind, e.size, interior)
                plan.files.append(_File(path, e.mode, leaves, e.size))
        plan.trees.append((where, rows))
    return plan


def _tree_hash(plan: _Plan, hashes: dict[Path, bytes]) -> bytes:
    # Children are planned after their parents, so walking the list backwards sees them first.
    for where, rows in reversed(plan.trees):
        hashes[where] = tree_content_hash((n, m, s, hashes[p]) for n, m, s, p in rows)
    return hashes[plan.trees[0][0]]


def _blob_data(raw: bytes) -> memoryview:
    try:
        return blob_payload(raw)
    except InvalidObject as e:
        raise VerificationError(f"expected a blob: {e}") from None


# -- public entry points ---------------------------------------------------------------------


PARTIAL_SUFFIX: Final = ".ccn-partial"
#: The longest file name most file systems take (ext4, xfs, btrfs, tmpfs: 255 bytes).
NAME_MAX: Final = 255


class Output(Protocol):
    """Where :func:`fetch_to_stream` writes: a binary file, or what stands for one."""

    def write(self, data: bytes | memoryview, /) -> object: ...

    def flush(self) -> object: ...


#: Partial outputs made by this process so far (their names must differ: tasks of one program
#: may fetch to the same path at once).
_partials = itertools.count(1)


def partial_path(dest: Path) -> Path:
    """Where a fetch to ``dest`` writes before it renames: beside it (the rename is atomic),
    ``<name>.ccn-partial-<pid>-<n>``, a name of this fetch's own: two fetches to one output
    never write into each other's, and a path that is not a fetch's (a user's
    ``<name>.ccn-partial``) is never touched. For a name too long to take the suffix, a hidden
    name made from its hash instead."""
    return dest.with_name(f"{_partial_base(dest)}-{os.getpid()}-{next(_partials)}")


def _partial_base(dest: Path) -> str:
    tag = len(PARTIAL_SUFFIX) + 24  # "-<pid>-<n>"
    if len(os.fsencode(dest.name)) + tag <= NAME_MAX:
        return dest.name + PARTIAL_SUFFIX
    return f".{blake3(os.fsencode(dest.name)).hexdigest()[:32]}{PARTIAL_SUFFIX}"


def stale_partials(dest: Path) -> list[Path]:
    """The partial outputs for ``dest`` that fetches killed before they could clean up left
    (SIGKILL, a crash): named as :func:`partial_path` names them, by a process that is gone."""
    base = _partial_base(dest) + "-"
    found = []
    try:
        entries = os.listdir(dest.parent)
    except OSError:
        return []
    for entry in entries:
        if not entry.startswith(base):
            continue
        pid, _, n = entry[len(base) :].partition("-")
        if pid.isdigit() and n.isdigit() and not _alive(int(pid)):
            found.append(dest.parent / entry)
    return found


def remove_stale_partials(dest: Path) -> None:
    """Remove what fetches killed before they could clean up left for ``dest``
    (:func:`stale_partials`): files, or a directory version's trees."""
    for stale in stale_partials(dest):
        with contextlib.suppress(OSError):
            _remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


async def fetch_version(
    client: Client,
    name: Name,
    dest: Path,
    *,
    progress: Progress | None = None,
    max_window: int = MAX_WINDOW,
    into_directory: bool = False,
) -> tuple[Name, Version, Stats]:
    """Fetch ``name`` to ``dest`` (a file or a directory), atomically and verified.
    ``into_directory``: ``dest`` was written with a trailing slash, so a file version is an
    error (as ``cp`` has it), not a file written at ``dest``."""
    versioned, version = await resolve(client, name)
    pipe = Pipeline(client, versioned, max_window=max_window)
    if version.root_kind != Kind.TREE:
        if dest.is_dir():
            raise LocalError(f"{dest} is a directory; give a file path to write to")
        if into_directory:
            raise LocalError(
                f"{dest}{os.sep} names a directory, and {versioned} is a file; give a file path"
            )
    if version.root_kind == Kind.TREE and os.path.lexists(dest):  # a dangling link too
        raise LocalError(f"{dest} already exists")
    interior = await _fetch_interior(pipe, version.root, version.root_kind)
    remove_stale_partials(dest)
    partial = partial_path(dest)
    plan = _plan(version, interior, partial)
    if version.root_kind == Kind.TREE:
        try:
            partial.mkdir()  # its own (never one that was there: that is not removed below)
        except OSError as e:
            raise LocalError(f"cannot write {dest}: {e.strerror}") from None
    try:
        for d in plan.dirs:
            d.mkdir(parents=True, exist_ok=True)
        hashes = await _write_files(pipe, plan, version.size, progress)
        got = hashes[partial] if version.root_kind != Kind.TREE else _tree_hash(plan, hashes)
        if got != version.content_hash:
            raise VerificationError(f"{versioned}: content hash mismatch")
        os.replace(partial, dest)
    except BaseException as e:
        with contextlib.suppress(OSError):
            _remove(partial)
        if isinstance(e, OSError) and e.strerror:
            raise LocalError(f"cannot write {_shown(e, partial, dest)}: {e.strerror}") from None
        raise
    return versioned, version, pipe.stats


def _shown(error: OSError, partial: Path, dest: Path) -> Path:
    """The path the user asked for that ``error`` is about: the partial output is ours, so a
    file in it is named by where it was going to be."""
    if error.filename is None:
        return dest
    where = Path(os.fsdecode(error.filename))
    if where == partial:
        return dest
    return dest / where.relative_to(partial) if where.is_relative_to(partial) else where


def _remove(path: Path) -> None:
    """Remove a file or a directory tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class _Writer:
    """Hands leaf blobs, arriving in order, to a :class:`FileWriter` thread, which writes them
    into the plan's files and hashes each file."""

    def __init__(self, plan: _Plan, total: int, progress: Progress | None) -> None:
        self.plan = plan
        self.total = total
        self.progress = progress
        self.bounds: list[int] = []
        for f in plan.files:
            self.bounds.append((self.bounds[-1] if self.bounds else 0) + len(f.leaves.ids))
        self.index = -1
        self.done = 0
        self.files = FileWriter()

    def sink(self, index: int, raw: bytes) -> None:
        while self.index < 0 or index >= self.bounds[self.index]:
            self._open_next()
        data = _blob_data(raw)
        self.files.write(data)
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def finish(self) -> dict[Path, bytes]:
        while self.index + 1 < len(self.plan.files):
            self._open_next()
        self._close_current()
        return self.files.finish()

    def _open_next(self) -> None:
        self._close_current()
        self.index += 1
        self.files.open(self.plan.files[self.index].path)

    def _close_current(self) -> None:
        if self.index >= 0:
            f = self.plan.files[self.index]
            self.files.close(f.path, executable=f.mode == MODE_EXECUTABLE)


async def _write_files(
    pipe: Pipeline, plan: _Plan, total: int, progress: Progress | None
) -> dict[Path, bytes]:
    writer = _Writer(plan, total, progress)
    try:
        leaves = _all_leaves(plan)
        await pipe.fetch_ordered(leaves.ids, writer.sink, leaves.sizes)
        return writer.finish()
    finally:
        writer.files.abort()


async def fetch_to_path(
    client: Client, name: Name, dest: Path, *, into_directory: bool = False
) -> Name:
    versioned, _version, _stats = await fetch_version(
        client, name, dest, into_directory=into_directory
    )
    return versioned


async def fetch_to_stream(
    client: Client, name: Name, out: Output, *, shown_as: str = "stdout"
) -> Name:
    """Fetch a file version and write it to ``out`` in order (e.g. stdout). An error writing
    ``out`` raises :class:`LocalError` naming it ``shown_as`` (a full disk under a redirected
    stdout); a reader that went away stays a :class:`BrokenPipeError` (see ``ccn.cli``)."""
    versioned, version = await resolve(client, name)
    if version.root_kind == Kind.TREE:
        raise LocalError(f"{versioned} is a directory; fetch it to a path")
    pipe = Pipeline(client, versioned)
    interior = await _fetch_interior(pipe, version.root, version.root_kind)
    hasher = blake3()

    def sink(_i: int, raw: bytes) -> None:
        data = _blob_data(raw)
        hasher.update(data)
        with stream_errors(shown_as):
            out.write(data)

    leaves = _leaves(version.root, version.root_kind, version.size, interior)
    await pipe.fetch_ordered(leaves.ids, sink, leaves.sizes)
    if hasher.digest() != version.content_hash:
        raise VerificationError(f"{versioned}: content hash mismatch")
    with stream_errors(shown_as):
        out.flush()
    return versioned


@contextlib.contextmanager
def stream_errors(shown_as: str) -> Iterator[None]:
    """Turn an error writing an output stream into one line naming it, as errors writing
    ``-o FILE`` do (a bare "No space left on device" did not say what was full)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise LocalError(f"cannot write to {shown_as}: {e.strerror or e}") from None


async def fetch_through(client: Client, versioned: Name, version: Version) -> Stats:
    """Fetch every object of ``version`` and discard it: it passes (and is cached by) the
    client's node, which is what pinning a version published elsewhere needs."""
    pipe = Pipeline(client, versioned)
    interior = await _fetch_interior(pipe, version.root, version.root_kind)
    plan = _plan(version, interior, Path("."))
    leaves = _all_leaves(plan)
    await pipe.fetch_ordered(leaves.ids, lambda _i, _raw: None, leaves.sizes)
    return pipe.stats


async def fetch_bytes(client: Client, name: Name) -> bytes:
    versioned, version = await resolve(client, name)
    if version.root_kind == Kind.TREE:
        raise LocalError(f"{versioned} is a directory; fetch it to a path")
    pipe = Pipeline(client, versioned)
    interior = await _fetch_interior(pipe, version.root, version.root_kind)
    leaves = _leaves(version.root, version.root_kind, version.size, interior)
    size = version.size
    if size > len(leaves.ids) * MAX_BLOB_SIZE:
        raise VerificationError(
            f"{versioned}: its record claims {size} bytes, more than its {len(leaves.ids)} "
            "chunk(s) can hold"
        )
    # The content is written into one bytes object of its size, which getvalue() hands over:
    # bytes() of a growing bytearray copied it, a peak of twice the content (helper-51).
    # (bytes(size) is calloc'd: its pages cost nothing until written.)
    out = io.BytesIO(bytes(size))

    def append(_index: int, raw: bytes) -> None:
        data = _blob_data(raw)
        if out.tell() + len(data) > size:
            raise VerificationError(f"{versioned}: more content than its record says")
        out.write(data)

    await pipe.fetch_ordered(leaves.ids, append, leaves.sizes)
    if out.tell() != size:
        raise VerificationError(f"{versioned}: less content than its record says")
    content = out.getvalue()
    out.close()
    if blake3(content).digest() != version.content_hash:
        raise VerificationError(f"{versioned}: content hash mismatch")
    return content
