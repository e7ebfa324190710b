"""Fragmentation and reassembly: a lost fragment loses its packet, never corrupts one."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ccn.frag import (
    HEADER_SIZE,
    MARKER,
    Fragmenter,
    FragmentError,
    Reassembler,
    fragment,
    is_fragment,
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
