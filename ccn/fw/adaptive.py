"""The adaptive strategy: prefer the next hop that answers fastest, probe the others now and
then, and retry another next hop when one Nacks or stays silent.

Pure, like every strategy: it only orders faces, and keeps its measurements on the instance
(one instance per prefix it is chosen for; the node chooses it for ``/``). Rules:

- Each face has a smoothed RTT and variation (RFC 6298: 1/8, 1/4) from the Data it returns.
  Faces are ranked: answering faces by smoothed RTT, then faces never measured (by route cost),
  then faces that recently stayed silent (by smoothed RTT).
- A new Interest goes to the best-ranked face. At most once per :data:`PROBE_INTERVAL`, a copy
  also goes to another face, the one least recently used, so a better path (or a repaired one)
  is found; the first Data wins, later copies are dropped as unsolicited.
- Every Interest sent starts a retry timer of ``srtt + 4·rttvar`` (clamped, :data:`DEFAULT_RTO`
  for a face never measured); if it fires with the Interest still pending, the face is marked
  silent and the Interest goes to the best-ranked face not tried yet — without waiting for the
  consumer's own retransmission. A Nack does the same at once.
- A consumer's retransmission goes to an untried face, else to the best one not used last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from ccn.fw.strategy import Strategy, register_strategy
from ccn.packet import NackReason
from ccn.tables.fib import NextHop
from ccn.tables.pit import PitEntry

PROBE_INTERVAL: Final = 1.0
DEFAULT_RTO: Final = 1.0
MIN_RTO: Final = 0.2
MAX_RTO: Final = 4.0
#: How long a face that stayed silent ranks below faces never measured.
SILENCE_PENALTY: Final = 10.0
#: Retry timers end at this fraction of the Interest lifetime at the latest: a retry must leave
#: the next hop time to answer before the downstream gives up.
MAX_RTO_OF_LIFETIME: Final = 0.5

_HEALTHY, _UNKNOWN, _SILENT = 0, 1, 2


class _FaceStats:
    __slots__ = ("last_sent", "rttvar", "silent_until", "srtt")

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.last_sent = -math.inf
        self.silent_until = -math.inf

    def rto(self) -> float:
        if self.srtt is None:
            return DEFAULT_RTO
        return min(MAX_RTO, max(MIN_RTO, self.srtt + 4 * self.rttvar))


class Adaptive(Strategy):
    name = "adaptive"
    uses_retry_timer = True

    def __init__(self) -> None:
        self.faces: dict[int, _FaceStats] = {}
        self._last_probe = -math.inf
        self.probes = 0
        self.retries = 0

    # -- measurements ----------------------------------------------------------------------

    def _stats(self, face: int) -> _FaceStats:
        st = self.faces.get(face)
        if st is None:
            if len(self.faces) > 4096:  # faces come and go; forget the stale ones
                self.faces.clear()
            st = self.faces[face] = _FaceStats()
        return st

    def srtt(self, face: int) -> float | None:
        st = self.faces.get(face)
        return None if st is None else st.srtt

    def _rank(self, hops: Sequence[NextHop], now: float) -> list[NextHop]:
        faces = self.faces

        def key(hop: NextHop) -> tuple[int, float, int, int]:
            st = faces.get(hop.face_id)
            if st is None or (st.srtt is None and st.silent_until <= now):
                return (_UNKNOWN, 0.0, hop.cost, hop.face_id)
            srtt = st.srtt if st.srtt is not None else math.inf
            state = _SILENT if st.silent_until > now else _HEALTHY
            return (state, srtt, hop.cost, hop.face_id)

        return sorted(hops, key=key)

    def _silenced(self, face: int, now: float) -> None:
        st = self._stats(face)
        st.silent_until = now + SILENCE_PENALTY
        if st.srtt is not None:
            st.srtt = min(MAX_RTO, st.srtt * 2)

    def _sent(self, faces: Sequence[int], now: float) -> Sequence[int]:
        for f in faces:
            self._stats(f).last_sent = now
        return faces

    # -- hooks -----------------------------------------------------------------------------

    def after_receive_interest(
        self, entry: PitEntry, ingress: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        ranked = self._rank(nexthops, now)
        out = entry.out_records
        if not out:
            best = ranked[0].face_id
            if len(ranked) > 1 and now - self._last_probe >= PROBE_INTERVAL:
                self._last_probe = now
                self.probes += 1
                other = min(ranked[1:], key=lambda h: (self._stats(h.face_id).last_sent, h.face_id))
                return self._sent((best, other.face_id), now)
            return self._sent((best,), now)
        for hop in ranked:
            if hop.face_id not in out:
                return self._sent((hop.face_id,), now)
        last = max(out.values(), key=lambda r: r.sent_at).face_id
        for hop in ranked:
            if hop.face_id != last:
                return self._sent((hop.face_id,), now)
        return self._sent((ranked[0].face_id,), now)

    def after_receive_nack(
        self,
        entry: PitEntry,
        ingress: int,
        reason: NackReason,
        nexthops: Sequence[NextHop],
        now: float,
    ) -> Sequence[int]:
        return self._untried(entry, nexthops, now)

    def after_receive_data(
        self, entry: PitEntry, ingress: int, rtt: float | None, now: float
    ) -> None:
        if rtt is None or rtt < 0:
            return
        st = self._stats(ingress)
        if st.srtt is None:
            st.srtt = rtt
            st.rttvar = rtt / 2
        else:
            st.rttvar = 0.75 * st.rttvar + 0.25 * abs(st.srtt - rtt)
            st.srtt = 0.875 * st.srtt + 0.125 * rtt
        st.silent_until = -math.inf

    def on_timeout(self, entry: PitEntry, faces: Sequence[int], now: float) -> None:
        for f in faces:
            self._silenced(f, now)

    def retry_timeout(self, entry: PitEntry, face: int, now: float) -> float | None:
        cap = entry.interest.lifetime_ms / 1000 * MAX_RTO_OF_LIFETIME
        return min(self._stats(face).rto(), cap)

    def after_retry_timeout(
        self, entry: PitEntry, face: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        self._silenced(face, now)
        faces = self._untried(entry, nexthops, now)
        if faces:
            self.retries += 1
        return faces

    def _untried(self, entry: PitEntry, nexthops: Sequence[NextHop], now: float) -> Sequence[int]:
        out = entry.out_records
        for hop in self._rank(nexthops, now):
            if hop.face_id not in out:
                return self._sent((hop.face_id,), now)
        return ()


register_strategy(Adaptive.name, Adaptive)
