from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccn._compiled import wrong_type_error
from ccn.errors import LocalError
from ccn.fw.actions import (
    Action,
    DataIn,
    DataRefused,
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
from ccn.fw.forwarder import Forwarder, ForwarderConfig, _with_hop_limit
from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, Nack, NackReason

N = Name.parse
CONSUMER, CONSUMER2, UPSTREAM, UPSTREAM2, APP = 1, 2, 3, 4, 9


def make(
    routes: dict[str, list[int]] | None = None, local: tuple[int, ...] = (APP,), **config: int
) -> Forwarder:
    """Faces 1-4 are neighbours, 9 is a local app; routes: prefix -> next hops (cost = order)."""
    fw = Forwarder(ForwarderConfig(**config))  # type: ignore[arg-type]
    for face in (CONSUMER, CONSUMER2, UPSTREAM, UPSTREAM2, APP):
        assert fw.handle(FaceUp(face, local=face in local), 0.0) == []
    for prefix, faces in (routes if routes is not None else {"/a": [UPSTREAM]}).items():
        for cost, face in enumerate(faces):
            fw.add_route(N(prefix), face, cost)
    return fw


def interest(fw: Forwarder, face: int, i: Interest, now: float = 0.0) -> list[Action]:
    return fw.handle(InterestIn(face, i), now)


def data(fw: Forwarder, face: int, d: Data, now: float = 0.0) -> list[Action]:
    return fw.handle(DataIn(face, d), now)


def nack(
    fw: Forwarder, face: int, i: Interest, reason: NackReason, now: float = 0.0
) -> list[Action]:
    return fw.handle(NackIn(face, Nack(i, reason)), now)


def fwd(i: Interest) -> Interest:
    return dataclasses.replace(i, hop_limit=i.hop_limit - 1)


I1 = Interest(N("/a/b"), 1)
D1 = Data(N("/a/b"), b"payload")


# -- Interest forwarding and Data return ------------------------------------------------------


def test_forward_then_data_returns_and_is_cached() -> None:
    fw = make()
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]
    assert len(fw.pit) == 1
    assert data(fw, UPSTREAM, D1) == [SendData(CONSUMER, D1)]
    assert len(fw.pit) == 0
    assert interest(fw, CONSUMER2, Interest(N("/a/b"), 2)) == [SendData(CONSUMER2, D1)]
    c = fw.counters
    assert (c.in_interests, c.out_interests, c.in_data, c.out_data) == (2, 1, 1, 2)
    assert (c.cs_hits, c.cs_misses, c.satisfied) == (1, 1, 1)


def test_aggregation_of_two_consumers() -> None:
    fw = make()
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]
    assert interest(fw, CONSUMER2, Interest(N("/a/b"), 2)) == []
    assert fw.counters.aggregated == 1
    assert data(fw, UPSTREAM, D1) == [SendData(CONSUMER, D1), SendData(CONSUMER2, D1)]
    assert len(fw.pit) == 0


def test_retransmissions_of_a_pending_interest_are_suppressed_exponentially() -> None:
    """Consumers sharing an entry each retransmit on their own timer; a retransmission goes
    upstream only once the last copy is older than the entry's interval (10 ms, doubling to
    250 ms), as NFD's exponential suppression does."""
    fw = make()
    assert interest(fw, CONSUMER, I1, 0.0) == [SendInterest(UPSTREAM, fwd(I1))]
    assert interest(fw, CONSUMER2, Interest(N("/a/b"), 2), 0.001) == []  # aggregated
    nonces = iter(range(100, 200))

    def retx(face: int, now: float) -> list[int]:
        out = interest(fw, face, Interest(N("/a/b"), next(nonces)), now)
        return [a.face_id for a in out if isinstance(a, SendInterest)]

    assert retx(CONSUMER, 0.005) == []  # 5 ms after the copy upstream: held
    assert retx(CONSUMER2, 0.009) == []
    assert retx(CONSUMER2, 0.011) == [UPSTREAM]  # 10 ms passed; the interval becomes 20 ms
    assert retx(CONSUMER, 0.030) == []  # 19 ms after
    assert retx(CONSUMER, 0.032) == [UPSTREAM]  # now 40 ms
    assert retx(CONSUMER2, 0.070) == []
    assert retx(CONSUMER2, 0.073) == [UPSTREAM]  # now 80 ms
    for now in (0.2, 0.4, 0.7, 1.0):  # 160, 250 (the cap), 250, ...
        assert retx(CONSUMER, now) == [UPSTREAM]
    assert retx(CONSUMER, 1.2) == []  # 200 ms < the 250 ms cap
    assert fw.counters.suppressed == 5 and fw.counters.aggregated == 1
    # Held retransmissions still refreshed their in-records: the Data reaches both.
    assert data(fw, UPSTREAM, D1, 1.3) == [SendData(CONSUMER, D1), SendData(CONSUMER2, D1)]


