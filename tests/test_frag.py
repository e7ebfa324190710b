"""Fragmentation and reassembly: a lost fragment loses its packet, never corrupts one."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ccn.frag import (
    ASK,
    ASK_AFTER,
    HEADER_SIZE,
    MARKER,
    MAX_ASKS,
    MIN_ROUND,
    Ask,
    Fragmenter,
    FragmentError,
    Reassembler,
    ask,
    fragment,
    is_fragment,
    is_request,
    parse_ask,
    parse_header,
)


def test_small_packet_is_sent_whole() -> None:
    pkt = b"\x95" + b"x" * 99
    assert fragment(pkt, 100, 7) == [pkt]
    assert not is_fragment(pkt)


def test_fragments_have_the_marker_and_fit() -> None:
    pkt = bytes(range(256)) * 40
    frags = fragment(pkt, 500, 1)
    assert len(frags) == -(-len(pkt) // (500 - HEADER_SIZE))
    assert all(len(f) <= 500 and f[0] == MARKER and is_fragment(f) for f in frags)
    r = Reassembler()
    out = [r.feed(f, 0.0) for f in reversed(frags)]
    assert out[:-1] == [None] * (len(frags) - 1)
    assert out[-1] == pkt
    assert r.pending == 0 and r.pending_bytes == 0


def test_too_small_datagram_is_refused() -> None:
    try:
        fragment(b"x" * 1000, 20, 0)
    except FragmentError:
        return
    raise AssertionError("expected FragmentError")


def test_lost_fragment_times_out_and_frees_memory() -> None:
    r = Reassembler(timeout=1.0)
    frags = fragment(b"a" * 5000, 1000, 3)
    for f in frags[1:]:
        assert r.feed(f, 0.0) is None
    assert r.pending == 1
    r.expire(1.5)
    assert r.pending == 0 and r.pending_bytes == 0
    assert r.counters.timed_out == 1
    # the straggler does not resurrect the packet
    assert r.feed(frags[0], 1.6) is None
    assert r.pending == 0


def test_conflicting_fragment_drops_the_packet() -> None:
    r = Reassembler()
    a = fragment(b"a" * 3000, 1000, 9)
    b = fragment(b"b" * 3000, 1000, 9)  # same id, other content (a restarted sender)
    assert r.feed(a[0], 0) is None
    assert r.feed(b[0], 0) is None  # contradiction: the packet is dropped
    for f in a[1:]:
        assert r.feed(f, 0) is None
    assert r.counters.reassembled == 0


def test_count_mismatch_drops_the_packet() -> None:
    r = Reassembler()
    a = fragment(b"a" * 3000, 1000, 5)
    c = fragment(b"a" * 5000, 1000, 5)
    r.feed(a[0], 0)
    assert r.feed(c[1], 0) is None
    assert r.pending == 0


def test_bad_headers_are_counted() -> None:
    r = Reassembler()
    assert r.feed(bytes([MARKER, 1, 0]), 0) is None
    assert r.feed(bytes([MARKER, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0]), 0) is None  # version 2
    assert r.feed(bytes([MARKER, 1, 0, 0, 0, 1, 0, 3, 0, 2, 0]), 0) is None  # index >= count
    assert r.feed(bytes([MARKER, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]), 0) is None  # count 1
    assert r.counters.invalid == 4


def test_bounds_evict_the_oldest() -> None:
    r = Reassembler(max_packets=3, max_bytes=10_000, timeout=100.0)
    for pid in range(10):
        r.feed(fragment(bytes([pid]) * 3000, 1000, pid)[0], float(pid))
        assert r.pending <= 3 and r.pending_bytes <= 10_000
    assert r.counters.evicted == 7
    # a packet over the byte bound on its own is dropped, not kept
    r2 = Reassembler(max_bytes=2000)
    for f in fragment(b"z" * 5000, 1000, 1):
        assert r2.feed(f, 0) is None
    assert r2.pending_bytes <= 2000


def test_packet_over_the_size_limit_is_dropped() -> None:
    r = Reassembler(max_packet_size=4000)
    out = [r.feed(f, 0) for f in fragment(b"q" * 5000, 1000, 1)]
    assert out == [None] * len(out)


def test_fragmenter_numbers_packets() -> None:
    f = Fragmenter(1000, first_id=0xFFFFFFFF)
    a = f.fragment(b"a" * 2000)
    b = f.fragment(b"b" * 2000)
    assert a[0][2:6] == b"\xff\xff\xff\xff" and b[0][2:6] == b"\x00\x00\x00\x00"
    assert f.fragment(b"tiny") == [b"tiny"]


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 20_000), min_size=1, max_size=8),
    mtu=st.integers(HEADER_SIZE + 64, 3000),
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0, 0.3),
    dup=st.floats(0, 0.3),
)
def test_reassembly_under_loss_reorder_duplication(
    sizes: list[int], mtu: int, seed: int, loss: float, dup: float
) -> None:
    """Whatever is lost, duplicated or reordered: exactly the packets whose every fragment
    arrived come out, each byte-identical, and nothing else."""
    rng = random.Random(seed)
    fr = Fragmenter(mtu, first_id=rng.getrandbits(32))
    packets = [b"\x95" + rng.randbytes(n) for n in sizes]
    sent: list[bytes] = []
    expected: list[bytes] = []
    partial = 0
    for p in packets:
        datagrams = fr.fragment(p)
        arrived: set[int] = set()
        for k, d in enumerate(datagrams):
            copies = 0 if rng.random() < loss else (2 if rng.random() < dup else 1)
            sent.extend([d] * copies)
            if copies:
                arrived.add(k)
            if len(datagrams) == 1:
                expected.extend([p] * copies)  # a whole packet is passed on as often as it came
        if len(datagrams) > 1 and len(arrived) == len(datagrams):
            expected.append(p)
        elif len(datagrams) > 1 and arrived:
            partial += 1
    rng.shuffle(sent)
    r = Reassembler(max_packets=64, max_bytes=1 << 22)
    out: list[bytes] = []
    for d in sent:
        if is_fragment(d):
            got = r.feed(d, 0.0)
            if got is not None:
                out.append(got)
        else:
            out.append(d)
    assert sorted(out) == sorted(expected)
    # packets with some but not all fragments are still pending (nothing timed out at t=0)
    assert r.pending == partial


# -- asking for missing fragments ---------------------------------------------------------------


def test_a_request_names_runs_of_indexes_and_parses_back() -> None:
    req = ask(0xDEADBEEF, [0, 1, 2, 5, 9, 10], 1400, rate=2_500_000)
    assert is_fragment(req) and is_request(req) and req[1] == ASK
    assert len(req) == 10 + 3 * 4  # three runs: 0-2, 5-5, 9-10
    assert parse_ask(req) == Ask(0xDEADBEEF, ((0, 2), (5, 5), (9, 10)), 2_500_000)
    assert parse_ask(ask(1, [0], 1400, rate=1 << 40)) == Ask(1, ((0, 0),), 0xFFFFFFFF)  # saturates
    assert parse_header(req) is None  # never taken for a fragment
    frag = fragment(b"x" * 3000, 1400, 1)[0]
    assert not is_request(frag) and parse_ask(frag) is None


def test_a_request_holds_as_many_runs_as_fit_in_a_datagram() -> None:
    every_other = list(range(0, 2000, 2))
    req = ask(1, every_other, 100)
    assert len(req) <= 100
    parsed = parse_ask(req)
    assert parsed is not None and parsed.indexes(2000) == every_other[: (100 - 10) // 4]


def test_a_request_names_no_more_fragments_than_the_packet_has() -> None:
    # One datagram of runs up to 65535 would otherwise have the sender list 23 million
    # indexes: the runs stay runs until clipped to the packet's fragment count.
    wide = ask(7, [0], 1400)[:10] + bytes([0, 0, 0xFF, 0xFF])
    parsed = parse_ask(wide)
    assert parsed is not None and parsed.runs == ((0, 0xFFFF),)
    assert parsed.indexes(5) == [0, 1, 2, 3, 4]
    fr = Fragmenter(1000, first_id=7, keep_bytes=1 << 20)
    frags = fr.fragment(b"w" * 4000, 0.0)
    assert fr.resend(parsed, 0.1) == frags


def test_malformed_requests_are_refused() -> None:
    good = ask(7, [3, 4], 1400)
    for bad in (
        good[:-1],  # cut inside a run
        good[:10],  # no run at all
        bytes([MARKER, ASK + 1]) + good[2:],  # another kind
        good[:10] + bytes([0, 5, 0, 4]),  # a run that ends before it starts
        good[:10] + bytes([0, 1, 0, 4, 0, 3, 0, 6]),  # runs that overlap
    ):
        assert parse_ask(bad) is None
    fr = Fragmenter(1000, keep_bytes=1 << 20)
    assert fr.resend(parse_ask(good[:-1]), 0.0) == [] and fr.counters.invalid == 1


def test_a_receiver_asks_for_what_is_missing_once_fragments_stop_coming() -> None:
    frags = fragment(b"p" * 10_000, 1000, 42)
    assert len(frags) == 11
    r = Reassembler(ask_after=ASK_AFTER)
    for k, f in enumerate(frags):
        if k not in (3, 4, 10):  # two in the middle and the last one lost
            r.feed(f, 0.001 * k)
    last = 0.001 * 9
    assert r.next_deadline() == last + ASK_AFTER
    assert r.asks(last + ASK_AFTER / 2, 1400) == []  # not yet: they may still be coming
    (req,) = r.asks(last + ASK_AFTER, 1400)
    assert parse_ask(req) == Ask(42, ((3, 4), (10, 10)), 0)
    assert r.counters.asked == 1
    assert r.asks(last + ASK_AFTER, 1400) == []  # one request per round


def test_a_slow_link_waits_longer_before_asking() -> None:
    frags = fragment(b"s" * 5000, 1000, 5)
    r = Reassembler(ask_after=ASK_AFTER)
    for k in range(3):  # 30 ms between fragments: four gaps is 120 ms
        r.feed(frags[k], 0.03 * k)
    assert r.asks(0.06 + ASK_AFTER, 1400) == []
    assert len(r.asks(0.06 + 0.12, 1400)) == 1


def test_asks_back_off_and_stop_after_max_asks() -> None:
    frags = fragment(b"b" * 5000, 1000, 9)
    r = Reassembler(ask_after=ASK_AFTER, timeout=10.0)
    r.feed(frags[0], 0.0)
    times: list[float] = []
    now = 0.0
    while (due := r.next_deadline()) is not None and due < 10.0:
        now = due
        if r.asks(now, 1400):
            times.append(round(now, 6))
    gaps = [round(b - a, 6) for a, b in zip([0.0, *times], times, strict=False)]
    assert len(times) == MAX_ASKS
    assert gaps == [ASK_AFTER, 2 * ASK_AFTER] + [4 * ASK_AFTER] * (MAX_ASKS - 2)
    assert r.next_deadline() == 10.0  # only the packet's expiry is left


def test_a_fragment_that_comes_resets_the_back_off() -> None:
    frags = fragment(b"r" * 5000, 1000, 9)
    r = Reassembler(ask_after=ASK_AFTER)
    r.feed(frags[0], 0.0)
    assert r.asks(0.02, 1400) and r.asks(0.06, 1400)  # 20 ms, then 40 ms
    r.feed(frags[1], 0.07)
    assert r.next_deadline() == 0.07 + ASK_AFTER  # no more doubling


def test_the_gap_between_fragments_is_measured_before_the_first_ask() -> None:
    frags = fragment(b"g" * 9000, 1000, 9)
    r = Reassembler(ask_after=ASK_AFTER)
    r.feed(frags[0], 0.0)
    r.feed(frags[1], 0.01)  # 10 ms apart: four gaps, 40 ms
    assert r.next_deadline() == 0.01 + 0.04
    assert r.asks(0.05, 1400)
    r.feed(frags[2], 0.5)  # an answer long after: the link is not that slow
    assert r.next_deadline() == 0.5 + 0.04


def test_a_round_asks_for_no_more_than_the_path_delivered() -> None:
    """Four packets of 20 fragments lose 15 each; 20 fragments came in the round's time, so
    the round asks for 20: all that the oldest lacks and 5 of the next. The other two wait
    for the next round, which asks for at least MIN_ROUND (nothing came meanwhile)."""
    assert MIN_ROUND == 16
    r = Reassembler(ask_after=ASK_AFTER)
    for pid in (1, 2, 3, 4):
        for f in fragment(bytes([pid]) * 20 * 990, 1000, pid)[:5]:
            r.feed(f, 0.0)
    first = [parse_ask(q) for q in r.asks(ASK_AFTER, 1400)]
    assert first == [Ask(1, ((5, 19),), 0), Ask(2, ((5, 9),), 0)]
    assert r.next_deadline() == 2 * ASK_AFTER  # 3 and 4: the next round, not backed off
    second = [parse_ask(q) for q in r.asks(2 * ASK_AFTER, 1400)]
    assert second == [Ask(3, ((5, 19),), 0), Ask(4, ((5, 5),), 0)]
    assert r.counters.asked == 4


def test_a_receiver_without_ask_after_never_asks() -> None:
    r = Reassembler()
    r.feed(fragment(b"n" * 5000, 1000, 1)[0], 0.0)
    assert r.asks(1.0, 1400) == [] and r.next_deadline() == r.timeout


def test_a_sender_resends_exactly_the_fragments_asked_for() -> None:
    fr = Fragmenter(1000, first_id=70, keep_bytes=1 << 20)
    packet = bytes(range(256)) * 20
    frags = fr.fragment(packet, 0.0)
    again = fr.resend(parse_ask(ask(70, [1, 2, 4, 500], 1400)), 0.5)  # 500: no such fragment
    assert again == [frags[1], frags[2], frags[4]]
    assert fr.counters.asked == 1 and fr.counters.resent == 3
    assert fr.resend(parse_ask(ask(71, [0], 1400)), 0.5) == [] and fr.counters.unknown == 1


def test_a_sender_knows_which_ids_it_sent_lately_kept_or_not() -> None:
    fr = Fragmenter(1000, first_id=0xFFFFFFFE, keep_bytes=6000, keep_for=2.0)
    for k in range(4):  # ids ...FE, ...FF, 0, 1 (wrapping); only the last one is kept
        fr.fragment(b"s" * 5000, 0.1 * k)
    assert fr.kept_bytes == 5000
    assert all(fr.sent_lately(i, 0.5) for i in (0xFFFFFFFE, 0xFFFFFFFF, 0, 1))
    assert not fr.sent_lately(2, 0.5) and not fr.sent_lately(0xFFFFFFFD, 0.5)  # never sent
    assert not fr.sent_lately(0xFFFFFFFE, 2.15) and fr.sent_lately(1, 2.15)  # 2 s on
    assert not Fragmenter(1000).sent_lately(0, 0.0)  # a sender that keeps nothing


def test_a_sender_answers_at_most_max_asks_per_packet() -> None:
    fr = Fragmenter(1000, keep_bytes=1 << 20)
    fr.fragment(b"m" * 5000, 0.0)
    for _ in range(MAX_ASKS):
        assert len(fr.resend(parse_ask(ask(0, [0], 1400)), 0.1)) == 1
    assert fr.resend(parse_ask(ask(0, [0], 1400)), 0.1) == [] and fr.counters.refused == 1


def test_what_a_sender_keeps_is_bounded_in_bytes_and_time() -> None:
    fr = Fragmenter(1000, keep_bytes=12_000, keep_for=2.0)
    for k in range(3):
        fr.fragment(b"k" * 5000, 0.1 * k)  # ids 0, 1, 2: the first goes to make room
    assert fr.kept_bytes == 10_000
    assert fr.resend(parse_ask(ask(0, [0], 1400)), 0.3) == []
    assert len(fr.resend(parse_ask(ask(1, [0], 1400)), 0.3)) == 1
    assert fr.resend(parse_ask(ask(2, [0], 1400)), 2.3) == []  # kept 2 s, from 0.2
    assert fr.kept_bytes == 0
    big = Fragmenter(1000, keep_bytes=4000)
    big.fragment(b"b" * 5000, 0.0)  # larger than all it may keep: not kept
    assert big.kept_bytes == 0
    assert Fragmenter(1000).fragment(b"n" * 5000) and Fragmenter(1000).kept_bytes == 0


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(2_000, 300_000),
    queue=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_packet_larger_than_the_queue_gets_through_by_asking(
    size: int, queue: int, seed: int
) -> None:
    """A path that passes at most ``queue`` datagrams of each burst (a shallow queue behind a
    slower link: the rest of the burst is dropped) never delivers a packet of more fragments
    sent whole, however often. Asking for the missing ones, every round gets ``queue`` more
    through, in any order."""
    rng = random.Random(seed)
    packet = rng.randbytes(size)
    sender = Fragmenter(1400, first_id=rng.getrandbits(32), keep_bytes=1 << 20)
    receiver = Reassembler(ask_after=ASK_AFTER, timeout=60.0)
    burst = sender.fragment(packet, 0.0)
    now, got = 0.0, None
    for round_ in range(MAX_ASKS + 1):
        passed = burst[:queue]
        rng.shuffle(passed)
        for d in passed:
            got = receiver.feed(d, now) or got
        if got is not None or round_ == MAX_ASKS:
            break
        now = receiver.next_deadline() or now
        requests = receiver.asks(now, 1400)
        assert len(requests) == 1
        burst = sender.resend(parse_ask(requests[0]), now)
    rounds_needed = -(-len(sender.fragment(packet)) // queue)  # (a second id: not kept again)
    if rounds_needed <= MAX_ASKS + 1:
        assert got == packet
    else:
        assert got is None and receiver.pending == 1
