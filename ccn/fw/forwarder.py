"""The sans-IO forwarder core: events in, actions out, pipelines named after NFD's.

Rules this module keeps:

- No I/O and no clock: ``handle(event, now)`` returns the packets to send, ``next_deadline()``
  says when to call it again with a :class:`~ccn.fw.actions.Tick`. Nothing here imports trio,
  opens a socket or touches the disk.
- Every decision is made here or in a strategy; the tables (:mod:`ccn.tables`) only store.
- Every pipeline is one method, named after the NFD developer guide (incoming Interest, Interest
  loop, CS hit/miss, outgoing Interest, incoming Data, Data unsolicited, outgoing Data, incoming
  Nack, outgoing Nack, Interest finalize), and appends its actions to the list it is given.
- Every packet dropped on purpose is counted in :class:`Counters`.

docs/forwarder.md describes the matching, scope, hop-limit and Nack rules.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from ccn.errors import LocalError
from ccn.fw.actions import (
    Action,
    DataIn,
    DataRefused,
    Event,
    FaceDown,
    FaceUnreachable,
    FaceUp,
    InterestIn,
    NackIn,
    SendData,
    SendInterest,
    SendNack,
    Tick,
)
from ccn.fw.strategy import DEFAULT_STRATEGY, Strategy, make_strategy
from ccn.name import Name
from ccn.packet import DEFAULT_HOP_LIMIT, Data, Interest, Nack, NackReason, _prechecked_interest
from ccn.tables import cs as _cs
from ccn.tables import dnl as _dnl
from ccn.tables import fib as _fib
from ccn.tables import pit as _pit
from ccn.tables.cs import ContentStore
from ccn.tables.dnl import DeadNonceList
from ccn.tables.fib import Fib, NextHop
from ccn.tables.nametree import NameTree
from ccn.tables.pit import OutRecord, Pit, PitEntry

_LOCALHOST: Final = b"localhost"
_LOCALHOP: Final = b"localhop"
#: Scoped names: control traffic (commands, discovery's hellos and route tables). It is never
#: worth caching: it bypasses the CS, so it neither fills it nor shows in its hit ratio.
_SCOPED: Final = frozenset((_LOCALHOST, _LOCALHOP))

# Least severe first: when every upstream Nacked, downstream hears the most hopeful reason.
NACK_SEVERITY: Final[tuple[NackReason, ...]] = (
    NackReason.CONGESTION,
    NackReason.DUPLICATE,
    NackReason.HOP_LIMIT,
    # Above no-route: an upstream that answered with what a node refused says more about the
    # name (a forgery on the way) than one that had no route.
    NackReason.REFUSED,
    NackReason.NO_ROUTE,
    NackReason.NOT_FOUND,
    NackReason.TOO_LARGE,
    NackReason.MALFORMED,
)
_SEVERITY: Final = {reason: rank for rank, reason in enumerate(NACK_SEVERITY)}


@dataclass(frozen=True, slots=True)
class ForwarderConfig:
    """Every bound of the core. Defaults suit one node with a few hundred MiB of RAM."""

    pit_max_entries: int = _pit.DEFAULT_MAX_ENTRIES
    pit_max_per_face: int = _pit.DEFAULT_MAX_PER_FACE
    cs_max_bytes: int = _cs.DEFAULT_MAX_BYTES
    cs_max_entries: int = _cs.DEFAULT_MAX_ENTRIES
    cs_entry_overhead: int = _cs.DEFAULT_ENTRY_OVERHEAD
    dnl_max_entries: int = _dnl.DEFAULT_MAX_ENTRIES
    dnl_lifetime: float = _dnl.DEFAULT_LIFETIME
    fib_max_entries: int = _fib.DEFAULT_MAX_ENTRIES
    # Forwarded Interests carry at most this hop limit (after the decrement), so a peer cannot
    # make an Interest travel further than this node's policy allows.
    max_hop_limit: int = DEFAULT_HOP_LIMIT
    default_strategy: str = DEFAULT_STRATEGY
    # A consumer's retransmission of an Interest still pending upstream is forwarded only if
    # the last copy went out at least this long ago; each one forwarded doubles the wait for
    # the entry, up to the maximum (NFD's exponential retransmission suppression).
    retx_suppression_initial: float = 0.010
    retx_suppression_max: float = 0.250

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise LocalError(f"ForwarderConfig.{f.name} must not be negative, got {value}")
        if self.dnl_lifetime <= 0:
            raise LocalError("ForwarderConfig.dnl_lifetime must be positive")


@dataclass(slots=True)
class Counters:
    """Packets in and out, and every reason a packet was dropped or answered with a Nack."""

    in_interests: int = 0
    in_data: int = 0
    in_nacks: int = 0
    out_interests: int = 0
    out_data: int = 0
    out_nacks: int = 0
    cs_hits: int = 0
    cs_misses: int = 0
    aggregated: int = 0
    unsolicited_data: int = 0
    duplicates: int = 0
    no_route: int = 0
    hop_limit: int = 0
    congestion: int = 0
    scope_violations: int = 0
    expired: int = 0
    satisfied: int = 0
    #: Answers the node refused (DataRefused) that matched Interests sent to their face
    refused: int = 0
    nacks_unmatched: int = 0
    unknown_face: int = 0
    #: Interests a strategy re-sent to another upstream after its retry timer fired
    retried: int = 0
    #: Interests pending on an upstream face when it went down (FaceDown) or was found
    #: unreachable (FaceUnreachable), taken as its no-route Nack
    upstream_down: int = 0
    #: Consumer retransmissions held back: a copy went upstream too recently (retx suppression)
    suppressed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Forwarder:
    """The forwarding core of one node. Not thread-safe; one task owns it."""

    def __init__(self, config: ForwarderConfig | None = None) -> None:
        cfg = config if config is not None else ForwarderConfig()
        self.config = cfg
        self.fib = Fib(cfg.fib_max_entries)
        self.pit = Pit(cfg.pit_max_entries, cfg.pit_max_per_face)
        self.cs = ContentStore(cfg.cs_max_bytes, cfg.cs_max_entries, cfg.cs_entry_overhead)
        self.dnl = DeadNonceList(cfg.dnl_max_entries, cfg.dnl_lifetime)
        self.counters = Counters()
        # face id -> is it local
        self._faces: dict[int, bool] = {}
        self._strategies: NameTree[tuple[str, Strategy]] = NameTree()
        self._strategies.set(Name(), (cfg.default_strategy, make_strategy(cfg.default_strategy)))
        self._root_strategy = self._strategies.get(Name())
        # Strategy retry timers: (due, seq, entry, upstream face, nonce sent there). Stale items
        # (entry gone, out-record answered or re-sent) are skipped lazily.
        self._retry: list[tuple[float, int, PitEntry, int, int]] = []
        self._retry_seq = 0

    # -- public API ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at monotonic time ``now``; return the packets to send, in order."""
        out: list[Action] = []
        # An if-chain on the exact type, packets first: cheaper than a table of bound methods
        # on the path every packet takes.
        if type(event) is InterestIn:
            self._incoming_interest(event.face_id, event.interest, now, out)
        elif type(event) is DataIn:
            self._incoming_data(event.face_id, event.data, now, out)
        elif type(event) is NackIn:
            self._incoming_nack(event.face_id, event.nack, now, out)
        elif type(event) is DataRefused:
            self._data_refused(event.face_id, event.data, now, out)
        elif type(event) is Tick:
            self._on_tick(now, out)
        elif type(event) is FaceUp:
            self._faces[event.face_id] = event.local
        elif type(event) is FaceDown:
            self._on_face_down(event.face_id, now, out)
        elif type(event) is FaceUnreachable:
            self._upstream_gone(event.face_id, self.pit.waiting_on(event.face_id), now, out)
        else:
            raise LocalError(f"not a forwarder event: {event!r}")
        return out

    def answer_from_cs(self, face_id: int, interest: Interest, now: float) -> Data | None:
        """The hot case of :meth:`handle` for ``InterestIn``, without an event or actions: a
        digest Interest that the CS answers and that no rule stops. Returns the Data to send
        back on ``face_id``, counted exactly as the full pipeline counts a CS hit; or None,
        having changed nothing, when the Interest needs the full pipeline."""
        digest = interest.digest
        local = self._faces.get(face_id)
        if digest is None or local is None or interest.must_be_fresh:
            return None
        if not local:
            comps = interest.name.components
            if interest.hop_limit == 0 or (comps and comps[0] == _LOCALHOST):
                return None
        if self.cs.get_by_digest(digest) is None or self.dnl.has(
            interest.name, digest, interest.nonce, now
        ):
            return None
        if self.pit.find(interest) is not None:
            return None
        data = self.cs.hit_by_digest(digest)  # counts the hit, marks it recently used
        assert data is not None
        counters = self.counters
        counters.in_interests += 1
        counters.cs_hits += 1
        counters.out_data += 1
        return data

    def next_deadline(self) -> float | None:
        """When a :class:`Tick` is next due (the earliest PIT expiry or strategy retry timer),
        or ``None``."""
        due = self.pit.next_expiry()
        retry = self._retry
        while retry and not self._retry_pending(retry[0][2], retry[0][3], retry[0][4]):
            heapq.heappop(retry)
        if retry and (due is None or retry[0][0] < due):
            due = retry[0][0]
        return due

    @property
    def timer_epoch(self) -> int:
        """Grows whenever a deadline is added (a PIT expiry or a retry timer). While it stays
        the same, :meth:`next_deadline` can only have moved later, so a caller that sleeps
        until the deadline need not ask again (a CS hit adds none)."""
        return self.pit.schedules + self._retry_seq

    def add_route(self, prefix: Name, face_id: int, cost: int = 0, *, bounded: bool = True) -> None:
        """Route ``prefix`` to ``face_id`` (which need not be up yet). Raises ``TableFull``;
        ``bounded=False``: not counted against the FIB's bound (see :class:`Fib`)."""
        self.fib.add(prefix, face_id, cost, bounded=bounded)

    def remove_route(self, prefix: Name, face_id: int) -> bool:
        return self.fib.remove(prefix, face_id)

    def set_strategy(self, prefix: Name, name: str) -> None:
        """Use strategy ``name`` for Interests under ``prefix`` (longest prefix wins)."""
        self._strategies.set(prefix, (name, make_strategy(name)))
        if not prefix.components:
            self._root_strategy = self._strategies.get(prefix)

    def unset_strategy(self, prefix: Name) -> bool:
        """Forget the choice for ``prefix``; the root's choice can be replaced, not removed."""
        if not prefix.components:
            raise LocalError("the root strategy choice cannot be removed; set another one")
        return self._strategies.pop(prefix) is not None

    def strategy_of(self, name: Name) -> str:
        """The name of the strategy that handles Interests for ``name``."""
        return self._strategy_choice(name)[0]

    @property
    def faces(self) -> dict[int, bool]:
        """Face id -> local, for the faces that are up (a copy)."""
        return dict(self._faces)

    def routes(
        self, under: Name | None = None, limit: int | None = None, after: Name | None = None
    ) -> list[dict[str, Any]]:
        """JSON-ready FIB entries for ``under`` and the prefixes below it (all if None), in
        name order, from the first after ``after`` (None: from the start), at most ``limit``
        of them (None: all). Only those are visited."""
        return [
            {
                "prefix": str(e.prefix),
                "nexthops": [{"face": h.face_id, "cost": h.cost} for h in e.nexthops],
            }
            for e in itertools.islice(self.fib.entries(under, after), limit)
        ]

    def status(self, *, max_routes: int | None = None) -> dict[str, Any]:
        """A JSON-ready snapshot: faces, FIB (its first ``max_routes`` entries; all if None),
        strategy choices, table sizes and counters."""
        cs = self.cs
        pit = self.pit
        dnl = self.dnl
        return {
            "faces": [{"face": f, "local": loc} for f, loc in sorted(self._faces.items())],
            "fib": self.routes(limit=max_routes),
            "strategies": [
                {"prefix": str(prefix), "strategy": choice[0]}
                for prefix, choice in self._strategies.items()
            ],
            "pit": {
                "entries": len(pit),
                "max_entries": pit.max_entries,
                "max_per_face": pit.max_per_face,
                "inserts": pit.inserts,
                "expired": pit.expired,
                "rejected": pit.rejected,
            },
            "cs": {
                "entries": len(cs),
                "bytes": cs.bytes,
                "max_entries": cs.max_entries,
                "max_bytes": cs.max_bytes,
                "hits": cs.hits,
                "misses": cs.misses,
                "inserts": cs.inserts,
                "evictions": cs.evictions,
            },
            "dnl": {
                "entries": len(dnl),
                "max_entries": dnl.max_entries,
                "lifetime": dnl.lifetime,
                "inserts": dnl.inserts,
                "hits": dnl.hits,
                "evictions": dnl.evictions,
            },
            "counters": self.counters.as_dict(),
        }

    # -- timers and faces ------------------------------------------------------------------

    def _on_tick(self, now: float, out: list[Action]) -> None:
        for entry in self.pit.expire(now):
            self.counters.expired += 1
            self._interest_finalize(entry, now, expired=True)
        retry = self._retry
        while retry and retry[0][0] <= now:
            _, _, entry, face_id, nonce = heapq.heappop(retry)
            if self._retry_pending(entry, face_id, nonce):
                self._out_record_timeout(entry, face_id, now, out)
        self.dnl.purge(now)

    def _retry_pending(self, entry: PitEntry, face_id: int, nonce: int) -> bool:
        """Whether a retry timer still means something: the entry is pending and its
        out-record to ``face_id`` still carries ``nonce`` with no answer."""
        if self.pit.find(entry.interest) is not entry:
            return False
        rec = entry.out_records.get(face_id)
        return rec is not None and rec.nonce == nonce and rec.nack_reason is None

    def _on_face_down(self, face_id: int, now: float, out: list[Action]) -> None:
        """The face is gone: its routes and in-records go, and every Interest it was sent and
        has not answered is taken as Nacked by it "no route" (it never will answer): another
        next hop is tried at once, or downstream hears now instead of at the end of its
        lifetime. The face leaves the FIB and the face table first, so it is not retried."""
        self._faces.pop(face_id, None)
        self.fib.remove_face(face_id)
        removed, unanswered = self.pit.remove_face(face_id)
        for entry in removed:
            self._interest_finalize(entry, now, expired=False)
        self._upstream_gone(face_id, unanswered, now, out)

    def _upstream_gone(
        self, face_id: int, unanswered: list[PitEntry], now: float, out: list[Action]
    ) -> None:
        """Upstream ``face_id`` will not answer the Interests of ``unanswered`` (entries with
        an out-record to it and no answer): each takes it as that face's ``NO_ROUTE`` Nack."""
        counters = self.counters
        for entry in unanswered:
            counters.upstream_down += 1
            self._nacked(entry, face_id, entry.out_records[face_id], NackReason.NO_ROUTE, now, out)

    # -- Interest pipelines ----------------------------------------------------------------

    def _incoming_interest(
        self, face_id: int, interest: Interest, now: float, out: list[Action]
    ) -> None:
        counters = self.counters
        local = self._faces.get(face_id)
        if local is None:
            counters.unknown_face += 1
            return
        counters.in_interests += 1
        name = interest.name
        comps = name.components
        if comps and not local and comps[0] == _LOCALHOST:
            counters.scope_violations += 1
            return
        if interest.hop_limit == 0 and not local:
            counters.hop_limit += 1
            self._outgoing_nack(face_id, interest, NackReason.HOP_LIMIT, out)
            return
        if self.dnl.has(name, interest.digest, interest.nonce, now):
            self._interest_loop(face_id, interest, out)
            return
        entry = self.pit.find(interest)
        if entry is not None:
            if _is_looping(entry, face_id, interest.nonce):
                self._interest_loop(face_id, interest, out)
                return
            # Pending already: the CS was consulted when the entry was made.
            self._cs_miss(face_id, local, interest, entry, now, out)
            return
        if comps and comps[0] in _SCOPED:
            self._cs_miss(face_id, local, interest, None, now, out)
            return
        data = self.cs.lookup(interest, now)
        if data is not None:
            self._cs_hit(face_id, data, out)
        else:
            counters.cs_misses += 1
            self._cs_miss(face_id, local, interest, None, now, out)

    def _interest_loop(self, face_id: int, interest: Interest, out: list[Action]) -> None:
        self.counters.duplicates += 1
        self._outgoing_nack(face_id, interest, NackReason.DUPLICATE, out)

    def _cs_hit(self, face_id: int, data: Data, out: list[Action]) -> None:
        counters = self.counters
        counters.cs_hits += 1
        counters.out_data += 1
        out.append(SendData(face_id, data))

    def _cs_miss(
        self,
        face_id: int,
        local: bool,
        interest: Interest,
        entry: PitEntry | None,
        now: float,
        out: list[Action],
    ) -> None:
        pit = self.pit
        created = entry is None
        if entry is None:
            entry = pit.insert(interest)
            if entry is None:
                self.counters.congestion += 1
                self._outgoing_nack(face_id, interest, NackReason.CONGESTION, out)
                return
        in_rec = entry.in_records.get(face_id)
        if in_rec is not None and in_rec.nonce == interest.nonce:
            # The same Interest again on the same link: refresh it, nothing new to forward.
            pit.insert_in_record(entry, face_id, interest, now)
            return
        retransmission = in_rec is not None
        pending = not created and entry.has_pending_out_record(now)
        if pit.insert_in_record(entry, face_id, interest, now) is None:
            self.counters.congestion += 1
            self._outgoing_nack(face_id, interest, NackReason.CONGESTION, out)
            if created:
                pit.remove(entry)
            return
        if pending:
            if not retransmission:
                self.counters.aggregated += 1
                return
            if self._suppress_retransmission(entry, now):
                self.counters.suppressed += 1
                return
        nexthops, reason = self._eligible_nexthops(entry, interest, local)
        if not nexthops:
            self._reject(entry, face_id, interest, reason, now, out)
            return
        strategy = self._strategy_choice(entry.name)[1]
        for upstream in strategy.after_receive_interest(entry, face_id, nexthops, now):
            self._outgoing_interest(entry, upstream, interest, now, out, strategy)

    def _suppress_retransmission(self, entry: PitEntry, now: float) -> bool:
        """Whether a consumer's retransmission for ``entry``, pending upstream, is held back: a
        copy went upstream less than the entry's suppression interval ago. Consumers that share
        an entry each retransmit on their own timer; without this, every one of their
        retransmissions went upstream again. A retransmission let through doubles the interval
        (``retx_suppression_initial`` up to ``retx_suppression_max``)."""
        last = 0.0
        for rec in entry.out_records.values():
            if rec.sent_at > last:
                last = rec.sent_at
        interval = entry.retx_interval
        if interval <= 0.0:
            interval = self.config.retx_suppression_initial
        if now - last < interval:
            return True
        interval *= 2
        cap = self.config.retx_suppression_max
        entry.retx_interval = interval if interval < cap else cap
        return False

    def _reject(
        self,
        entry: PitEntry,
        face_id: int,
        interest: Interest,
        reason: NackReason,
        now: float,
        out: list[Action],
    ) -> None:
        """No upstream for this downstream: Nack it at once, drop its in-record."""
        if reason is NackReason.NO_ROUTE:
            self.counters.no_route += 1
        else:
            self.counters.hop_limit += 1
        self._outgoing_nack(face_id, interest, reason, out)
        self.pit.remove_in_record(entry, face_id)
        if not entry.in_records:
            self.pit.remove(entry)
            self._interest_finalize(entry, now, expired=False)

    def _eligible_nexthops(
        self, entry: PitEntry, interest: Interest, ingress_local: bool
    ) -> tuple[list[NextHop], NackReason]:
        """Next hops the Interest may go to, and the Nack reason to use if there are none."""
        fib_entry = self.fib.lpm(entry.name)
        if fib_entry is None:
            return [], NackReason.NO_ROUTE
        comps = entry.name.components
        scope_local = bool(comps) and (
            comps[0] == _LOCALHOST or (comps[0] == _LOCALHOP and not ingress_local)
        )
        hop_exhausted = interest.hop_limit <= 1
        faces = self._faces
        downstream = entry.in_records
        eligible: list[NextHop] = []
        blocked_by_hop_limit = False
        for hop in fib_entry.nexthops:
            f = hop.face_id
            if f in downstream:
                continue
            local = faces.get(f)
            if local is None:
                continue
            if not local:
                if scope_local:
                    continue
                if hop_exhausted:
                    blocked_by_hop_limit = True
                    continue
            eligible.append(hop)
        if eligible or not blocked_by_hop_limit:
            return eligible, NackReason.NO_ROUTE
        return eligible, NackReason.HOP_LIMIT

    def _outgoing_interest(
        self,
        entry: PitEntry,
        face_id: int,
        interest: Interest,
        now: float,
        out: list[Action],
        strategy: Strategy | None = None,
        nonce: int | None = None,
    ) -> None:
        hop = interest.hop_limit - 1 if interest.hop_limit > 0 else 0
        if hop > self.config.max_hop_limit:
            hop = self.config.max_hop_limit
        if nonce is None:
            nonce = interest.nonce
        fwd = _with_hop_limit(interest, hop, nonce)
        self.pit.insert_out_record(entry, face_id, nonce, now, interest.lifetime_ms / 1000.0)
        self.counters.out_interests += 1
        out.append(SendInterest(face_id, fwd))
        if strategy is not None and strategy.uses_retry_timer:
            delay = strategy.retry_timeout(entry, face_id, now)
            if delay is not None:
                retry = self._retry
                self._retry_seq += 1
                heapq.heappush(retry, (now + delay, self._retry_seq, entry, face_id, nonce))
                if len(retry) > 2 * len(self.pit) + 4096:
                    # answered Interests leave their timers behind: keep the heap O(PIT)
                    retry[:] = [t for t in retry if self._retry_pending(t[2], t[3], t[4])]
                    heapq.heapify(retry)

    def _out_record_timeout(
        self, entry: PitEntry, face_id: int, now: float, out: list[Action]
    ) -> None:
        """A strategy's retry timer fired: ``face_id`` has not answered and the entry is still
        pending. The strategy may name other upstreams; they get the Interest with a new nonce."""
        strategy = self._strategy_choice(entry.name)[1]
        interest = entry.interest
        nexthops, _ = self._eligible_nexthops(entry, interest, self._ingress_local(entry))
        if not nexthops:
            return
        used = {rec.nonce for rec in entry.out_records.values()}
        nonce = entry.out_records[face_id].nonce
        for upstream in strategy.after_retry_timeout(entry, face_id, nexthops, now):
            nonce = _next_nonce(nonce)
            while nonce in used or nonce == interest.nonce:
                nonce = _next_nonce(nonce)
            used.add(nonce)
            self.counters.retried += 1
            self._outgoing_interest(entry, upstream, interest, now, out, strategy, nonce)

    def _interest_finalize(self, entry: PitEntry, now: float, *, expired: bool) -> None:
        """The entry is gone unsatisfied: remember its nonces, tell the strategy who timed out.

        No packet is sent: downstreams find out by their own timeout.
        """
        dnl = self.dnl
        name = entry.name
        digest = entry.digest
        silent: list[int] = []
        for rec in entry.out_records.values():
            dnl.add(name, digest, rec.nonce, now)
            if rec.nack_reason is None:
                silent.append(rec.face_id)
        if expired and silent:
            self._strategy_choice(name)[1].on_timeout(entry, silent, now)

    # -- Data pipelines --------------------------------------------------------------------

    def _incoming_data(self, face_id: int, data: Data, now: float, out: list[Action]) -> None:
        counters = self.counters
        local = self._faces.get(face_id)
        if local is None:
            counters.unknown_face += 1
            return
        counters.in_data += 1
        comps = data.name.components
        if comps and not local and comps[0] == _LOCALHOST:
            counters.scope_violations += 1
            return
        # Digest-restricted entries are found by blake3(content) only, so a Data whose content
        # does not hash to what was asked for matches nothing: it is unsolicited.
        entries = self.pit.match_data(data)
        if not entries:
            self._data_unsolicited(face_id, data)
            return
        if not comps or comps[0] not in _SCOPED:
            self.cs.insert(data, now)
        pit = self.pit
        dnl = self.dnl
        downstream: dict[int, None] = {}
        for entry in entries:
            out_rec = entry.out_records.get(face_id)
            rtt = None if out_rec is None else now - out_rec.sent_at
            self._strategy_choice(entry.name)[1].after_receive_data(entry, face_id, rtt, now)
            for f, in_rec in entry.in_records.items():
                if f != face_id and in_rec.expiry > now:
                    downstream[f] = None
            name = entry.name
            digest = entry.digest
            for out_rec in entry.out_records.values():
                dnl.add(name, digest, out_rec.nonce, now)
            pit.remove(entry)
            counters.satisfied += 1
        for f in downstream:
            self._outgoing_data(f, data, out)

    def _data_unsolicited(self, face_id: int, data: Data) -> None:
        self.counters.unsolicited_data += 1

    def _outgoing_data(self, face_id: int, data: Data, out: list[Action]) -> None:
        local = self._faces.get(face_id)
        if local is None:
            return
        comps = data.name.components
        if comps and not local and comps[0] == _LOCALHOST:
            self.counters.scope_violations += 1
            return
        self.counters.out_data += 1
        out.append(SendData(face_id, data))

    # -- Nack pipelines --------------------------------------------------------------------

    def _incoming_nack(self, face_id: int, nack: Nack, now: float, out: list[Action]) -> None:
        counters = self.counters
        local = self._faces.get(face_id)
        if local is None:
            counters.unknown_face += 1
            return
        counters.in_nacks += 1
        entry = self.pit.find(nack.interest)
        out_rec = None if entry is None else entry.out_records.get(face_id)
        if entry is None or out_rec is None or out_rec.nonce != nack.interest.nonce:
            counters.nacks_unmatched += 1
            return
        self._nacked(entry, face_id, out_rec, nack.reason, now, out)

    def _data_refused(self, face_id: int, data: Data, now: float, out: list[Action]) -> None:
        """The node refused ``data`` from upstream ``face_id``: every entry it would satisfy
        that was sent there takes it as that upstream's ``refused`` Nack (another next hop is
        tried, or downstream hears why). Entries not sent there, or already Nacked by it, are
        left alone, so a peer's unsolicited forgeries make no Nacks."""
        if face_id not in self._faces:
            self.counters.unknown_face += 1
            return
        for entry in self.pit.match_data(data):
            out_rec = entry.out_records.get(face_id)
            if out_rec is None or out_rec.nack_reason is not None:
                continue
            self.counters.refused += 1
            self._nacked(entry, face_id, out_rec, NackReason.REFUSED, now, out)

    def _nacked(
        self,
        entry: PitEntry,
        face_id: int,
        out_rec: OutRecord,
        reason: NackReason,
        now: float,
        out: list[Action],
    ) -> None:
        """Upstream ``face_id`` Nacked ``entry`` (or its answer was refused): retry elsewhere,
        or, once every upstream has, Nack downstream with the least severe reason."""
        out_rec.nack_reason = reason
        interest = entry.interest
        strategy = self._strategy_choice(entry.name)[1]
        nexthops, _ = self._eligible_nexthops(entry, interest, self._ingress_local(entry))
        retries = strategy.after_receive_nack(entry, face_id, reason, nexthops, now)
        for upstream in retries:
            self._outgoing_interest(entry, upstream, interest, now, out, strategy)
        if retries or not entry.all_out_records_nacked():
            return
        reasons = [rec.nack_reason for rec in entry.out_records.values() if rec.nack_reason]
        # A duplicate says only that a path looped back; what another path said about the
        # name wins ("not found" from the producer, not "duplicate" from a neighbour that
        # also asked it).
        informative = [r for r in reasons if r is not NackReason.DUPLICATE] or reasons
        told = min(informative, key=_SEVERITY.__getitem__)
        for f, rec in entry.in_records.items():
            if rec.expiry > now:
                self._outgoing_nack(f, rec.interest, told, out)
        self.pit.remove(entry)
        self._interest_finalize(entry, now, expired=False)

    def _outgoing_nack(
        self, face_id: int, interest: Interest, reason: NackReason, out: list[Action]
    ) -> None:
        if face_id not in self._faces:
            return
        self.counters.out_nacks += 1
        out.append(SendNack(face_id, Nack(interest, reason)))

    # -- helpers ---------------------------------------------------------------------------

    def _strategy_choice(self, name: Name) -> tuple[str, Strategy]:
        tree = self._strategies
        choice = self._root_strategy if len(tree) == 1 else tree.longest_prefix_match(name)
        assert choice is not None  # the root always has a choice
        return choice

    def _ingress_local(self, entry: PitEntry) -> bool:
        """Whether every downstream of ``entry`` is local (for the /localhop rule)."""
        faces = self._faces
        return all(faces.get(f, False) for f in entry.in_records)