def test_retransmission_is_not_suppressed_once_nothing_is_pending_upstream() -> None:
    fw = make()
    interest(fw, CONSUMER, I1, 0.0)
    nack(fw, UPSTREAM, fwd(I1), NackReason.CONGESTION, 0.001)
    # The upstream Nacked (and the consumer was Nacked): its retransmission 1 ms later goes out.
    out = interest(fw, CONSUMER, Interest(N("/a/b"), 5), 0.002)
    assert [a.face_id for a in out if isinstance(a, SendInterest)] == [UPSTREAM]
    assert fw.counters.suppressed == 0


def test_retransmission_suppression_is_configurable() -> None:
    fw = make(retx_suppression_initial=0, retx_suppression_max=0)  # off
    interest(fw, CONSUMER, I1, 0.0)
    out = interest(fw, CONSUMER, Interest(N("/a/b"), 5), 0.0001)
    assert [a.face_id for a in out if isinstance(a, SendInterest)] == [UPSTREAM]
    with pytest.raises(LocalError, match="retx_suppression_max"):
        ForwarderConfig(retx_suppression_max=-1.0)


def test_data_is_not_sent_back_to_the_face_it_came_from() -> None:
    fw = make({"/a": [UPSTREAM, CONSUMER2]})
    interest(fw, CONSUMER, I1)
    interest(fw, UPSTREAM, Interest(N("/a/b"), 2))  # aggregated
    assert data(fw, UPSTREAM, D1) == [SendData(CONSUMER, D1)]


def test_interest_is_never_sent_back_to_its_downstream() -> None:
    fw = make({"/a": [CONSUMER, UPSTREAM]})
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]


def test_no_route_nack_is_immediate() -> None:
    fw = make({})
    assert interest(fw, CONSUMER, I1) == [SendNack(CONSUMER, Nack(I1, NackReason.NO_ROUTE))]
    assert len(fw.pit) == 0 and fw.counters.no_route == 1
    # A route to a face that is down, or only back to the consumer, is no route either.
    fw = make({"/a": [CONSUMER, 42]})
    assert interest(fw, CONSUMER, I1) == [SendNack(CONSUMER, Nack(I1, NackReason.NO_ROUTE))]


# -- loops -------------------------------------------------------------------------------------


def test_same_nonce_from_another_face_is_a_duplicate() -> None:
    fw = make()
    interest(fw, CONSUMER, I1)
    looped = Interest(N("/a/b"), I1.nonce, hop_limit=20)
    assert interest(fw, CONSUMER2, looped) == [
        SendNack(CONSUMER2, Nack(looped, NackReason.DUPLICATE))
    ]
    # Coming back from upstream is a loop too.
    assert interest(fw, UPSTREAM, looped) == [
        SendNack(UPSTREAM, Nack(looped, NackReason.DUPLICATE))
    ]
    assert fw.counters.duplicates == 2
    # The same Interest again on the same link is not a loop, and is not forwarded again.
    assert interest(fw, CONSUMER, I1) == []
    assert [rec.face_id for rec in next(iter(fw.pit)).in_records.values()] == [CONSUMER]


def test_dead_nonce_list_catches_a_loop_after_satisfaction() -> None:
    fw = make()
    interest(fw, CONSUMER, I1, now=0.0)
    data(fw, UPSTREAM, D1, now=0.1)
    looped = Interest(N("/a/b"), I1.nonce)
    # The PIT entry is gone and the Data is cached, but the nonce is remembered.
    assert interest(fw, CONSUMER2, looped, now=0.2) == [
        SendNack(CONSUMER2, Nack(looped, NackReason.DUPLICATE))
    ]
    # Until the dead-nonce lifetime is over.
    later = fw.config.dnl_lifetime + 1.0
    assert interest(fw, CONSUMER2, looped, now=later) == [SendData(CONSUMER2, D1)]


def test_objects_under_one_locator_that_drew_the_same_nonce_are_no_loop() -> None:
    # A fetch asks for many objects under one locator, each with a random nonce; the dead
    # nonce list must tell them apart by digest, or a repeated nonce is answered "duplicate".
    fw = make()
    one, two = Data(ROOT, b"object one"), Data(ROOT, b"object two")
    first = Interest(N("/a/v1"), 77, digest=one.digest)
    interest(fw, CONSUMER, first, now=0.0)
    assert data(fw, UPSTREAM, one, now=0.1) == [SendData(CONSUMER, one)]
    second = Interest(N("/a/v1"), 77, digest=two.digest)
    assert interest(fw, CONSUMER, second, now=0.2) == [SendInterest(UPSTREAM, fwd(second))]
    # The same object with the same nonce again is still caught as a loop.
    assert interest(fw, CONSUMER2, first, now=0.3) == [
        SendNack(CONSUMER2, Nack(first, NackReason.DUPLICATE))
    ]


