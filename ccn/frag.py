"""Link-level fragmentation for datagram faces, sans-IO: packets larger than a datagram are cut
into fragments and put back together by the receiver.

Rules this module keeps:

- A datagram is either one whole packet (its first byte is a msgpack array header) or one
  fragment, whose first byte is :data:`MARKER` (0xC1, a byte msgpack never uses), so the two can
  never be confused. Format (docs/protocol.md §7)::

      0xC1 | version (1) | packet id (u32) | index (u16) | count (u16) | payload

  big-endian; ``2 <= count``, ``index < count``; the packet is the payloads joined in index order.
- A lost fragment loses its packet, never corrupts one: a packet is handed back only when every
  index ``0 .. count-1`` arrived with one consistent ``count``; a fragment that contradicts the
  others (another count, another payload at an index already held) drops the whole packet.
- Reassembly is bounded: at most ``max_packets`` packets and ``max_bytes`` payload bytes pending
  (the oldest is dropped to make room), each pending at most ``timeout`` seconds, and no packet
  beyond ``max_packet_size``. Time is passed in as ``now``; there is no clock and no I/O here.
- Lost fragments can be asked for again (unicast): a receiver made with ``ask_after`` asks the
  sender for the fragments of a packet still missing once that packet's fragments have stopped
  coming for a while (:meth:`Reassembler.asks`); a sender made with ``keep_bytes`` keeps what it
  fragmented for ``keep_for`` seconds and answers such a request with the fragments named
  (:meth:`Fragmenter.resend`). So a packet larger than a shallow queue on the path still gets
  through, a part per round, where sending it whole again would lose the same part each time. A
  request is one datagram (docs/protocol.md §7)::

      0xC1 | kind 2 (1) | packet id (u32) | rate (u32) | (first index (u16), last index (u16)) ...

  ``rate`` is the bytes per second the receiver got from this sender lately (0: unknown), which
  the sender paces its packets to (:mod:`ccn.pacing`).
"""

from __future__ import annotations

import itertools
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import NamedTuple

from ccn.codec import MAX_PACKET_SIZE

MARKER = 0xC1
#: The second byte of a fragment (its format version) ...
VERSION = 1
#: ... and of a request for missing fragments.
ASK = 2
_HEADER = struct.Struct(">BBIHH")
HEADER_SIZE = _HEADER.size  # 10
_ASK_HEADER = struct.Struct(">BBII")
_RANGE = struct.Struct(">HH")
MAX_FRAGMENTS = 0xFFFF
#: Smallest payload a fragment may carry (an MTU below this is a configuration error).
MIN_PAYLOAD = 64

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_PACKETS = 256
DEFAULT_MAX_BYTES = 16 << 20
#: A receiver asks for a packet's missing fragments when none of its fragments came for this
#: long (or four times the packet's mean gap between fragments, if longer: a slow link).
ASK_AFTER = 0.02
#: Requests a receiver makes per packet, and that a sender answers per packet it keeps.
MAX_ASKS = 8
#: The fewest fragments one round of requests asks for (see :meth:`Reassembler.asks`).
MIN_ROUND = 16


class FragmentError(ValueError):
    """A fragmentation request that cannot be met (packet too large for the fragment count)."""


def is_fragment(datagram: bytes | memoryview) -> bool:
    return len(datagram) > 0 and datagram[0] == MARKER


def parse_header(datagram: bytes | memoryview) -> tuple[int, int, int] | None:
    """``(packet id, index, count)`` of a fragment with a well-formed header and some
    payload; None for anything else."""
    if len(datagram) <= HEADER_SIZE:
        return None
    marker, version, pid, index, count = _HEADER.unpack_from(datagram)
    if marker != MARKER or version != VERSION or count < 2 or index >= count:
        return None
    return pid, index, count


def is_request(datagram: bytes | memoryview) -> bool:
    """Whether ``datagram`` (one for which :func:`is_fragment` holds) asks for fragments."""
    return len(datagram) > 1 and datagram[1] == ASK


