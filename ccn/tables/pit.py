"""The Pending Interest Table: Interests forwarded and not yet answered.

An entry is keyed by (name, can_be_prefix, must_be_fresh, digest) and holds in-records (which
downstream faces asked, with which nonce, until when) and out-records (which upstream faces it was
sent to, with which nonce, when, and whether they Nacked). The table makes no decisions: it
stores records, finds the entries a Data satisfies, and hands back expired entries; the forwarder
decides what to send. Time is passed in as ``now`` (monotonic seconds).

Data matching (see docs/forwarder.md):

- an entry with a digest is satisfied by Data whose ``digest`` equals it, whatever the names
  (the Interest name is only a locator), found through the digest index;
- an entry without a digest is satisfied by named Data with the same name, or, if it is
  can-be-prefix, by named Data its name is a prefix of. Nameless Data matches digests only.

Bounds: at most ``max_entries`` entries, and at most ``max_per_face`` in-records per downstream
face, so one face cannot fill the table.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TypeVar

from ccn.packet import Data, Interest, NackReason

DEFAULT_MAX_ENTRIES = 65_536
DEFAULT_MAX_PER_FACE = 16_384

K = TypeVar("K")
# (name components, can_be_prefix, must_be_fresh, digest): all hashed and compared in C.
PitKey = tuple[tuple[bytes, ...], bool, bool, bytes | None]


class InRecord:
    """A downstream face waiting for Data: the Interest it sent and when that Interest expires."""

    __slots__ = ("expiry", "face_id", "interest", "nonce")

    def __init__(self, face_id: int, interest: Interest, expiry: float) -> None:
        self.face_id = face_id
        self.interest = interest
        self.nonce = interest.nonce
        self.expiry = expiry


class OutRecord:
    """An upstream face the Interest was sent to."""

    __slots__ = ("expiry", "face_id", "nack_reason", "nonce", "sent_at")

    def __init__(self, face_id: int, nonce: int, sent_at: float, expiry: float) -> None:
        self.face_id = face_id
        self.nonce = nonce
        self.sent_at = sent_at
        self.expiry = expiry
        self.nack_reason: NackReason | None = None


class PitEntry:
    """One pending Interest key. ``interest`` is the latest Interest received for it.

    ``strategy_info`` is opaque to the PIT: the strategy that forwards the entry may keep state
    there. ``expiry`` is the latest in-record expiry; past it the entry is dead.
    """

    __slots__ = (
        "_heap_at",
        "_live",
        "can_be_prefix",
        "digest",
        "expiry",
        "in_records",
        "interest",
        "key",
        "must_be_fresh",
        "name",
        "out_records",
        "retx_interval",
        "strategy_info",
    )

    def __init__(self, interest: Interest, key: PitKey) -> None:
        self.key = key
        self.name = interest.name
        self.can_be_prefix = interest.can_be_prefix
        self.must_be_fresh = interest.must_be_fresh
        self.digest = interest.digest
        self.interest = interest
        self.in_records: dict[int, InRecord] = {}
        self.out_records: dict[int, OutRecord] = {}
        self.expiry = 0.0
        self.strategy_info: object | None = None
        #: The forwarder's retransmission-suppression interval (0: not started)
        self.retx_interval = 0.0
        self._heap_at = -1.0
        self._live = True

    def has_pending_out_record(self, now: float) -> bool:
        """Whether some upstream may still answer: an out-record neither Nacked nor expired."""
        for rec in self.out_records.values():
            if rec.nack_reason is None and rec.expiry > now:
                return True
        return False

    def all_out_records_nacked(self) -> bool:
        if not self.out_records:
            return False
        return all(rec.nack_reason is not None for rec in self.out_records.values())

    def __repr__(self) -> str:
        flags = "".join(f for f, on in (("P", self.can_be_prefix), ("F", self.must_be_fresh)) if on)
        dig = f" digest={self.digest.hex()[:12]}" if self.digest else ""
        return (
            f"PitEntry({str(self.name)!r}{' ' + flags if flags else ''}{dig}, "
            f"in={sorted(self.in_records)}, out={sorted(self.out_records)})"
        )


class Pit:
    __slots__ = (
        "_by_digest",
        "_by_name",
        "_entries",
        "_heap",
        "_per_face",
        "_prefix_lengths",
        "_seq",
        "expired",
        "inserts",
        "max_entries",
        "max_per_face",
        "rejected",
    )

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_per_face: int = DEFAULT_MAX_PER_FACE
    ) -> None:
        self.max_entries = max_entries
        self.max_per_face = max_per_face
        self._entries: dict[PitKey, PitEntry] = {}
        # Entries without a digest, by name components: exact lookups, and prefix lookups for
        # can-be-prefix entries by slicing a Data name's components (no Name is built).
        self._by_name: dict[tuple[bytes, ...], list[PitEntry]] = {}
        # length -> number of can-be-prefix entries whose name has that many components, so a
        # named Data only probes the prefix lengths that can match.
        self._prefix_lengths: dict[int, int] = {}
        self._by_digest: dict[bytes, list[PitEntry]] = {}
        self._per_face: dict[int, int] = {}
        # (expiry, seq, entry); stale items (entry gone or expiry moved) are skipped lazily.
        self._heap: list[tuple[float, int, PitEntry]] = []
        self._seq = 0
        self.inserts = 0
        self.expired = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def schedules(self) -> int:
        """How many expiries were scheduled so far: unchanged means no earlier one appeared."""
        return self._seq

    def __iter__(self) -> Iterator[PitEntry]:
        return iter(list(self._entries.values()))

    def face_in_records(self, face_id: int) -> int:
        return self._per_face.get(face_id, 0)

    # -- lookup and insertion --------------------------------------------------------------

    def find(self, interest: Interest) -> PitEntry | None:
        i = interest
        return self._entries.get((i.name.components, i.can_be_prefix, i.must_be_fresh, i.digest))

    def insert(self, interest: Interest) -> PitEntry | None:
        """Create the entry for ``interest``'s key (there must be none); ``None`` if full."""
        if len(self._entries) >= self.max_entries:
            self.rejected += 1
            return None
        comps = interest.name.components
        key = (comps, interest.can_be_prefix, interest.must_be_fresh, interest.digest)
        entry = PitEntry(interest, key)
        self._entries[key] = entry
        if entry.digest is not None:
            self._by_digest.setdefault(entry.digest, []).append(entry)
        else:
            self._by_name.setdefault(comps, []).append(entry)
            if entry.can_be_prefix:
                n = len(comps)
                self._prefix_lengths[n] = self._prefix_lengths.get(n, 0) + 1
        self.inserts += 1
        return entry

    def insert_in_record(
        self, entry: PitEntry, face_id: int, interest: Interest, now: float
    ) -> InRecord | None:
        """Add or refresh ``face_id``'s in-record; ``None`` if that would exceed the face's bound.

        The in-record expires after the Interest lifetime; the entry lives as long as its latest
        in-record.
        """
        expiry = now + interest.lifetime_ms / 1000.0
        rec = entry.in_records.get(face_id)
        if rec is None:
            count = self._per_face.get(face_id, 0)
            if count >= self.max_per_face:
                self.rejected += 1
                return None
            self._per_face[face_id] = count + 1
            rec = entry.in_records[face_id] = InRecord(face_id, interest, expiry)
        else:
            rec.interest = interest
            rec.nonce = interest.nonce
            rec.expiry = expiry
        entry.interest = interest
        if expiry > entry.expiry:
            entry.expiry = expiry
            self._schedule(entry)
        return rec

    def insert_out_record(
        self, entry: PitEntry, face_id: int, nonce: int, now: float, lifetime: float
    ) -> OutRecord:
        """Add or renew the out-record for ``face_id`` (clears any Nack it had)."""
        rec = entry.out_records.get(face_id)
        if rec is None:
            rec = entry.out_records[face_id] = OutRecord(face_id, nonce, now, now + lifetime)
        else:
            rec.nonce = nonce
            rec.sent_at = now
            rec.expiry = now + lifetime
            rec.nack_reason = None
        return rec

    # -- removal ---------------------------------------------------------------------------

    def remove(self, entry: PitEntry) -> None:
        """Remove ``entry`` and its records. Removing an entry twice is harmless."""
        if not entry._live:
            return
        entry._live = False
        del self._entries[entry.key]
        per_face = self._per_face
        for face_id in entry.in_records:
            left = per_face[face_id] - 1
            if left:
                per_face[face_id] = left
            else:
                del per_face[face_id]
        if entry.digest is not None:
            _remove_from(self._by_digest, entry.digest, entry)
        else:
            comps = entry.name.components
            _remove_from(self._by_name, comps, entry)
            if entry.can_be_prefix:
                n = len(comps)
                left = self._prefix_lengths[n] - 1
                if left:
                    self._prefix_lengths[n] = left
                else:
                    del self._prefix_lengths[n]

    def remove_in_record(self, entry: PitEntry, face_id: int) -> None:
        if entry.in_records.pop(face_id, None) is not None:
            left = self._per_face[face_id] - 1
            if left:
                self._per_face[face_id] = left
            else:
                del self._per_face[face_id]

    def remove_face(self, face_id: int) -> tuple[list[PitEntry], list[PitEntry]]:
        """``face_id`` is gone: drop its in-records. Returns ``(removed, unanswered)``: the
        entries left with no in-record, removed; and the entries still pending that have an
        out-record to ``face_id`` without a Nack, which is left in place for the caller to
        settle (the face will never answer it).

        One pass over the table (there is no per-face index: a face going down is rare, and an
        index would cost every Interest sent): about 12 ms for 65 536 entries.
        """
        removed: list[PitEntry] = []
        unanswered: list[PitEntry] = []
        for entry in list(self._entries.values()):
            if face_id in entry.in_records:
                self.remove_in_record(entry, face_id)
                if not entry.in_records:
                    self.remove(entry)
                    removed.append(entry)
                    continue
            rec = entry.out_records.get(face_id)
            if rec is not None and rec.nack_reason is None:
                unanswered.append(entry)
        return removed, unanswered

    def waiting_on(self, face_id: int) -> list[PitEntry]:
        """The entries with an out-record to ``face_id`` that has no Nack (one pass)."""
        waiting: list[PitEntry] = []
        for entry in self._entries.values():
            rec = entry.out_records.get(face_id)
            if rec is not None and rec.nack_reason is None:
                waiting.append(entry)
        return waiting

    # -- Data matching ---------------------------------------------------------------------

    def match_data(self, data: Data) -> list[PitEntry]:
        """Every entry ``data`` satisfies (see the module docstring). Freshness is not checked:
        Data coming from upstream satisfies must-be-fresh Interests."""
        found: list[PitEntry] = []
        if self._by_digest:
            by_digest = self._by_digest.get(data.digest)
            if by_digest is not None:
                found.extend(by_digest)
        comps = data.name.components
        if not comps:
            return found
        exact = self._by_name.get(comps)
        if exact is not None:
            found.extend(exact)
        if self._prefix_lengths:
            by_name = self._by_name
            n = len(comps)
            for length in self._prefix_lengths:
                if length < n:
                    candidates = by_name.get(comps[:length])
                    if candidates is not None:
                        found.extend(e for e in candidates if e.can_be_prefix)
        return found

    # -- expiry ----------------------------------------------------------------------------

    def _schedule(self, entry: PitEntry) -> None:
        self._seq += 1
        entry._heap_at = entry.expiry
        heap = self._heap
        heapq.heappush(heap, (entry.expiry, self._seq, entry))
        if len(heap) > 2 * len(self._entries) + 1024:
            # Satisfied entries leave their items behind; rebuild so the heap stays O(entries).
            heap[:] = [item for item in heap if item[2]._live and item[2]._heap_at == item[0]]
            heapq.heapify(heap)

    def next_expiry(self) -> float | None:
        """When the earliest entry expires, or ``None`` if the table is empty."""
        heap = self._heap
        while heap:
            at, _, entry = heap[0]
            if entry._live and entry._heap_at == at:
                return at
            heapq.heappop(heap)
        return None

    def expire(self, now: float) -> list[PitEntry]:
        """Remove and return every entry whose expiry is ``<= now``."""
        out: list[PitEntry] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, entry = heapq.heappop(heap)
            if entry._live and entry._heap_at == at:
                self.remove(entry)
                out.append(entry)
        self.expired += len(out)
        return out


def _remove_from(index: dict[K, list[PitEntry]], key: K, entry: PitEntry) -> None:
    bucket = index[key]
    bucket.remove(entry)
    if not bucket:
        del index[key]