def test_dead_nonce_list_after_expiry() -> None:
    fw = make()
    interest(fw, CONSUMER, I1, now=0.0)
    fw.handle(Tick(), 10.0)
    assert len(fw.pit) == 0
    out = interest(fw, CONSUMER2, Interest(N("/a/b"), I1.nonce), now=10.5)
    assert [type(a) for a in out] == [SendNack]


# -- expiry ------------------------------------------------------------------------------------


def test_expiry_via_tick_and_next_deadline() -> None:
    fw = make()
    assert fw.next_deadline() is None
    interest(fw, CONSUMER, Interest(N("/a/b"), 1, lifetime_ms=1000), now=10.0)
    interest(fw, CONSUMER2, Interest(N("/a/b"), 2, lifetime_ms=2000), now=10.5)
    assert fw.next_deadline() == 12.5
    assert fw.handle(Tick(), 12.0) == []
    assert len(fw.pit) == 1
    assert fw.handle(Tick(), 12.5) == []  # no packet is sent for expiry
    assert len(fw.pit) == 0 and fw.counters.expired == 1
    assert fw.next_deadline() is None
    assert data(fw, UPSTREAM, D1, now=13.0) == []
    assert fw.counters.unsolicited_data == 1


def test_expired_in_record_gets_no_data() -> None:
    fw = make()
    interest(fw, CONSUMER, Interest(N("/a/b"), 1, lifetime_ms=1000), now=0.0)
    interest(fw, CONSUMER2, Interest(N("/a/b"), 2, lifetime_ms=5000), now=0.0)
    assert data(fw, UPSTREAM, D1, now=2.0) == [SendData(CONSUMER2, D1)]


# -- hop limit and scope -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ingress", "hop_limit", "upstream", "expected"),
    [
        (CONSUMER, 0, UPSTREAM, NackReason.HOP_LIMIT),
        (CONSUMER, 1, UPSTREAM, NackReason.HOP_LIMIT),  # would leave with 0
        (CONSUMER, 2, UPSTREAM, 1),
        (CONSUMER, 32, UPSTREAM, 31),
        (CONSUMER, 0, APP, NackReason.HOP_LIMIT),  # arriving with 0 from a neighbour
        (CONSUMER, 1, APP, 0),  # leaves with 0, but a local producer may still answer
        (APP, 0, APP + 1, 0),  # from a local face, 0 is allowed; egress local
        (APP, 0, UPSTREAM, NackReason.HOP_LIMIT),
        (APP, 255, UPSTREAM, 32),  # capped at max_hop_limit
    ],
)
def test_hop_limit(ingress: int, hop_limit: int, upstream: int, expected: int | NackReason) -> None:
    fw = make({"/a": [upstream]}, local=(APP, APP + 1))
    fw.handle(FaceUp(APP + 1, local=True), 0.0)
    i = Interest(N("/a/b"), 1, hop_limit=hop_limit)
    out = interest(fw, ingress, i)
    if isinstance(expected, NackReason):
        assert out == [SendNack(ingress, Nack(i, expected))]
        assert fw.counters.hop_limit == 1
        assert len(fw.pit) == 0
    else:
        assert out == [SendInterest(upstream, dataclasses.replace(i, hop_limit=expected))]


@pytest.mark.parametrize(
    ("name", "ingress", "routes", "expected"),
    [
        ("/localhost/ccn/status", CONSUMER, [APP], "dropped"),
        ("/localhost/ccn/status", APP, [APP + 1], APP + 1),
        ("/localhost/ccn/status", APP, [UPSTREAM], NackReason.NO_ROUTE),
        ("/localhost/ccn/status", APP, [UPSTREAM, APP + 1], APP + 1),
        ("/localhop/discovery", CONSUMER, [UPSTREAM], NackReason.NO_ROUTE),
        ("/localhop/discovery", CONSUMER, [APP], APP),
        ("/localhop/discovery", APP, [UPSTREAM], UPSTREAM),
    ],
)
def test_scope(name: str, ingress: int, routes: list[int], expected: object) -> None:
    prefix = "/" + name.split("/")[1]
    fw = make({prefix: routes}, local=(APP, APP + 1))
    fw.handle(FaceUp(APP + 1, local=True), 0.0)
    i = Interest(N(name), 1)
    out = interest(fw, ingress, i)
    if expected == "dropped":
        assert out == [] and fw.counters.scope_violations == 1 and len(fw.pit) == 0
    elif isinstance(expected, NackReason):
        assert out == [SendNack(ingress, Nack(i, expected))]
    else:
        assert out == [SendInterest(expected, fwd(i))]  # type: ignore[arg-type]


