from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from ccn.errors import LocalError
from ccn.fw.actions import DataIn, FaceUp, InterestIn, NackIn, SendData, SendInterest, Tick
from ccn.fw.forwarder import Forwarder
from ccn.fw.strategy import (
    FALLBACK_COST,
    BestRoute,
    Multicast,
    Strategy,
    make_strategy,
    register_strategy,
    strategy_names,
)
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason
from ccn.tables.fib import NextHop
from ccn.tables.pit import PitEntry

N = Name.parse
CONSUMER, UP1, UP2, UP3 = 1, 3, 4, 5
I1 = Interest(N("/a/b"), 1)
D1 = Data(N("/a/b"), b"x")


def make(strategy: str = "best-route") -> Forwarder:
    fw = Forwarder()
    for face in (CONSUMER, UP1, UP2, UP3):
        fw.handle(FaceUp(face), 0.0)
    for cost, face in enumerate((UP1, UP2, UP3)):
        fw.add_route(N("/a"), face, cost * 10)
    fw.set_strategy(N("/a"), strategy)
    return fw


def sent_to(actions: Sequence[object]) -> list[int]:
    return [a.face_id for a in actions if isinstance(a, SendInterest)]


def fwd(i: Interest) -> Interest:
    return dataclasses.replace(i, hop_limit=i.hop_limit - 1)


def test_best_route_uses_lowest_cost_then_next_untried_on_nack() -> None:
    fw = make()
    assert sent_to(fw.handle(InterestIn(CONSUMER, I1), 0.0)) == [UP1]
    assert sent_to(fw.handle(NackIn(UP1, Nack(fwd(I1), NackReason.NO_ROUTE)), 0.1)) == [UP2]
    assert sent_to(fw.handle(NackIn(UP2, Nack(fwd(I1), NackReason.CONGESTION)), 0.2)) == [UP3]
    out = fw.handle(NackIn(UP3, Nack(fwd(I1), NackReason.NO_ROUTE)), 0.3)
    assert [(type(a).__name__, a.face_id) for a in out] == [("SendNack", CONSUMER)]
    assert out[0].nack.reason is NackReason.CONGESTION  # type: ignore[union-attr]
    assert out[0].nack.interest == I1  # type: ignore[union-attr]


def test_best_route_sends_retransmission_to_another_hop() -> None:
    fw = make()
    assert sent_to(fw.handle(InterestIn(CONSUMER, I1), 0.0)) == [UP1]
    retx = Interest(N("/a/b"), 2)
    assert sent_to(fw.handle(InterestIn(CONSUMER, retx), 1.0)) == [UP2]
    assert sent_to(fw.handle(InterestIn(CONSUMER, Interest(N("/a/b"), 3)), 2.0)) == [UP3]
    # Every hop tried: the one used longest ago.
    assert sent_to(fw.handle(InterestIn(CONSUMER, Interest(N("/a/b"), 4)), 3.0)) == [UP1]
    assert fw.handle(DataIn(UP2, D1), 3.5) == [SendData(CONSUMER, D1)]


def test_multicast_sends_to_all_and_first_data_wins() -> None:
    fw = make("multicast")
    out = fw.handle(InterestIn(CONSUMER, I1), 0.0)
    assert out == [SendInterest(f, fwd(I1)) for f in (UP1, UP2, UP3)]
    assert fw.handle(NackIn(UP1, Nack(fwd(I1), NackReason.NO_ROUTE)), 0.1) == []
    assert fw.handle(DataIn(UP3, D1), 0.2) == [SendData(CONSUMER, D1)]
    assert fw.handle(DataIn(UP2, D1), 0.3) == []  # late copy: unsolicited


def test_longest_prefix_strategy_choice() -> None:
    fw = make("multicast")
    fw.set_strategy(N("/a/b/c"), "best-route")
    assert fw.strategy_of(N("/a/b/c/d")) == "best-route"
    assert fw.strategy_of(N("/a/b")) == "multicast"
    assert fw.strategy_of(N("/z")) == "best-route"
    assert fw.unset_strategy(N("/a/b/c"))
    assert not fw.unset_strategy(N("/a/b/c"))
    assert fw.strategy_of(N("/a/b/c/d")) == "multicast"


