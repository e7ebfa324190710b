"""Forwarding strategies: where an Interest goes, and what to do when an upstream Nacks.

A strategy only decides; it never builds packets or touches the tables. The forwarder calls it
at four points, always with ``now``:

``after_receive_interest(entry, ingress, nexthops, now) -> faces``
    A new Interest, or a consumer's retransmission (same face, new nonce), needs forwarding.
    ``nexthops`` is non-empty, lowest cost first, and already filtered to faces that are up,
    are not downstream of this entry and pass the scope and hop-limit rules. Return the faces to
    send to; an empty result holds the Interest (e.g. to suppress a retransmission).
``after_receive_nack(entry, ingress, reason, nexthops, now) -> faces``
    Upstream ``ingress`` Nacked (its out-record already carries ``reason``). Return faces to try
    next. If the result is empty and every out-record is Nacked, the forwarder Nacks downstream
    with the least severe reason. Also called, with ``NO_ROUTE``, when ``ingress`` went down
    before it answered (it is then no longer among ``nexthops``), and with ``REFUSED`` when its
    answer was refused.
``after_receive_data(entry, ingress, rtt, now)``
    Data satisfied ``entry`` from ``ingress``; ``rtt`` is ``now`` minus the time the Interest
    was last sent there (``None`` if it was never sent there). A measurement hook.
``on_timeout(entry, faces, now)``
    ``entry`` expired while ``faces`` (out-records without a Nack) never answered. A hook.

Strategies that retry on their own (``uses_retry_timer = True``, e.g. the adaptive one) also get:

``retry_timeout(entry, face, now) -> seconds | None``
    Asked after each Interest the forwarder sends to ``face`` for this strategy: how long to wait
    for an answer before :meth:`after_retry_timeout` (``None``: no timer).
``after_retry_timeout(entry, face, nexthops, now) -> faces``
    ``face`` has not answered in time (no Data, no Nack) and the entry is still pending. Return
    faces to try now; the forwarder sends them the Interest with a fresh nonce (derived from
    the old one, so the retry is not taken for a loop where the paths meet again).

``entry.out_records`` tells which faces were tried, when, and with what result;
``entry.strategy_info`` is free for the strategy's per-entry state. One instance is made per
prefix the strategy is chosen for, so per-prefix measurements (an adaptive strategy's RTT
estimates) can live on the instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Final

from mypy_extensions import mypyc_attr

from ccn.errors import LocalError
from ccn.packet import NackReason
from ccn.tables.fib import NextHop
from ccn.tables.pit import PitEntry


@mypyc_attr(allow_interpreted_subclasses=True)  # subclassed by uncompiled code (docs/compiled.md)
class Strategy:
    """Base of every strategy: the two hooks default to doing nothing, retries to none."""

    name: ClassVar[str] = ""
    #: Whether the forwarder asks :meth:`retry_timeout` after each Interest sent for it.
    uses_retry_timer: ClassVar[bool] = False

    def after_receive_interest(
        self, entry: PitEntry, ingress: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        raise NotImplementedError

    def after_receive_nack(
        self,
        entry: PitEntry,
        ingress: int,
        reason: NackReason,
        nexthops: Sequence[NextHop],
        now: float,
    ) -> Sequence[int]:
        return ()

    def after_receive_data(
        self, entry: PitEntry, ingress: int, rtt: float | None, now: float
    ) -> None:
        return None

    def on_timeout(self, entry: PitEntry, faces: Sequence[int], now: float) -> None:
        return None

    def retry_timeout(self, entry: PitEntry, face: int, now: float) -> float | None:
        return None

    def after_retry_timeout(
        self, entry: PitEntry, face: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        return ()


class BestRoute(Strategy):
    """Send to the lowest-cost next hop; on a Nack or a retransmission, the next untried one.

    When every next hop has been tried, a retransmission goes to the one used longest ago.
    """

    name = "best-route"

    def after_receive_interest(
        self, entry: PitEntry, ingress: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        out = entry.out_records
        if not out:
            return (nexthops[0].face_id,)
        for hop in nexthops:
            if hop.face_id not in out:
                return (hop.face_id,)
        oldest = min(nexthops, key=lambda h: out[h.face_id].sent_at)
        return (oldest.face_id,)

    def after_receive_nack(
        self,
        entry: PitEntry,
        ingress: int,
        reason: NackReason,
        nexthops: Sequence[NextHop],
        now: float,
    ) -> Sequence[int]:
        out = entry.out_records
        for hop in nexthops:
            if hop.face_id not in out:
                return (hop.face_id,)
        return ()


#: Next hops at this cost or above are *fallbacks* (the node routes ``multicast_prefixes`` to its
#: LAN multicast faces at this cost, docs/lan.md): the multicast strategy uses them only when no
#: cheaper next hop is eligible, or once every cheaper one has Nacked.
FALLBACK_COST: Final = 1000


class Multicast(Strategy):
    """Send to every next hop below :data:`FALLBACK_COST`, or, if there is none, to every
    fallback; Nacks are not retried (the others may still answer) except that once every
    cheaper next hop has Nacked, the fallbacks not tried yet get the Interest."""

    name = "multicast"

    def after_receive_interest(
        self, entry: PitEntry, ingress: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        primary = [hop.face_id for hop in nexthops if hop.cost < FALLBACK_COST]
        return primary or [hop.face_id for hop in nexthops]

    def after_receive_nack(
        self,
        entry: PitEntry,
        ingress: int,
        reason: NackReason,
        nexthops: Sequence[NextHop],
        now: float,
    ) -> Sequence[int]:
        out = entry.out_records
        for hop in nexthops:
            if hop.cost < FALLBACK_COST:
                rec = out.get(hop.face_id)
                if rec is not None and rec.nack_reason is None:
                    return ()  # a cheaper next hop may still answer
        return [h.face_id for h in nexthops if h.cost >= FALLBACK_COST and h.face_id not in out]


DEFAULT_STRATEGY = BestRoute.name

_REGISTRY: dict[str, Callable[[], Strategy]] = {
    BestRoute.name: BestRoute,
    Multicast.name: Multicast,
}


def register_strategy(name: str, factory: Callable[[], Strategy]) -> None:
    """Make a strategy available to :meth:`Forwarder.set_strategy` under ``name``."""
    _REGISTRY[name] = factory


def strategy_names() -> list[str]:
    return sorted(_REGISTRY)


def make_strategy(name: str) -> Strategy:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise LocalError(f"unknown strategy {name!r} (known: {', '.join(strategy_names())})")
    return factory()