def test_localhost_data_never_reaches_a_non_local_face() -> None:
    fw = make({"/localhost": [APP]})
    assert data(fw, CONSUMER, Data(N("/localhost/x"), b"")) == []
    assert fw.counters.scope_violations == 1


# -- Data verification -------------------------------------------------------------------------


def test_poisoned_data_is_neither_cached_nor_forwarded() -> None:
    fw = make()
    good = Data(ROOT, b"the real chunk")
    want = Interest(N("/a/v3"), 1, digest=good.digest)
    assert interest(fw, CONSUMER, want) == [SendInterest(UPSTREAM, fwd(want))]
    for poison in (Data(ROOT, b"evil"), Data(N("/a/v3"), b"evil")):
        assert data(fw, UPSTREAM, poison) == []
    assert fw.counters.unsolicited_data == 2
    assert len(fw.cs) == 0
    assert len(fw.pit) == 1  # still waiting for the real one
    assert data(fw, UPSTREAM, good) == [SendData(CONSUMER, good)]
    assert len(fw.cs) == 1


def test_unsolicited_named_data_is_dropped() -> None:
    fw = make()
    assert data(fw, UPSTREAM, D1) == []
    assert fw.counters.unsolicited_data == 1 and len(fw.cs) == 0


def test_cs_digest_hit_across_names() -> None:
    fw = make()
    chunk = Data(ROOT, b"shared chunk")
    v3 = Interest(N("/a/v3"), 1, digest=chunk.digest)
    interest(fw, CONSUMER, v3)
    data(fw, UPSTREAM, chunk)
    v4 = Interest(N("/a/v4"), 2, digest=chunk.digest)
    assert interest(fw, CONSUMER2, v4) == [SendData(CONSUMER2, chunk)]
    assert fw.counters.cs_hits == 1


def test_must_be_fresh_skips_stale_cache() -> None:
    fw = make()
    d = Data(N("/a/b"), b"x", freshness_ms=1000)
    interest(fw, CONSUMER, I1, now=0.0)
    data(fw, UPSTREAM, d, now=0.0)
    fresh = Interest(N("/a/b"), 2, must_be_fresh=True)
    assert interest(fw, CONSUMER, fresh, now=0.5) == [SendData(CONSUMER, d)]
    again = Interest(N("/a/b"), 3, must_be_fresh=True)
    assert interest(fw, CONSUMER, again, now=1.5) == [SendInterest(UPSTREAM, fwd(again))]


def test_can_be_prefix_interest_is_satisfied_by_longer_name() -> None:
    fw = make()
    latest = Interest(N("/a"), 1, can_be_prefix=True, must_be_fresh=True)
    interest(fw, CONSUMER, latest)
    v7 = Data(N("/a/v7"), b"version", freshness_ms=1000)
    assert data(fw, UPSTREAM, v7) == [SendData(CONSUMER, v7)]


# -- bounds ------------------------------------------------------------------------------------


def test_pit_total_bound_gives_congestion_nack() -> None:
    fw = make(pit_max_entries=2)
    for n in range(2):
        assert type(interest(fw, CONSUMER, Interest(N(f"/a/{n}"), n))[0]) is SendInterest
    third = Interest(N("/a/3"), 3)
    assert interest(fw, CONSUMER2, third) == [
        SendNack(CONSUMER2, Nack(third, NackReason.CONGESTION))
    ]
    assert fw.counters.congestion == 1 and len(fw.pit) == 2


def test_pit_per_face_bound_gives_congestion_nack() -> None:
    fw = make(pit_max_per_face=1)
    interest(fw, CONSUMER, Interest(N("/a/1"), 1))
    second = Interest(N("/a/2"), 2)
    assert interest(fw, CONSUMER, second) == [
        SendNack(CONSUMER, Nack(second, NackReason.CONGESTION))
    ]
    assert len(fw.pit) == 1
    # Another face is not limited by face 1's use, even for the same entry.
    assert interest(fw, CONSUMER2, Interest(N("/a/1"), 7)) == []
    assert type(interest(fw, CONSUMER2, Interest(N("/a/3"), 8))[0]) is SendNack


# -- Nacks -------------------------------------------------------------------------------------


