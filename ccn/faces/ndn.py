"""A face that speaks NDN packet format v0.3 (TLV over a stream) to unmodified NDN software.

This is a link service: NDN packets in, ccn packets to the forwarder, and back.

* An NDN Interest becomes a ccn Interest under the mapped name (:mod:`ccn.ndn.names`); its exact
  wire is remembered (by nonce, in the shared :class:`InterestWires`) so that an NDN face the
  forwarder sends it to relays it byte for byte. A PitToken is kept and echoed with the reply.
* An NDN Data becomes a ccn Data under the mapped name whose *content is the NDN Data wire*, so
  ccn nodes forward and cache it like anything else and an NDN face anywhere sends those bytes
  unchanged.
* ccn Data for a pending NDN Interest is either such wrapped NDN Data (sent as is) or ccn-native
  (a version record): the host (the gateway) decides what NDN consumers get for it. A ccn Nack
  becomes ``LpPacket{Nack{NackReason}, Fragment{the Interest}}`` unless the host takes it.
* A stream that is not NDN TLV closes the face; a single malformed packet is dropped and counted.

The face owns and closes its stream. ``send`` never blocks (bounded queue, drops counted).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from ccn.errors import InvalidName, InvalidPacket
from ccn.faces.base import Deliver
from ccn.faces.stream import ByteStreamFace
from ccn.name import Name
from ccn.ndn import lp
from ccn.ndn.names import to_ccn, to_ndn
from ccn.ndn.packets import (
    C_PARAMS_DIGEST,
    NdnData,
    NdnInterest,
    decode_data,
    decode_interest,
    encode_interest,
)
from ccn.ndn.tlv import T_DATA, T_INTEREST, T_LP_PACKET, NdnDecodeError, NdnFrameError, TlvFramer
from ccn.packet import (
    DEFAULT_HOP_LIMIT,
    MAX_FRESHNESS_MS,
    MAX_LIFETIME_MS,
    Data,
    Interest,
    Nack,
    NackReason,
    Packet,
)

MAX_QUEUE_BYTES = 32 << 20
MAX_QUEUE_PACKETS = 1 << 20  # bounded by bytes; one write may carry several packets
MAX_PENDING = 65536
MAX_WIRES = 65536
#: ... and their bytes: an NDN Interest may be 8800 bytes, so the count alone let a peer park
#: over half a GB of wires.
MAX_WIRE_BYTES = 16 << 20

_TO_NDN_REASON = {
    NackReason.CONGESTION: lp.NACK_CONGESTION,
    NackReason.DUPLICATE: lp.NACK_DUPLICATE,
}
_FROM_NDN_REASON = {
    lp.NACK_CONGESTION: NackReason.CONGESTION,
    lp.NACK_DUPLICATE: NackReason.DUPLICATE,
}


def ndn_nack_reason(reason: NackReason) -> int:
    """ccn reason → NDN NackReason; everything without an NDN twin is NoRoute (150)."""
    return _TO_NDN_REASON.get(reason, lp.NACK_NO_ROUTE)


@dataclass(slots=True)
class PendingInterest:
    """An Interest an NDN peer sent us and is waiting on."""

    ndn: NdnInterest
    ccn: Interest
    pit_token: bytes | None
    expiry: float


class InterestWires:
    """Exact wires of NDN Interests in flight, by nonce: what lets NDN faces relay byte for byte."""

    def __init__(self, max_entries: int = MAX_WIRES, max_bytes: int = MAX_WIRE_BYTES) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0
        self._by_nonce: OrderedDict[int, tuple[Name, bytes, float]] = OrderedDict()

    def put(self, interest: Interest, wire: bytes, expiry: float, now: float) -> None:
        """Keep ``wire`` until ``expiry``; the oldest wires go first when there are too many
        (or too many bytes), and expired ones at the front go as new ones come. A wire let go
        early only means its Interest is re-encoded if it is relayed to an NDN face."""
        table = self._by_nonce
        old = table.pop(interest.nonce, None)
        if old is not None:
            self.bytes -= len(old[1])
        table[interest.nonce] = (interest.name, wire, expiry)
        self.bytes += len(wire)
        while table and (
            len(table) > self._max
            or self.bytes > self._max_bytes
            or next(iter(table.values()))[2] < now
        ):
            self.bytes -= len(table.popitem(last=False)[1][1])

    def get(self, interest: Interest, now: float) -> bytes | None:
        entry = self._by_nonce.get(interest.nonce)
        if entry is None or entry[0] != interest.name or entry[2] < now:
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._by_nonce)


class NdnHost(Protocol):
    """What an NDN face asks of the node-side NDN gateway."""

    wires: InterestWires

    def on_interest(self, face: NdnFace, pending: PendingInterest) -> bool:
        """Answer locally (management, known ccn content)? ``True`` if taken."""

    def on_ccn_data(self, face: NdnFace, pending: PendingInterest, data: Data) -> bool:
        """ccn-native Data arrived for ``pending``: ``True`` if the host answers it."""

    def on_ccn_nack(self, face: NdnFace, pending: PendingInterest, nack: Nack) -> bool:
        """A ccn Nack arrived for ``pending``: ``True`` if the host answers instead."""


def unwrap_ndn_data(data: Data) -> NdnData | None:
    """The NDN Data a ccn Data carries (content = NDN wire under the mapped name), else None."""
    content = data.content
    if not content or content[0] != T_DATA:
        return None
    try:
        ndn = decode_data(content)
        if to_ccn(ndn.name) != data.name:
            return None
    except NdnDecodeError:
        return None
    return ndn


class NdnFace(ByteStreamFace):
    receive_size = 1 << 16

    def __init__(
        self,
        stream: trio.abc.Stream,
        remote: str,
        *,
        local: bool,
        host: NdnHost,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        super().__init__(
            stream,
            remote,
            local=local,
            max_queue_packets=MAX_QUEUE_PACKETS,
            max_queue_bytes=max_queue_bytes,
        )
        self._host = host
        self._framer = TlvFramer()
        self._deliver: Deliver | None = None
        self._pending: dict[int, PendingInterest] = {}
        self._by_name: dict[Name, list[PendingInterest]] = {}
        self._expiries: deque[tuple[float, int]] = deque()
        #: Prefixes the app on this face registered (NFD rib/register), bounded by the gateway.
        self.registered: set[Name] = set()

    # -- to the peer ------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        if self.closed:
            return
        t = type(packet)
        if t is Interest:
            self._send_interest(packet)  # type: ignore[arg-type]
        elif t is Data:
            self._send_data(packet)  # type: ignore[arg-type]
        else:
            self._send_nack(packet)  # type: ignore[arg-type]

    def write(self, wire: bytes) -> None:
        """Queue raw bytes for the peer (one or more whole NDN packets)."""
        if not self.closed:
            self._enqueue([wire], len(wire))

    def reply(self, pending: PendingInterest, wire: bytes) -> None:
        """Answer ``pending`` with Data ``wire`` (wrapped with its PitToken if it had one)."""
        if pending.pit_token is not None:
            wire = lp.encode_lp(wire, pit_token=pending.pit_token)
        self.counters.out_data += 1
        self.write(wire)

    def nack(self, pending: PendingInterest, reason: int = lp.NACK_NO_ROUTE) -> None:
        self.counters.out_nacks += 1
        self.write(lp.encode_lp(pending.ndn.wire, pit_token=pending.pit_token, nack_reason=reason))

    def _send_interest(self, interest: Interest) -> None:
        if interest.digest is not None:
            # NDN cannot express a blake3 digest restriction.
            self._local_nack(interest, NackReason.NO_ROUTE)
            return
        wire = self._host.wires.get(interest, trio.current_time())
        if wire is None:
            ndn_name = to_ndn(interest.name)
            if any(c[0] == C_PARAMS_DIGEST for c in ndn_name):
                # Its ApplicationParameters did not come along (it crossed a ccn link, or its
                # wire was let go): re-encoded without them it is not a valid NDN Interest.
                self._local_nack(interest, NackReason.NO_ROUTE)
                return
            wire = encode_interest(
                ndn_name,
                nonce=interest.nonce,
                can_be_prefix=interest.can_be_prefix,
                must_be_fresh=interest.must_be_fresh,
                lifetime_ms=interest.lifetime_ms,
                hop_limit=interest.hop_limit,
            ).wire
        self.counters.out_interests += 1
        self.write(wire)

    def _local_nack(self, interest: Interest, reason: NackReason) -> None:
        if self._deliver is not None:
            self.counters.in_nacks += 1
            self._deliver(self, Nack(interest, reason))

    def _send_data(self, data: Data) -> None:
        matched = self._take_matching(data)
        if not matched:
            self.counters.late += 1
            return
        ndn = unwrap_ndn_data(data)
        for pending in matched:
            if ndn is not None:
                self.reply(pending, ndn.wire)
            elif not self._host.on_ccn_data(self, pending, data):
                self.nack(pending)

    def _send_nack(self, nack: Nack) -> None:
        pending = self._pending.get(nack.interest.nonce)
        if pending is None:
            self.counters.late += 1
            return
        self._forget(pending)
        if not self._host.on_ccn_nack(self, pending, nack):
            self.nack(pending, ndn_nack_reason(nack.reason))

    # -- pending NDN Interests ----------------------------------------------------------------

    def _remember(self, pending: PendingInterest, now: float) -> None:
        self._expire(now)
        if len(self._pending) >= MAX_PENDING:
            self._forget(next(iter(self._pending.values())))
        nonce = pending.ccn.nonce
        old = self._pending.get(nonce)
        if old is not None:
            self._forget(old)
        self._pending[nonce] = pending
        self._by_name.setdefault(pending.ccn.name, []).append(pending)
        self._expiries.append((pending.expiry, nonce))
        if len(self._expiries) > 2 * MAX_PENDING:
            # Expiries are trimmed from the front only: one long-lived entry there would keep
            # every later one. Keep the live ones, soonest first (bounded, amortised).
            self._expiries = deque(sorted((p.expiry, n) for n, p in self._pending.items()))

    def _forget(self, pending: PendingInterest) -> None:
        nonce = pending.ccn.nonce
        if self._pending.get(nonce) is pending:
            del self._pending[nonce]
        same = self._by_name.get(pending.ccn.name)
        if same is not None:
            if pending in same:
                same.remove(pending)
            if not same:
                del self._by_name[pending.ccn.name]

    def _expire(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] < now:
            _, nonce = expiries.popleft()
            pending = self._pending.get(nonce)
            if pending is not None and pending.expiry < now:
                self._forget(pending)

    def _take_matching(self, data: Data) -> list[PendingInterest]:
        out: list[PendingInterest] = []
        if data.is_nameless:
            return out
        for prefix in data.name.prefixes():
            for pending in list(self._by_name.get(prefix, ())):
                if pending.ccn.matches(data):
                    out.append(pending)
                    self._forget(pending)
        return out

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- from the peer ------------------------------------------------------------------------

    async def run(self, deliver: Deliver) -> None:
        self._deliver = deliver
        await super().run(deliver)

    def _split(self, chunk: bytes | bytearray) -> Sequence[bytes | memoryview]:
        try:
            return self._framer.feed(chunk)
        except NdnFrameError as e:
            self.counters.malformed += 1
            self.close(f"not an NDN stream: {e}")
            return ()

    def _held(self) -> int:
        return self._framer.buffered

    def _take(self, unit: bytes | memoryview, deliver: Deliver) -> None:
        try:
            self._on_element(bytes(unit), deliver)
        except NdnDecodeError:
            self.counters.malformed += 1

    def _on_element(self, raw: bytes, deliver: Deliver) -> None:
        token: bytes | None = None
        nack: lp.LpPacket | None = None
        if raw[0] == T_LP_PACKET:
            packet = lp.decode_lp(raw)
            if packet.fragment is None:
                return  # IDLE
            raw = packet.fragment
            token = packet.pit_token
            if packet.nack:
                nack = packet
        kind = raw[0]
        if kind == T_INTEREST:
            ndn = decode_interest(raw)
            if nack is not None:
                self._on_nack(ndn, nack.nack_reason, deliver)
            else:
                self._on_interest(ndn, token, deliver)
        elif kind == T_DATA and nack is None:
            self._on_data(decode_data(raw), deliver)
        else:
            raise NdnDecodeError("LpPacket fragment is not an Interest or Data")

    def _ccn_interest(self, ndn: NdnInterest) -> Interest:
        nonce = ndn.nonce if ndn.nonce is not None else secrets.randbits(32)
        hop = ndn.hop_limit if ndn.hop_limit is not None else DEFAULT_HOP_LIMIT
        try:
            return Interest(
                to_ccn(ndn.name),
                nonce,
                min(ndn.lifetime, MAX_LIFETIME_MS),
                hop,
                ndn.can_be_prefix,
                ndn.must_be_fresh,
            )
        except (InvalidName, InvalidPacket) as e:
            raise NdnDecodeError(f"Interest has no ccn form: {e}") from None

    def _on_interest(self, ndn: NdnInterest, token: bytes | None, deliver: Deliver) -> None:
        interest = self._ccn_interest(ndn)
        now = trio.current_time()
        pending = PendingInterest(ndn, interest, token, now + interest.lifetime_ms / 1000)
        self.counters.in_interests += 1
        if self._host.on_interest(self, pending):
            return
        self._remember(pending, now)
        self._host.wires.put(interest, ndn.wire, pending.expiry, now)
        deliver(self, interest)

    def _on_data(self, ndn: NdnData, deliver: Deliver) -> None:
        if not ndn.name:
            raise NdnDecodeError("Data with an empty name")
        fresh = ndn.freshness_ms or 0
        data = Data(to_ccn(ndn.name), ndn.wire, min(fresh, MAX_FRESHNESS_MS))
        self.counters.in_data += 1
        deliver(self, data)

    def _on_nack(self, ndn: NdnInterest, reason: int, deliver: Deliver) -> None:
        interest = self._ccn_interest(ndn)
        self.counters.in_nacks += 1
        deliver(self, Nack(interest, _FROM_NDN_REASON.get(reason, NackReason.NO_ROUTE)))
