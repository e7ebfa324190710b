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
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import asdict, dataclass

from ccn.codec import MAX_PACKET_SIZE

MARKER = 0xC1
VERSION = 1
_HEADER = struct.Struct(">BBIHH")
HEADER_SIZE = _HEADER.size  # 10
MAX_FRAGMENTS = 0xFFFF
#: Smallest payload a fragment may carry (an MTU below this is a configuration error).
MIN_PAYLOAD = 64

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_PACKETS = 256
DEFAULT_MAX_BYTES = 16 << 20


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


def fragment(packet: bytes, max_datagram: int, packet_id: int) -> list[bytes]:
    """Cut ``packet`` into datagrams of at most ``max_datagram`` bytes.

    A packet that fits is returned whole (one datagram, no header).
    """
    if len(packet) <= max_datagram:
        return [packet]
    payload = max_datagram - HEADER_SIZE
    if payload < MIN_PAYLOAD:
        raise FragmentError(f"datagram size {max_datagram} is too small to fragment into")
    count = -(-len(packet) // payload)
    if count > MAX_FRAGMENTS:
        raise FragmentError(f"packet of {len(packet)} bytes needs more than {MAX_FRAGMENTS} parts")
    pid = packet_id & 0xFFFFFFFF
    view = memoryview(packet)
    pack = _HEADER.pack
    return [
        pack(MARKER, VERSION, pid, i, count) + view[i * payload : (i + 1) * payload]
        for i in range(count)
    ]


class Fragmenter:
    """Numbers the packets of one sender; ids start at ``first_id`` (pass a random one, so a
    restarted sender does not reuse the ids of pending packets)."""

    __slots__ = ("_next", "max_datagram")

    def __init__(self, max_datagram: int, first_id: int = 0) -> None:
        self.max_datagram = max_datagram
        self._next = first_id & 0xFFFFFFFF

    def fragment(self, packet: bytes) -> list[bytes]:
        if len(packet) <= self.max_datagram:
            return [packet]
        pid = self._next
        self._next = (pid + 1) & 0xFFFFFFFF
        return fragment(packet, self.max_datagram, pid)


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

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Pending:
    __slots__ = ("bytes", "count", "deadline", "parts")

    def __init__(self, count: int, deadline: float) -> None:
        self.count = count
        self.deadline = deadline
        self.parts: dict[int, bytes] = {}
        self.bytes = 0


class Reassembler:
    """Puts fragments from one sender back together. ``feed`` returns a whole packet or ``None``."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_packets: int = DEFAULT_MAX_PACKETS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_packet_size: int = MAX_PACKET_SIZE,
    ) -> None:
        self.timeout = timeout
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
            entry = _Pending(count, now + self.timeout)
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
        for entry in self._pending.values():
            return entry.deadline
        return None

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