def test_nack_with_unknown_nonce_or_face_is_ignored() -> None:
    fw = make()
    interest(fw, CONSUMER, I1)
    assert nack(fw, UPSTREAM, Interest(N("/a/b"), 999), NackReason.NO_ROUTE) == []
    assert nack(fw, UPSTREAM2, fwd(I1), NackReason.NO_ROUTE) == []
    assert nack(fw, UPSTREAM, Interest(N("/zz"), 1), NackReason.NO_ROUTE) == []
    assert fw.counters.nacks_unmatched == 3
    assert len(fw.pit) == 1


def test_all_upstreams_nacked_gives_least_severe_reason_downstream() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    second = Interest(N("/a/b"), 2)
    interest(fw, CONSUMER, I1)
    interest(fw, CONSUMER2, second)
    assert nack(fw, UPSTREAM, fwd(I1), NackReason.NO_ROUTE) == []
    assert nack(fw, UPSTREAM2, fwd(I1), NackReason.CONGESTION) == [
        SendNack(CONSUMER, Nack(I1, NackReason.CONGESTION)),
        SendNack(CONSUMER2, Nack(second, NackReason.CONGESTION)),
    ]
    assert len(fw.pit) == 0


@pytest.mark.parametrize("other", [NackReason.NOT_FOUND, NackReason.NO_ROUTE, None])
def test_a_duplicate_nack_gives_way_to_what_another_path_said(other: NackReason | None) -> None:
    # On a LAN the producer is asked directly and through a neighbour, which gets "duplicate"
    # back; "/v99 not found" from the producer reached the user as "network answered duplicate".
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    interest(fw, CONSUMER, I1)
    assert nack(fw, UPSTREAM, fwd(I1), other or NackReason.DUPLICATE) == []
    assert nack(fw, UPSTREAM2, fwd(I1), NackReason.DUPLICATE) == [
        SendNack(CONSUMER, Nack(I1, other or NackReason.DUPLICATE))
    ]


def test_a_refused_answer_is_that_upstreams_nack() -> None:
    """Data the node refused (DataRefused) counts as a "refused" Nack from the face it came
    from: best-route tries the next hop at once; once no hop is left, downstream hears
    "refused". Nothing is cached. An answer no Interest was sent to that face for (a peer's
    unsolicited forgery) makes no Nack at all."""
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    refused = Data(N("/a/b"), b"forged")
    assert fw.handle(DataRefused(UPSTREAM2, refused), 0.0) == []  # nothing pending: nothing
    interest(fw, CONSUMER, I1)
    assert fw.handle(DataRefused(UPSTREAM2, refused), 0.0) == []  # not sent there
    [retry] = fw.handle(DataRefused(UPSTREAM, refused), 0.0)
    assert type(retry) is SendInterest and retry.face_id == UPSTREAM2
    assert fw.handle(DataRefused(UPSTREAM, refused), 0.0) == []  # Nacked by it already
    assert fw.handle(DataRefused(UPSTREAM2, refused), 0.0) == [
        SendNack(CONSUMER, Nack(I1, NackReason.REFUSED))
    ]
    assert len(fw.pit) == 0 and len(fw.cs) == 0
    assert fw.counters.refused == 2 and fw.counters.out_data == 0


def test_refused_tells_more_than_no_route() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    interest(fw, CONSUMER, I1)
    assert nack(fw, UPSTREAM, fwd(I1), NackReason.NO_ROUTE) == []
    assert fw.handle(DataRefused(UPSTREAM2, Data(N("/a/b"), b"x")), 0.0) == [
        SendNack(CONSUMER, Nack(I1, NackReason.REFUSED))
    ]


# -- faces, routes, status ---------------------------------------------------------------------


def test_face_down_cleans_fib_and_pit() -> None:
    fw = make({"/a": [UPSTREAM], "/b": [UPSTREAM, UPSTREAM2]})
    interest(fw, CONSUMER, I1)
    ib = Interest(N("/b/x"), 5)
    interest(fw, CONSUMER2, ib)
    assert fw.handle(FaceDown(CONSUMER), 1.0) == []
    assert [str(e.prefix) for e in fw.fib.entries()] == ["/a", "/b"]
    assert len(fw.pit) == 1
    # /b/x was waiting on UPSTREAM: it goes to the other next hop at once
    assert fw.handle(FaceDown(UPSTREAM), 1.0) == [SendInterest(UPSTREAM2, fwd(ib))]
    assert [(str(e.prefix), [h.face_id for h in e.nexthops]) for e in fw.fib.entries()] == [
        ("/b", [UPSTREAM2])
    ]
    (entry,) = fw.pit
    assert entry.out_records[UPSTREAM].nack_reason is NackReason.NO_ROUTE
    assert entry.out_records[UPSTREAM2].nack_reason is None
    # Packets from a face that is down are ignored.
    assert interest(fw, CONSUMER, Interest(N("/b/y"), 6)) == []
    assert fw.counters.unknown_face == 1