def _is_looping(entry: PitEntry, face_id: int, nonce: int) -> bool:
    """The nonce is already in ``entry`` from another downstream, or it went upstream: a loop.

    The same nonce again from the same downstream is a link-level duplicate, not a loop.
    """
    own = entry.in_records.get(face_id)
    if own is not None and own.nonce == nonce:
        return False
    for rec in entry.in_records.values():
        if rec.nonce == nonce:
            return True
    return any(out_rec.nonce == nonce for out_rec in entry.out_records.values())


def _next_nonce(nonce: int) -> int:
    """Another 32-bit nonce, derived from ``nonce`` (an odd multiplier plus an offset is a
    bijection mod 2**32, so distinct nonces stay distinct). The core has no randomness."""
    return (nonce * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF


def _with_hop_limit(interest: Interest, hop_limit: int, nonce: int | None = None) -> Interest:
    """``interest`` with another hop limit (and nonce), without re-validating the fields of a
    valid Interest.

    Equal to ``dataclasses.replace(interest, hop_limit=hop_limit)`` (a test holds it to that and
    to Interest's field list) at half the cost; it runs once per forwarded Interest.
    """
    return _prechecked_interest(
        interest.name,
        interest.nonce if nonce is None else nonce,
        interest.lifetime_ms,
        hop_limit,
        interest.can_be_prefix,
        interest.must_be_fresh,
        interest.digest,
    )