class Recording(Strategy):
    """A strategy that records its hooks: what an adaptive strategy would measure."""

    name = "recording"

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def after_receive_interest(
        self, entry: PitEntry, ingress: int, nexthops: Sequence[NextHop], now: float
    ) -> Sequence[int]:
        self.events.append(("interest", ingress, [h.face_id for h in nexthops]))
        return [nexthops[-1].face_id]

    def after_receive_nack(
        self,
        entry: PitEntry,
        ingress: int,
        reason: NackReason,
        nexthops: Sequence[NextHop],
        now: float,
    ) -> Sequence[int]:
        self.events.append(("nack", ingress, reason))
        return ()

    def after_receive_data(
        self, entry: PitEntry, ingress: int, rtt: float | None, now: float
    ) -> None:
        self.events.append(("data", ingress, rtt))

    def on_timeout(self, entry: PitEntry, faces: Sequence[int], now: float) -> None:
        self.events.append(("timeout", list(faces)))


def test_hooks_for_an_adaptive_strategy() -> None:
    instances: list[Recording] = []

    def factory() -> Recording:
        instances.append(Recording())
        return instances[-1]

    register_strategy("recording", factory)
    assert "recording" in strategy_names()
    fw = make("recording")
    rec = instances[-1]
    fw.handle(InterestIn(CONSUMER, I1), 1.0)
    fw.handle(DataIn(UP3, D1), 1.25)
    fw.handle(InterestIn(CONSUMER, Interest(N("/a/c"), 2, lifetime_ms=1000)), 2.0)
    fw.handle(Tick(), 3.0)
    i3 = Interest(N("/a/d"), 3)
    fw.handle(InterestIn(CONSUMER, i3), 4.0)
    fw.handle(NackIn(UP3, Nack(fwd(i3), NackReason.CONGESTION)), 4.1)
    assert rec.events == [
        ("interest", CONSUMER, [UP1, UP2, UP3]),
        ("data", UP3, 0.25),
        ("interest", CONSUMER, [UP1, UP2, UP3]),
        ("timeout", [UP3]),
        ("interest", CONSUMER, [UP1, UP2, UP3]),
        ("nack", UP3, NackReason.CONGESTION),
    ]


def test_make_strategy() -> None:
    assert isinstance(make_strategy("best-route"), BestRoute)
    assert isinstance(make_strategy("multicast"), Multicast)
    with pytest.raises(LocalError):
        make_strategy("nope")
    with pytest.raises(NotImplementedError):
        i = Interest(Name.parse("/a"), 1)
        Strategy().after_receive_interest(PitEntry(i, ((b"a",), False, False, None)), 1, [], 0.0)


def test_multicast_uses_fallback_hops_only_without_a_cheaper_one() -> None:
    """The node routes ``multicast_prefixes`` to its LAN multicast faces at FALLBACK_COST."""
    fw = Forwarder()
    for face in (CONSUMER, UP1, UP2, UP3):
        fw.handle(FaceUp(face), 0.0)
    fw.set_strategy(N("/a"), "multicast")
    fw.add_route(N("/a"), UP3, FALLBACK_COST)
    # nothing else known: once on the group, and Data from it satisfies the consumer
    assert sent_to(fw.handle(InterestIn(CONSUMER, I1), 0.0)) == [UP3]
    out = fw.handle(DataIn(UP3, D1), 0.1)
    assert [(type(a), a.face_id) for a in out] == [(SendData, CONSUMER)]
    # learned routes win; the group is not used while one of them may still answer
    fw.add_route(N("/a"), UP1, 2)
    fw.add_route(N("/a"), UP2, 3)
    i2 = Interest(N("/a/c"), 2)
    assert sent_to(fw.handle(InterestIn(CONSUMER, i2), 1.0)) == [UP1, UP2]
    assert sent_to(fw.handle(NackIn(UP1, Nack(fwd(i2), NackReason.NO_ROUTE)), 1.1)) == []
    # every cheaper one Nacked: the fallback gets it, and no Nack goes downstream
    out = fw.handle(NackIn(UP2, Nack(fwd(i2), NackReason.NO_ROUTE)), 1.2)
    assert [(type(a), a.face_id) for a in out] == [(SendInterest, UP3)]


def test_no_route_nack_is_unchanged_outside_multicast_prefixes() -> None:
    fw = Forwarder()
    for face in (CONSUMER, UP3):
        fw.handle(FaceUp(face), 0.0)
    fw.set_strategy(N("/a"), "multicast")
    fw.add_route(N("/a"), UP3, FALLBACK_COST)
    out = fw.handle(InterestIn(CONSUMER, Interest(N("/other"), 3)), 0.0)
    assert [type(a).__name__ for a in out] == ["SendNack"]
    assert out[0].nack.reason is NackReason.NO_ROUTE  # type: ignore[union-attr]