@pytest.mark.parametrize("strategy", ["best-route", "multicast", "adaptive"])
def test_upstream_down_nacks_downstream_at_once(strategy: str) -> None:
    """Its only upstream gone, a pending Interest is Nacked "no route" now, not left to wait
    out its lifetime; each downstream hears it with its own Interest."""
    fw = make({"/a": [UPSTREAM]})
    fw.set_strategy(N("/a"), strategy)
    i2 = Interest(N("/a/b"), 2)
    interest(fw, CONSUMER, I1)
    assert interest(fw, CONSUMER2, i2, 0.1) == []  # aggregated
    assert fw.handle(FaceDown(UPSTREAM), 0.5) == [
        SendNack(CONSUMER, Nack(I1, NackReason.NO_ROUTE)),
        SendNack(CONSUMER2, Nack(i2, NackReason.NO_ROUTE)),
    ]
    assert len(fw.pit) == 0
    assert fw.next_deadline() is None
    assert (fw.counters.upstream_down, fw.counters.out_nacks) == (1, 2)
    # the nonces sent upstream are dead: the same Interest looping back is a duplicate
    fw.handle(FaceUp(UPSTREAM), 0.6)
    fw.add_route(N("/a"), UPSTREAM)
    assert interest(fw, CONSUMER2, I1, 0.7) == [SendNack(CONSUMER2, Nack(I1, NackReason.DUPLICATE))]


def test_upstream_down_retries_the_next_hop() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]
    assert fw.handle(FaceDown(UPSTREAM), 0.1) == [SendInterest(UPSTREAM2, fwd(I1))]
    assert data(fw, UPSTREAM2, D1, 0.2) == [SendData(CONSUMER, D1)]
    # and once the second one goes too, there is nothing left to try
    assert interest(fw, CONSUMER, Interest(N("/a/c"), 3), 0.3) == [
        SendInterest(UPSTREAM2, fwd(Interest(N("/a/c"), 3)))
    ]
    assert fw.handle(FaceDown(UPSTREAM2), 0.4) == [
        SendNack(CONSUMER, Nack(Interest(N("/a/c"), 3), NackReason.NO_ROUTE))
    ]


def test_upstream_down_waits_for_the_others_under_multicast() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    assert len(interest(fw, CONSUMER, I1)) == 2
    assert fw.handle(FaceDown(UPSTREAM), 0.1) == []  # UPSTREAM2 may still answer
    assert nack(fw, UPSTREAM2, fwd(I1), NackReason.NOT_FOUND, 0.2) == [
        SendNack(CONSUMER, Nack(I1, NackReason.NO_ROUTE))  # the least severe of the two
    ]


def test_upstream_down_leaves_answered_and_unrelated_entries_alone() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2], "/b": [UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    ib = Interest(N("/b/x"), 5)
    interest(fw, CONSUMER, I1)
    interest(fw, CONSUMER, ib)
    nack(fw, UPSTREAM, fwd(I1), NackReason.CONGESTION)  # answered already: no second Nack
    assert fw.handle(FaceDown(UPSTREAM), 0.1) == []
    assert fw.counters.upstream_down == 0
    assert len(fw.pit) == 2
    assert nack(fw, UPSTREAM2, fwd(I1), NackReason.NOT_FOUND, 0.2) == [
        SendNack(CONSUMER, Nack(I1, NackReason.CONGESTION))
    ]


def test_a_downstream_that_was_also_an_upstream_goes_down() -> None:
    """A face both asked for the Interest and was sent it (another nonce): its in-record goes,
    and its out-record, unanswered, counts as its Nack to the downstreams that are left."""
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]
    assert interest(fw, UPSTREAM2, Interest(N("/a/b"), 7)) == []  # aggregated
    assert fw.handle(FaceDown(UPSTREAM), 0.1) == [
        SendNack(CONSUMER, Nack(I1, NackReason.NO_ROUTE)),
        SendNack(UPSTREAM2, Nack(Interest(N("/a/b"), 7), NackReason.NO_ROUTE)),
    ]


