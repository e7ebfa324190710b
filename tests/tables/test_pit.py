from __future__ import annotations

import pytest
from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from ccn.name import ROOT, Name
from ccn.packet import Data, Interest, NackReason
from ccn.tables.pit import Pit

N = Name.parse
CONTENT = b"chunk"
DIGEST = blake3(CONTENT).digest()


def add(pit: Pit, interest: Interest, face: int = 1, now: float = 0.0) -> None:
    entry = pit.find(interest) or pit.insert(interest)
    assert entry is not None
    assert pit.insert_in_record(entry, face, interest, now) is not None


def test_key_includes_flags_and_digest() -> None:
    pit = Pit()
    variants = [
        Interest(N("/a"), 1),
        Interest(N("/a"), 1, can_be_prefix=True),
        Interest(N("/a"), 1, must_be_fresh=True),
        Interest(N("/a"), 1, digest=DIGEST),
    ]
    for i in variants:
        assert pit.find(i) is None
        add(pit, i)
    assert len(pit) == 4
    # Nonce, lifetime and hop limit are not part of the key.
    assert pit.find(Interest(N("/a"), 99, lifetime_ms=10, hop_limit=3)) is not None


@pytest.mark.parametrize(
    ("interest", "data", "matches"),
    [
        (Interest(N("/a/b"), 1), Data(N("/a/b"), b"x"), True),
        (Interest(N("/a/b"), 1), Data(N("/a/b/c"), b"x"), False),
        (Interest(N("/a/b"), 1, can_be_prefix=True), Data(N("/a/b/c"), b"x"), True),
        (Interest(N("/a/b"), 1, can_be_prefix=True), Data(N("/a/b"), b"x"), True),
        (Interest(N("/a/b"), 1, can_be_prefix=True), Data(N("/a"), b"x"), False),
        (Interest(N("/a/b"), 1, must_be_fresh=True), Data(N("/a/b"), b"x"), True),
        (Interest(N("/a/v3"), 1, digest=DIGEST), Data(ROOT, CONTENT), True),
        (Interest(N("/a/v3"), 1, digest=DIGEST), Data(N("/x/y"), CONTENT), True),
        (Interest(N("/a/v3"), 1, digest=DIGEST), Data(ROOT, b"poison"), False),
        (Interest(N("/a/v3"), 1, digest=DIGEST), Data(N("/a/v3"), b"poison"), False),
        (Interest(N("/a"), 1, can_be_prefix=True), Data(ROOT, CONTENT), False),
    ],
)
def test_match_data(interest: Interest, data: Data, matches: bool) -> None:
    pit = Pit()
    add(pit, interest)
    assert (pit.match_data(data) != []) is matches


components = st.sampled_from([b"a", b"b"])
nonroot = st.lists(components, min_size=1, max_size=3).map(Name)
contents = st.sampled_from([b"1", b"2", b"3"])
interests = st.builds(
    Interest,
    name=nonroot,
    nonce=st.just(1),
    can_be_prefix=st.booleans(),
    must_be_fresh=st.booleans(),
    digest=st.one_of(st.none(), contents.map(lambda c: blake3(c).digest())),
)
datas = st.builds(Data, name=st.one_of(st.just(ROOT), nonroot), content=contents)


@given(st.lists(interests, max_size=10), datas)
def test_match_data_agrees_with_interest_matches(pending: list[Interest], data: Data) -> None:
    pit = Pit()
    for i in pending:
        add(pit, i)
    expected = {e.key for e in pit if e.interest.matches(data)}
    found = [e.key for e in pit.match_data(data)]
    assert len(found) == len(set(found))
    assert set(found) == expected


def test_expiry_follows_latest_in_record() -> None:
    pit = Pit()
    i = Interest(N("/a"), 1, lifetime_ms=1000)
    add(pit, i, face=1, now=0.0)
    assert pit.next_expiry() == 1.0
    add(pit, Interest(N("/a"), 2, lifetime_ms=1000), face=2, now=0.5)
    assert pit.next_expiry() == 1.5
    assert pit.expire(1.0) == []
    expired = pit.expire(1.5)
    assert [e.name for e in expired] == [N("/a")]
    assert len(pit) == 0 and pit.expired == 1
    assert pit.next_expiry() is None
    assert pit.face_in_records(1) == 0


def test_removed_entries_leave_no_deadline_and_heap_stays_small() -> None:
    pit = Pit()
    for n in range(5000):
        i = Interest(N(f"/a/{n}"), n)
        add(pit, i, now=float(n))
        entry = pit.find(i)
        assert entry is not None
        pit.remove(entry)
        pit.remove(entry)  # harmless
    assert len(pit) == 0
    assert len(pit._heap) <= 1024 + 2
    assert pit.next_expiry() is None


def test_bounds() -> None:
    pit = Pit(max_entries=2, max_per_face=1)
    a, b, c = (Interest(N(x), 1) for x in ("/a", "/b", "/c"))
    ea = pit.insert(a)
    eb = pit.insert(b)
    assert ea is not None and eb is not None
    assert pit.insert(c) is None
    assert pit.insert_in_record(ea, 1, a, 0.0) is not None
    assert pit.insert_in_record(eb, 1, b, 0.0) is None  # face 1 is at its bound
    assert pit.insert_in_record(ea, 1, a, 0.0) is not None  # refreshing is not a new record
    assert pit.insert_in_record(eb, 2, b, 0.0) is not None
    assert pit.rejected == 2


def test_out_records_and_nacks() -> None:
    pit = Pit()
    i = Interest(N("/a"), 1)
    add(pit, i)
    entry = pit.find(i)
    assert entry is not None
    assert not entry.all_out_records_nacked()
    rec = pit.insert_out_record(entry, 3, 1, now=0.0, lifetime=4.0)
    assert entry.has_pending_out_record(1.0)
    rec.nack_reason = NackReason.NO_ROUTE
    assert entry.all_out_records_nacked()
    assert not entry.has_pending_out_record(1.0)
    pit.insert_out_record(entry, 3, 2, now=1.0, lifetime=4.0)
    assert rec.nack_reason is None and rec.nonce == 2 and rec.sent_at == 1.0
    assert not entry.has_pending_out_record(5.0)


def test_remove_face() -> None:
    pit = Pit()
    i, j = Interest(N("/a"), 1), Interest(N("/b"), 1)
    add(pit, i, face=1)
    add(pit, i, face=2)
    add(pit, j, face=1)
    ei = pit.find(i)
    assert ei is not None
    pit.insert_out_record(ei, 1, 5, 0.0, 4.0)
    removed, unanswered = pit.remove_face(1)
    assert [e.name for e in removed] == [N("/b")]
    # /a still has a downstream, and an out-record to face 1 that will never be answered: it
    # is left for the forwarder to settle
    assert unanswered == [ei]
    assert list(ei.in_records) == [2] and list(ei.out_records) == [1]
    assert pit.face_in_records(1) == 0 and pit.face_in_records(2) == 1
    ei.out_records[1].nack_reason = NackReason.NO_ROUTE
    assert pit.remove_face(1) == ([], [])  # answered (Nacked): nothing to settle
