"""Pacing a peer's datagrams at the rate its receiver reports, and measuring that rate."""

from __future__ import annotations

from ccn.pacing import (
    BURST_TIME,
    MIN_BURST,
    MIN_QUEUE,
    MIN_RATE,
    PROBE_EVERY,
    PROBE_GROWTH,
    QUEUE_TIME,
    RELEASE_AFTER,
    Pacer,
    RateMeter,
)

D = b"d" * 1000


def test_an_idle_pacer_holds_nothing_back() -> None:
    p = Pacer()
    assert not p.active
    assert p.offer([D] * 5, 0.0)
    assert p.next_time(0.0) == 0.0
    assert p.take(0.0) == [D] * 5 and p.queued == 0 and p.queued_bytes == 0
    p.feedback(0, 0.0)  # "unknown": still idle
    assert not p.active


def test_a_reported_rate_lets_a_burst_go_then_paces_the_rest() -> None:
    p = Pacer()
    p.feedback(1_000_000, 0.0)  # 1 MB/s: a burst of 8 KiB (MIN_BURST > 2 ms of it)
    assert p.active and p.rate == 1_000_000
    p.offer([D] * 20, 0.0)
    first = p.take(0.0)
    assert len(first) == MIN_BURST // 1000
    assert p.next_time(0.0) == (1000 - MIN_BURST % 1000) / 1_000_000
    assert p.take(0.0005) == []
    sent = len(first)
    t = 0.0
    while p.queued:  # the rest at 1000 bytes per ms
        t = p.next_time(t) or t
        sent += len(p.take(t))
    assert sent == 20
    assert abs(t - (20_000 - MIN_BURST) / 1_000_000) < 1e-9


def test_a_fast_rate_has_a_burst_of_two_milliseconds() -> None:
    p = Pacer()
    p.feedback(100_000_000, 0.0)
    p.offer([D] * 1000, 0.0)
    assert len(p.take(0.0)) == int(100_000_000 * BURST_TIME) // 1000
    assert len(p.take(0.05)) == int(100_000_000 * BURST_TIME) // 1000  # the bucket is capped


def test_the_rate_grows_without_feedback_and_pacing_stops_after_a_while() -> None:
    p = Pacer()
    p.feedback(1_000_000, 0.0)
    p.offer([D], 3 * PROBE_EVERY)
    assert p.rate == 1_000_000 * PROBE_GROWTH**3
    p.feedback(2_000_000, 0.35)  # a new report sets it
    assert p.rate == 2_000_000
    p.take(0.35 + RELEASE_AFTER)
    assert not p.active


def test_what_waits_is_bounded_and_the_excess_is_dropped() -> None:
    p = Pacer()
    p.feedback(MIN_RATE // 2, 0.0)  # reported below the floor: taken as MIN_RATE
    assert p.rate == MIN_RATE
    bound = max(MIN_QUEUE, MIN_RATE * QUEUE_TIME)
    fits = int(bound // 1000)
    assert all(p.offer([D], 0.0) for _ in range(fits))
    assert not p.offer([D], 0.0) and p.dropped == 1
    assert p.queued_bytes == fits * 1000
    lone = Pacer()
    lone.feedback(MIN_RATE, 0.0)
    assert lone.offer([D] * (MIN_QUEUE // 1000 + 10), 0.0)  # one packet always fits alone


def test_fragments_sent_again_go_first() -> None:
    p = Pacer()
    p.feedback(1_000_000, 0.0)
    p.offer([b"f" * MIN_BURST], 0.0)
    assert len(p.take(0.0)) == 1  # the burst is spent
    p.offer([b"a" * 1000, b"b" * 1000], 0.0)
    p.offer([b"x" * 1000, b"y" * 1000], 0.0, again=True)
    out: list[bytes] = []
    t = 0.0
    while p.queued:
        t = p.next_time(t) or t
        out += p.take(t)
    assert [d[:1] for d in out] == [b"x", b"y", b"a", b"b"]


def test_a_rate_meter_measures_up_to_the_latest_datagram() -> None:
    m = RateMeter()
    assert m.rate() == 0
    for k in range(41):  # 1000 bytes every ms, for 40 ms
        m.add(1000, k * 0.001)
    assert m.rate() == 1_000_000
    # long after: the wait since the latest datagram is no part of the rate
    assert m.rate() == 1_000_000


def test_a_rate_meter_forgets_what_came_before_a_pause() -> None:
    m = RateMeter()
    for k in range(100):  # 100 KB/s for a second
        m.add(1000, k * 0.01)
    for k in range(17):  # then 1 MB/s after a pause
        m.add(1000, 5.0 + k * 0.001)
    assert m.rate() == 1_000_000
    burst = RateMeter()
    burst.add(1000, 0.0)
    burst.add(1000, 0.001)  # too short a span to tell
    assert burst.rate() == 0


def test_fragments_sent_again_do_not_cut_into_a_packet_begun() -> None:
    p = Pacer()
    p.feedback(1_000_000, 0.0)
    p.offer([b"f" * MIN_BURST], 0.0)
    assert len(p.take(0.0)) == 1  # the burst is spent
    p.offer([b"a" * 1000, b"b" * 1000, b"c" * 1000], 0.0)
    p.offer([b"n" * 1000], 0.0)
    assert p.take(0.001) == [b"a" * 1000]  # begun
    p.offer([b"x" * 1000], 0.001, again=True)
    p.offer([b"y" * 1000], 0.001, again=True)
    out: list[bytes] = []
    t = 0.001
    while p.queued:
        t = p.next_time(t) or t
        out += p.take(t)
    assert [d[:1] for d in out] == [b"b", b"c", b"x", b"y", b"n"]  # sent again: in order
    assert p.queued_bytes == 0


def test_a_datagram_to_send_again_is_not_queued_twice() -> None:
    p = Pacer()
    p.feedback(1_000_000, 0.0)
    p.offer([b"f" * MIN_BURST], 0.0)
    p.take(0.0)  # the burst is spent
    p.offer([b"x" * 1000, b"y" * 1000], 0.0, again=True)
    p.offer([b"y" * 1000, b"z" * 1000], 0.0, again=True)  # asked again: y waits already
    p.offer([b"x" * 1000], 0.0, again=True)
    assert p.queued_bytes == 3000
    out: list[bytes] = []
    t = 0.0
    while p.queued:
        t = p.next_time(t) or t
        out += p.take(t)
    assert [d[:1] for d in out] == [b"x", b"y", b"z"]
    p.offer([b"x" * 1000], t, again=True)  # sent: it may be asked for again
    assert p.queued_bytes == 1000