def test_unreachable_upstream_is_settled_like_one_that_went_down() -> None:
    """A face whose peer is taken to be gone (a silent UDP neighbour) stays up: the node
    removes its routes, the forwarder settles what was sent to it."""
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    ic = Interest(N("/a/c"), 3)
    assert interest(fw, CONSUMER, I1) == [SendInterest(UPSTREAM, fwd(I1))]
    fw.remove_route(N("/a"), UPSTREAM)
    assert fw.handle(FaceUnreachable(UPSTREAM), 0.1) == [SendInterest(UPSTREAM2, fwd(I1))]
    assert fw.counters.upstream_down == 1
    assert UPSTREAM in fw.faces  # still up: it may be probed, and may still ask for things
    assert interest(fw, UPSTREAM, ic, 0.2) == [SendInterest(UPSTREAM2, fwd(ic))]
    assert fw.handle(FaceUnreachable(UPSTREAM), 0.3) == []  # nothing left waiting on it


def test_face_down_with_a_full_pit() -> None:
    """A face going down visits the whole PIT once: every entry waiting on it is Nacked, the
    others are left as they were."""
    n = 65_536
    fw = make({"/a": [UPSTREAM], "/b": [UPSTREAM2]}, pit_max_per_face=n)
    for k in range(n):
        interest(fw, CONSUMER if k % 2 else CONSUMER2, Interest(N(f"/{'ab'[k % 2]}/{k}"), k))
    assert len(fw.pit) == n
    actions = fw.handle(FaceDown(UPSTREAM), 1.0)
    assert len(actions) == n // 2 and {type(a) for a in actions} == {SendNack}
    assert len(fw.pit) == n // 2 and fw.counters.upstream_down == n // 2


def test_routes_can_point_at_faces_before_they_are_up() -> None:
    fw = Forwarder()
    fw.handle(FaceUp(1), 0.0)
    fw.add_route(N("/a"), 2)
    assert [type(a) for a in interest(fw, 1, I1)] == [SendNack]
    fw.handle(FaceUp(2), 0.0)
    assert interest(fw, 1, Interest(N("/a/b"), 2)) == [SendInterest(2, fwd(Interest(N("/a/b"), 2)))]
    assert fw.remove_route(N("/a"), 2)
    assert not fw.remove_route(N("/a"), 2)


def test_status_shape() -> None:
    fw = make({"/a": [UPSTREAM, UPSTREAM2]})
    fw.set_strategy(N("/a"), "multicast")
    interest(fw, CONSUMER, I1)
    s = fw.status()
    json.dumps(s)  # JSON-ready
    assert s["fib"] == [
        {
            "prefix": "/a",
            "nexthops": [{"face": UPSTREAM, "cost": 0}, {"face": UPSTREAM2, "cost": 1}],
        }
    ]
    assert s["strategies"] == [
        {"prefix": "/", "strategy": "best-route"},
        {"prefix": "/a", "strategy": "multicast"},
    ]
    assert s["pit"]["entries"] == 1
    assert {"entries", "bytes", "hits", "misses", "max_bytes"} <= set(s["cs"])
    assert s["cs"]["max_bytes"] == 64 * 1024 * 1024
    assert s["counters"]["in_interests"] == 1 and s["counters"]["out_interests"] == 2
    assert set(s["counters"]) >= {
        "unsolicited_data",
        "duplicates",
        "no_route",
        "hop_limit",
        "congestion",
        "expired",
        "cs_hits",
        "cs_misses",
    }
    assert {f["face"] for f in s["faces"]} == {CONSUMER, CONSUMER2, UPSTREAM, UPSTREAM2, APP}


def test_bad_events_config_and_strategy_names_are_local_errors() -> None:
    fw = Forwarder()
    with pytest.raises(wrong_type_error("ccn.fw.forwarder", LocalError)):
        fw.handle(object(), 0.0)  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        fw.set_strategy(N("/a"), "no-such-strategy")
    with pytest.raises(LocalError):
        fw.unset_strategy(ROOT)
    with pytest.raises(LocalError):
        ForwarderConfig(cs_max_bytes=-1)
    with pytest.raises(LocalError):
        ForwarderConfig(dnl_lifetime=0)


# -- the fast Interest copy --------------------------------------------------------------------


def test_with_hop_limit_knows_every_interest_field() -> None:
    assert [f.name for f in dataclasses.fields(Interest)] == [
        "name",
        "nonce",
        "lifetime_ms",
        "hop_limit",
        "can_be_prefix",
        "must_be_fresh",
        "digest",
    ]