def _parts(packet_size: int, max_datagram: int) -> tuple[int, int]:
    """``(payload per fragment, fragment count)`` for a packet that does not fit whole."""
    payload = max_datagram - HEADER_SIZE
    if payload < MIN_PAYLOAD:
        raise FragmentError(f"datagram size {max_datagram} is too small to fragment into")
    count = -(-packet_size // payload)
    if count > MAX_FRAGMENTS:
        raise FragmentError(f"packet of {packet_size} bytes needs more than {MAX_FRAGMENTS} parts")
    return payload, count


def fragment(
    packet: bytes, max_datagram: int, packet_id: int, indexes: Iterable[int] | None = None
) -> list[bytes]:
    """Cut ``packet`` into datagrams of at most ``max_datagram`` bytes (only the fragments at
    ``indexes``, if given; those beyond the last are left out).

    A packet that fits is returned whole (one datagram, no header).
    """
    if len(packet) <= max_datagram:
        return [packet]
    payload, count = _parts(len(packet), max_datagram)
    pid = packet_id & 0xFFFFFFFF
    view = memoryview(packet)
    pack = _HEADER.pack
    return [
        pack(MARKER, VERSION, pid, i, count) + view[i * payload : (i + 1) * payload]
        for i in (range(count) if indexes is None else indexes)
        if i < count
    ]


class Ask(NamedTuple):
    """A parsed request for missing fragments."""

    packet_id: int
    #: (first, last) index runs, ascending, not overlapping
    runs: tuple[tuple[int, int], ...]
    #: bytes/s the receiver got from the sender lately (0: unknown)
    rate: int

    def indexes(self, count: int) -> list[int]:
        """The indexes asked for, below ``count`` (the packet's fragments): never more than
        ``count`` of them, whatever the runs say."""
        out: list[int] = []
        for first, last in self.runs:
            if first >= count:
                break
            out.extend(range(first, min(last, count - 1) + 1))
        return out


def ask(packet_id: int, missing: list[int], max_datagram: int, rate: int = 0) -> bytes:
    """A request for the fragments ``missing`` (ascending) of packet ``packet_id``, as runs of
    consecutive indexes; as many runs as fit in ``max_datagram`` bytes (the rest are asked for
    in a later round). ``rate``: bytes/s received from the sender lately (0: unknown)."""
    runs: list[bytes] = []
    room = (max_datagram - _ASK_HEADER.size) // _RANGE.size
    first = last = missing[0]
    for i in missing[1:]:
        if i == last + 1:
            last = i
            continue
        runs.append(_RANGE.pack(first, last))
        first = last = i
    runs.append(_RANGE.pack(first, last))
    header = _ASK_HEADER.pack(MARKER, ASK, packet_id & 0xFFFFFFFF, min(rate, 0xFFFFFFFF))
    return header + b"".join(runs[:room])


def parse_ask(datagram: bytes | memoryview) -> Ask | None:
    """The request ``datagram`` holds, if well-formed; None for anything else."""
    size = len(datagram) - _ASK_HEADER.size
    if size < _RANGE.size or size % _RANGE.size:
        return None
    marker, kind, pid, rate = _ASK_HEADER.unpack_from(datagram)
    if marker != MARKER or kind != ASK:
        return None
    runs: list[tuple[int, int]] = []
    previous = -1
    for first, last in _RANGE.iter_unpack(datagram[_ASK_HEADER.size :]):
        if last < first or first <= previous:
            return None  # runs ascend and do not overlap
        runs.append((first, last))
        previous = last
    return Ask(pid, tuple(runs), rate)


@dataclass(slots=True)
class ResendCounters:
    #: requests answered, and the fragments sent again for them
    asked: int = 0
    resent: int = 0
    #: requests not answered: malformed, for a packet no longer kept, or past MAX_ASKS
    invalid: int = 0
    unknown: int = 0
    refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Kept:
    __slots__ = ("asks", "packet", "size", "until")

    def __init__(self, packet: bytes, size: int, until: float) -> None:
        self.packet = packet
        self.size = size  # the datagram size it was cut at (max_datagram may change since)
        self.until = until
        self.asks = 0


class Fragmenter:
    """Numbers the packets of one sender; ids start at ``first_id`` (pass a random one, so a
    restarted sender does not reuse the ids of pending packets). With ``keep_bytes``, it keeps
    the packets it fragmented (at most that many bytes, each at most ``keep_for`` seconds) to
    answer requests for their fragments (:meth:`resend`)."""

    __slots__ = (
        "_ids",
        "_kept",
        "_kept_bytes",
        "_next",
        "counters",
        "keep_bytes",
        "keep_for",
        "max_datagram",
    )

    def __init__(
        self,
        max_datagram: int,
        first_id: int = 0,
        *,
        keep_bytes: int = 0,
        keep_for: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.max_datagram = max_datagram
        self._next = first_id & 0xFFFFFFFF
        self.keep_bytes = keep_bytes
        self.keep_for = keep_for
        self.counters = ResendCounters()
        self._kept: OrderedDict[int, _Kept] = OrderedDict()  # oldest first
        self._ids: deque[tuple[float, int]] = deque()  # (when, packet id) fragmented lately
        self._kept_bytes = 0

    @property
    def kept_bytes(self) -> int:
        return self._kept_bytes

    def fragment(self, packet: bytes, now: float = 0.0) -> list[bytes]:
        if len(packet) <= self.max_datagram:
            return [packet]
        pid = self._next
        self._next = (pid + 1) & 0xFFFFFFFF
        datagrams = fragment(packet, self.max_datagram, pid)
        if self.keep_bytes:
            self._ids.append((now, pid))
            self._trim_ids(now)
        if len(packet) <= self.keep_bytes:
            self._forget(now, room=len(packet))
            self._kept[pid] = _Kept(packet, self.max_datagram, now + self.keep_for)
            self._kept_bytes += len(packet)
        return datagrams

    def sent_lately(self, packet_id: int, now: float) -> bool:
        """Whether packet ``packet_id`` was fragmented within the last ``keep_for`` seconds
        (kept or not: what is kept is bounded in bytes too), by a sender that keeps."""
        self._trim_ids(now)
        if not self._ids:
            return False
        oldest = self._ids[0][1]
        return (packet_id - oldest) & 0xFFFFFFFF < (self._next - oldest) & 0xFFFFFFFF

    def _trim_ids(self, now: float) -> None:
        ids = self._ids
        while ids and now - ids[0][0] > self.keep_for:
            ids.popleft()

    def resend(self, request: Ask | None, now: float) -> list[bytes]:
        """The fragments a receiver's ``request`` (:func:`parse_ask`; None: malformed) asks
        for, if this sender still keeps their packet and has not answered :data:`MAX_ASKS`
        requests for it yet."""
        c = self.counters
        if request is None:
            c.invalid += 1
            return []
        pid = request.packet_id
        self._forget(now)
        kept = self._kept.get(pid)
        if kept is None:
            c.unknown += 1
            return []
        if kept.asks >= MAX_ASKS:
            c.refused += 1
            return []
        kept.asks += 1
        count = _parts(len(kept.packet), kept.size)[1]
        datagrams = fragment(kept.packet, kept.size, pid, request.indexes(count))
        c.asked += 1
        c.resent += len(datagrams)
        return datagrams

    def _forget(self, now: float, room: int = 0) -> None:
        """Drop kept packets past their time, and the oldest until ``room`` more bytes fit."""
        kept = self._kept
        while kept:
            pid, oldest = next(iter(kept.items()))
            if oldest.until > now and self._kept_bytes + room <= self.keep_bytes:
                break
            del kept[pid]
            self._kept_bytes -= len(oldest.packet)


@dataclass(slots=True)
class ReassemblyCounters:
    fragments: int = 0
    reassembled: int = 0
    #: fragments dropped: bad header, inconsistent with the packet's other fragments, too big
    invalid: int = 0
    duplicates: int = 0
    #: packets given up: timed out, or evicted to stay within the bounds
    timed_out: int = 0
    evicted: int = 0
    #: requests for missing fragments sent (receivers made with ``ask_after``)
    asked: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Pending:
    __slots__ = (
        "asked", "asks", "burst", "bytes", "count", "deadline", "first", "got", "idle", "parts"
    )  # fmt: skip

    def __init__(self, count: int, deadline: float, now: float) -> None:
        self.count = count
        self.deadline = deadline
        self.parts: dict[int, bytes] = {}
        self.bytes = 0
        self.first = now  # when its first fragment came
        self.got = self.asked = now  # when the latest fragment came; when it was last asked for
        self.burst = 0.0  # the mean gap between its fragments before the first ask
        self.asks = 0
        self.idle = 0  # asks since the latest fragment came

    def ask_at(self, ask_after: float) -> float:
        """When to ask for the fragments still missing: ``ask_after`` (or four mean gaps
        between the fragments that came before the first ask, if longer: a slow link) after the
        latest fragment came or the last ask; twice that after an ask that brought nothing, four
        times after two or more (so the :data:`MAX_ASKS` asks of a packet that gets nothing more
        span about 0.5 s, the consumer's shortest retransmission timeout)."""
        wait = max(ask_after, 4 * self.burst) * (1 << min(self.idle, 2))
        return max(self.got, self.asked) + wait


class Reassembler:
    """Puts fragments from one sender back together. ``feed`` returns a whole packet or ``None``.
    With ``ask_after`` (seconds), :meth:`asks` gives the requests for missing fragments to send
    back to the sender."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_packets: int = DEFAULT_MAX_PACKETS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_packet_size: int = MAX_PACKET_SIZE,
        ask_after: float | None = None,
    ) -> None:
        self.timeout = timeout
        self.ask_after = ask_after
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.max_packet_size = max_packet_size
        self.counters = ReassemblyCounters()
        # packet id -> pending, oldest first (insertion order is deadline order)
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._bytes = 0
        # ids finished or given up recently: their stragglers (duplicates, late fragments) are
        # ignored rather than starting a packet that can never complete.
        self._dead: OrderedDict[int, float] = OrderedDict()
        # fragments that came since the last round of requests, and when that was
        self._since = 0
        self._round: float | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def feed(self, datagram: bytes | memoryview, now: float) -> bytes | None:
        """Take one fragment (``is_fragment(datagram)`` must hold); return the packet it
        completes, if any."""
        self.expire(now)
        c = self.counters
        c.fragments += 1
        header = parse_header(datagram)
        if header is None:
            c.invalid += 1
            return None
        pid, index, count = header
        if pid in self._dead:
            c.duplicates += 1
            return None
        payload = bytes(datagram[HEADER_SIZE:])
        entry = self._pending.get(pid)
        if entry is None:
            entry = _Pending(count, now + self.timeout, now)
            self._pending[pid] = entry
        elif entry.count != count:
            self._give_up(pid, now)
            c.invalid += 1
            return None
        held = entry.parts.get(index)
        if held is not None:
            if held == payload:
                c.duplicates += 1
                return None
            self._give_up(pid, now)
            c.invalid += 1
            return None
        size = len(payload)
        if entry.bytes + size > self.max_packet_size or size > self.max_bytes:
            self._give_up(pid, now)
            c.invalid += 1
            return None
        entry.parts[index] = payload
        self._since += 1
        if not entry.asks and len(entry.parts) > 1:
            entry.burst = (now - entry.first) / (len(entry.parts) - 1)
        entry.got = now
        entry.idle = 0
        entry.bytes += size
        self._bytes += size
        if len(entry.parts) == count:
            del self._pending[pid]
            self._bytes -= entry.bytes
            self._dead[pid] = now + self.timeout  # late duplicates must not start a packet
            c.reassembled += 1
            parts = entry.parts
            return b"".join(parts[i] for i in range(count))
        self._enforce_bounds(pid, now)
        return None

    def expire(self, now: float) -> None:
        """Give up packets pending past their deadline."""
        pending = self._pending
        while pending:
            pid, entry = next(iter(pending.items()))
            if entry.deadline > now:
                break
            self._give_up(pid, now)
            self.counters.timed_out += 1
        dead = self._dead
        while dead:
            pid, until = next(iter(dead.items()))
            if until > now and len(dead) <= 4 * self.max_packets:
                break
            del dead[pid]

    def next_deadline(self) -> float | None:
        """When :meth:`expire` (or, asking, :meth:`asks`) next has something to do."""
        pending = self._pending
        if not pending:
            return None
        first = next(iter(pending.values())).deadline
        ask_after = self.ask_after
        if ask_after is None:
            return first
        asks = (e.ask_at(ask_after) for e in pending.values() if e.asks < MAX_ASKS)
        return min(first, min(asks, default=first))

    def asks(self, now: float, max_datagram: int, rate: int = 0) -> list[bytes]:
        """Requests (datagrams of at most ``max_datagram`` bytes, reporting ``rate``: see
        :func:`ask`) for the fragments missing from each pending packet whose fragments stopped
        coming (see :data:`ASK_AFTER`), at most :data:`MAX_ASKS` per packet. None without
        ``ask_after``.

        A round asks for no more fragments in all than came in an ``ask_after`` before it (at
        the rate they came since the last round; at least :data:`MIN_ROUND`), the oldest packets
        first: what the path delivered is what it can take again, where asking for every
        fragment missing would overflow the queue that lost them once more. A packet left out
        waits ``ask_after`` for the next round."""
        ask_after = self.ask_after
        if ask_after is None:
            return []
        due = [
            (pid, e)
            for pid, e in self._pending.items()
            if e.asks < MAX_ASKS and e.ask_at(ask_after) <= now
        ]
        if not due:
            return []
        elapsed = None if self._round is None else now - self._round
        came = self._since if not elapsed else round(self._since * ask_after / elapsed)
        budget = max(MIN_ROUND, came)
        self._since, self._round = 0, now
        out: list[bytes] = []
        for pid, entry in due:
            entry.asked = now
            if budget <= 0:
                continue
            parts = entry.parts
            missing = list(
                itertools.islice((i for i in range(entry.count) if i not in parts), budget)
            )
            budget -= len(missing)
            out.append(ask(pid, missing, max_datagram, rate))
            entry.asks += 1
            entry.idle += 1
        self.counters.asked += len(out)
        return out

    def _enforce_bounds(self, keep: int, now: float) -> None:
        """Drop the oldest other packets until the bounds hold (``keep`` last of all)."""
        pending = self._pending
        while len(pending) > self.max_packets or self._bytes > self.max_bytes:
            victim = next((pid for pid in pending if pid != keep), keep)
            self._give_up(victim, now)
            self.counters.evicted += 1
            if victim == keep:
                break

    def _give_up(self, pid: int, now: float) -> None:
        entry = self._pending.pop(pid, None)
        if entry is not None:
            self._bytes -= entry.bytes
        self._dead[pid] = now + self.timeout
        self._dead.move_to_end(pid)
