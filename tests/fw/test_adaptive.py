"""The adaptive strategy, driven through the sans-IO forwarder with plain function calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ccn.fw.actions import DataIn, FaceDown, FaceUp, InterestIn, NackIn, SendInterest, Tick
from ccn.fw.adaptive import DEFAULT_RTO, PROBE_INTERVAL, Adaptive
from ccn.fw.forwarder import Forwarder, ForwarderConfig
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason

N = Name.parse
CONSUMER, UP1, UP2 = 1, 3, 4


def make(*upstreams: int) -> Forwarder:
    fw = Forwarder(ForwarderConfig(default_strategy="adaptive"))
    for face in (CONSUMER, *upstreams):
        fw.handle(FaceUp(face), 0.0)
    for cost, face in enumerate(upstreams):
        fw.add_route(N("/a"), face, cost)
    return fw


def strategy(fw: Forwarder) -> Adaptive:
    s = fw._strategy_choice(N("/a"))[1]
    assert isinstance(s, Adaptive)
    return s


def sends(actions: Sequence[object]) -> list[SendInterest]:
    return [a for a in actions if isinstance(a, SendInterest)]


def interest(i: int) -> Interest:
    return Interest(N(f"/a/{i}"), 1000 + i)


def data(i: int) -> Data:
    return Data(N(f"/a/{i}"), b"x")


def exchange(fw: Forwarder, i: int, now: float, answer_from: dict[int, float]) -> list[int]:
    """Send Interest ``i``; of the upstreams it went to, the quickest in ``answer_from`` answers
    after its delay (the others' copies are then unsolicited). Returns the faces it went to."""
    faces = [s.face_id for s in sends(fw.handle(InterestIn(CONSUMER, interest(i)), now))]
    answering = [f for f in faces if f in answer_from]
    if answering:
        f = min(answering, key=answer_from.__getitem__)
        fw.handle(DataIn(f, data(i)), now + answer_from[f])
    return faces


def test_prefers_the_faster_next_hop_over_the_cheaper_one() -> None:
    fw = make(UP1, UP2)
    now = 0.0
    # UP1 is cheaper but slow, UP2 fast; probes find UP2 and it wins
    first = []
    for i in range(40):
        first.append(exchange(fw, i, now, {UP1: 0.2, UP2: 0.01})[0])
        now += 0.3
    s = strategy(fw)
    assert s.srtt(UP2) is not None and abs(s.srtt(UP2) - 0.01) < 1e-6  # type: ignore[operator]
    assert first[0] == UP1  # nothing measured yet: the cheaper route
    assert first[1:] == [UP2] * 39  # the first probe found the faster one


def test_probes_other_hops_at_most_once_per_interval() -> None:
    fw = make(UP1, UP2)
    sent = [exchange(fw, i, i * 0.01, {UP1: 0.001, UP2: 0.001}) for i in range(300)]
    multi = sum(1 for faces in sent if len(faces) > 1)
    assert 1 <= multi <= 3 * 0.01 / PROBE_INTERVAL * 300 + 1
    assert all(faces[0] == UP1 for faces in sent)  # equal RTT: the cheaper one


def test_timeout_retries_another_hop_before_the_consumer_does() -> None:
    fw = make(UP1, UP2)
    fw.handle(InterestIn(CONSUMER, interest(0)), 0.0)  # probe: UP1 and UP2; time the probe out
    out = sends(fw.handle(InterestIn(CONSUMER, interest(1)), 0.0))
    assert [s.face_id for s in out] == [UP1]
    deadline = fw.next_deadline()
    assert deadline is not None and deadline <= DEFAULT_RTO
    retry = sends(fw.handle(Tick(), deadline))
    assert [s.face_id for s in retry if s.interest.name == N("/a/1")] == [UP2]
    sent = next(s for s in retry if s.interest.name == N("/a/1"))
    assert sent.interest.nonce != interest(1).nonce  # a new nonce: not taken for a loop
    # the Data from UP2 satisfies the consumer
    back = fw.handle(DataIn(UP2, data(1)), deadline + 0.01)
    assert [a.face_id for a in back] == [CONSUMER]
    assert fw.counters.retried >= 1
    # UP1 stayed silent: the next Interest goes to UP2 first
    assert sends(fw.handle(InterestIn(CONSUMER, interest(2)), deadline + 0.02))[0].face_id == UP2


def test_upstream_down_retries_the_next_hop_before_its_timer() -> None:
    fw = make(UP1, UP2)
    strategy(fw)._last_probe = 0.0  # no probe in this test
    assert [s.face_id for s in sends(fw.handle(InterestIn(CONSUMER, interest(1)), 0.5))] == [UP1]
    retry = sends(fw.handle(FaceDown(UP1), 0.6))
    assert [s.face_id for s in retry] == [UP2]
    assert fw.counters.upstream_down == 1 and fw.counters.retried == 0
    assert [a.face_id for a in fw.handle(DataIn(UP2, data(1)), 0.7)] == [CONSUMER]
    assert strategy(fw).srtt(UP2) is not None


def test_nack_retries_the_next_hop_at_once() -> None:
    fw = make(UP1, UP2)
    strategy(fw)._last_probe = 0.0  # no probe in this test
    out = sends(fw.handle(InterestIn(CONSUMER, interest(1)), 0.5))
    assert [s.face_id for s in out] == [UP1]
    nack = Nack(out[0].interest, NackReason.NO_ROUTE)
    assert [s.face_id for s in sends(fw.handle(NackIn(UP1, nack), 0.6))] == [UP2]


def test_no_retry_when_every_hop_was_tried() -> None:
    fw = make(UP1)
    fw.handle(InterestIn(CONSUMER, interest(1)), 0.0)
    deadline = fw.next_deadline()
    assert deadline is not None
    assert sends(fw.handle(Tick(), deadline)) == []
    # the entry still expires normally, and the strategy hears about it
    assert fw.next_deadline() == 4.0
    fw.handle(Tick(), 4.0)
    assert len(fw.pit) == 0


def test_retry_timer_is_dropped_when_data_arrives() -> None:
    fw = make(UP1, UP2)
    strategy(fw)._last_probe = 0.0
    fw.handle(InterestIn(CONSUMER, interest(1)), 0.5)
    fw.handle(DataIn(UP1, data(1)), 0.51)
    assert fw.next_deadline() is None


def test_consumer_retransmission_goes_to_an_untried_hop() -> None:
    fw = make(UP1, UP2)
    strategy(fw)._last_probe = 0.0
    first = interest(1)
    fw.handle(InterestIn(CONSUMER, first), 0.5)
    again = dataclasses.replace(first, nonce=7)
    assert [s.face_id for s in sends(fw.handle(InterestIn(CONSUMER, again), 0.6))] == [UP2]


def test_measurements_follow_rfc6298() -> None:
    s = Adaptive()
    fw = make(UP1)
    entry = fw.pit.insert(interest(1))
    assert entry is not None
    s.after_receive_data(entry, UP1, 0.1, 0.0)
    assert s.srtt(UP1) == 0.1
    s.after_receive_data(entry, UP1, 0.2, 0.0)
    assert abs(s.srtt(UP1) - (0.875 * 0.1 + 0.125 * 0.2)) < 1e-9  # type: ignore[operator]


def test_retry_timers_stay_bounded_by_the_pit() -> None:
    fw = make(UP1)
    for i in range(20_000):
        fw.handle(InterestIn(CONSUMER, interest(i)), 0.0)
        fw.handle(DataIn(UP1, data(i)), 0.0)
    assert len(fw._retry) <= 2 * len(fw.pit) + 4097