@given(
    nonce=st.integers(0, 2**32 - 1),
    hop=st.integers(0, 255),
    cbp=st.booleans(),
    mbf=st.booleans(),
    digest=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_with_hop_limit_equals_replace(
    nonce: int, hop: int, cbp: bool, mbf: bool, digest: bytes | None
) -> None:
    i = Interest(N("/a/b"), nonce, 1234, 7, cbp, mbf, digest)
    copy = _with_hop_limit(i, hop)
    assert copy == dataclasses.replace(i, hop_limit=hop)
    assert hash(copy) == hash(dataclasses.replace(i, hop_limit=hop))


def test_retransmission_after_route_removal_gets_no_route() -> None:
    fw = make()
    interest(fw, CONSUMER, I1, now=0.0)
    assert fw.remove_route(N("/a"), UPSTREAM)
    retx = Interest(N("/a/b"), 2)
    assert interest(fw, CONSUMER, retx, now=1.0) == [
        SendNack(CONSUMER, Nack(retx, NackReason.NO_ROUTE))
    ]
    assert len(fw.pit) == 0
    # The nonce that went upstream is remembered: if it loops back, it is caught.
    assert fw.dnl.has(N("/a/b"), None, I1.nonce, 1.0)


# -- the CS-hit fast path ---------------------------------------------------------------------


def _cached_chunk() -> tuple[Forwarder, Data]:
    """A forwarder whose CS holds one chunk, fetched through UPSTREAM."""
    fw = make()
    chunk = Data(ROOT, b"a cached chunk")
    interest(fw, CONSUMER, Interest(N("/a/v1"), 100, digest=chunk.digest))
    data(fw, UPSTREAM, chunk)
    return fw, chunk


def _state(fw: Forwarder) -> tuple[object, ...]:
    return (
        fw.counters.as_dict(),
        fw.cs.hits,
        fw.cs.misses,
        len(fw.pit),
        len(fw.dnl),
        list(fw.cs._lru),
    )


def test_answer_from_cs_is_the_full_pipeline_for_a_digest_hit() -> None:
    fast, chunk = _cached_chunk()
    full, _ = _cached_chunk()
    ask = Interest(N("/a/v2"), 7, digest=chunk.digest)
    assert fast.answer_from_cs(CONSUMER2, ask, 1.0) is chunk
    assert interest(full, CONSUMER2, ask, 1.0) == [SendData(CONSUMER2, chunk)]
    assert _state(fast) == _state(full)


@pytest.mark.parametrize(
    "face, ask, with_chunk_digest",
    [
        (CONSUMER2, Interest(N("/a/v2"), 7), False),  # no digest
        (CONSUMER2, Interest(N("/a/v2"), 7, digest=b"\x01" * 32), False),  # not cached
        (CONSUMER2, Interest(N("/a/v2"), 7, must_be_fresh=True), True),
        (CONSUMER2, Interest(N("/localhost/x"), 7), True),  # scope, from a non-local face
        (CONSUMER2, Interest(N("/a/v2"), 7, hop_limit=0), True),  # hop limit, non-local face
        (42, Interest(N("/a/v2"), 7), True),  # unknown face
        (CONSUMER2, Interest(N("/a/v1"), 100), True),  # a satisfied Interest's nonce (DNL)
    ],
)
def test_answer_from_cs_leaves_everything_else_to_the_pipeline(
    face: int, ask: Interest, with_chunk_digest: bool
) -> None:
    fw, chunk = _cached_chunk()
    if with_chunk_digest:
        ask = dataclasses.replace(ask, digest=chunk.digest)
    before = _state(fw)
    assert fw.answer_from_cs(face, ask, 1.0) is None
    assert _state(fw) == before


def test_answer_from_cs_defers_to_a_pending_interest_and_freshness() -> None:
    fw, chunk = _cached_chunk()
    pending = Interest(N("/a/v2"), 8, digest=b"\x02" * 32)
    interest(fw, CONSUMER, pending)
    assert fw.answer_from_cs(CONSUMER2, dataclasses.replace(pending, nonce=9), 1.0) is None
    fresh = Interest(N("/a/v2"), 10, must_be_fresh=True, digest=chunk.digest)
    assert fw.answer_from_cs(CONSUMER2, fresh, 1.0) is None


def test_control_traffic_bypasses_the_content_store() -> None:
    # Discovery's hellos and route tables on an idle LAN showed as CS misses and inserts: the
    # hit ratio read 0.0 % with nothing fetched.
    fw = make({"/localhop/ccn": [UPSTREAM], "/a": [UPSTREAM]})
    table = Interest(N("/localhop/ccn/nd/routes/x"), 5, must_be_fresh=True)
    interest(fw, CONSUMER, table)
    data(fw, UPSTREAM, Data(table.name, b"routes"))
    assert (fw.cs.hits, fw.cs.misses, len(fw.cs), fw.counters.cs_misses) == (0, 0, 0, 0)
    # everything else is looked up and cached as before
    interest(fw, CONSUMER, I1)
    data(fw, UPSTREAM, Data(I1.name, b"x"))
    assert (fw.cs.misses, len(fw.cs), fw.counters.cs_misses) == (1, 1, 1)
